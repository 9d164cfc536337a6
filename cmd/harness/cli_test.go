package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gonogo/harness/internal/exitcode"
)

// call runs the CLI with args and an environment map, returning the exit
// code, stdout and stderr.
func call(t *testing.T, envv map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, env{stdout: &out, stderr: &errb, getenv: func(k string) string { return envv[k] }})
	return code, out.String(), errb.String()
}

func TestCLIUsageAndBadInput(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		want    int
		wantErr string
		oneLine bool
		wantOut string
	}{
		{name: "no args", args: nil, want: exitcode.BadInput, wantErr: "Usage:"},
		{name: "help", args: []string{"help"}, want: exitcode.Go, wantOut: "Exit codes"},
		{name: "unknown command", args: []string{"frobnicate"}, want: exitcode.BadInput, wantErr: `unknown command "frobnicate"`},
		{name: "unknown flag", args: []string{"doctor", "-nope"}, want: exitcode.BadInput, wantErr: "flag provided but not defined: -nope", oneLine: true},
		{name: "stray arg", args: []string{"doctor", "extra"}, want: exitcode.BadInput, wantErr: `unexpected argument "extra"`, oneLine: true},
		{name: "command help", args: []string{"doctor", "-h"}, want: exitcode.Go, wantOut: "-redis-server"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := call(t, nil, c.args...)
			if code != c.want {
				t.Errorf("exit = %d; want %d (stderr %q)", code, c.want, errs)
			}
			if !strings.Contains(errs, c.wantErr) {
				t.Errorf("stderr = %q; want it to contain %q", errs, c.wantErr)
			}
			if !strings.Contains(out, c.wantOut) {
				t.Errorf("stdout = %q; want it to contain %q", out, c.wantOut)
			}
			if c.oneLine && strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Errorf("stderr has more than one line: %q", errs)
			}
		})
	}
}

func TestDoctorMissingRedisIsHarnessFailure(t *testing.T) {
	code, out, errs := call(t, nil, "doctor", "-redis-server", "/nonexistent/redis-server")
	if code != exitcode.Failure {
		t.Fatalf("exit = %d; want %d", code, exitcode.Failure)
	}
	if !strings.Contains(out, "missing") || !strings.Contains(errs, "not usable") {
		t.Fatalf("stdout %q / stderr %q: want the missing binary named", out, errs)
	}
	if !regexp.MustCompile(`target sentinel +unusable: needs redis-server`).MatchString(out) {
		t.Fatalf("stdout %q: want the sentinel target unusable, saying why", out)
	}
}

func TestDoctorReportsRedis(t *testing.T) {
	code, out, errs := call(t, nil, "doctor")
	if code != exitcode.Go {
		t.Fatalf("exit = %d; want 0 (stderr %q)", code, errs)
	}
	for _, want := range []string{"redis-server", "target process", `target sentinel +usable`, `target upstash-sim +usable`, `target cluster +usable`, "smoke"} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}

// TestUnwrap: the redaction every command's output goes through hides no
// terminal from the progress bars.
func TestUnwrap(t *testing.T) {
	w := redactWriter{redactWriter{os.Stderr, nil}, nil}
	if unwrap(w) != io.Writer(os.Stderr) {
		t.Errorf("unwrap(%v) = %v; want os.Stderr", w, unwrap(w))
	}
}

// TestInterruptMessage: serve says it is stopping, the other commands that
// they finish their report.
func TestInterruptMessage(t *testing.T) {
	for args, want := range map[string]string{"serve --profile hardened": "stopping", "run --gate release": "finishing the report", "": "finishing the report"} {
		if got := interruptMessage(strings.Fields(args)); !strings.Contains(got, want) {
			t.Errorf("interruptMessage(%q) = %q; want it to say %q", args, got, want)
		}
	}
}
