package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/scenarios"
)

// TestMain serves when the scenario engine re-executes this test binary as
// an instance process (scenarios.ChildEnv; a scenario with instance_mode
// process runs `<executable> serve -control …`): the child is then the
// real `harness serve`, as under the built binary, and never runs the
// tests again.
func TestMain(m *testing.M) {
	if os.Getenv(scenarios.ChildEnv) != "" && len(os.Args) > 1 && os.Args[1] == "serve" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestRunInstanceProcesses runs instance_kill through the CLI: its two
// instances are `harness serve -control` processes; one is killed and
// started again, and with Redis up nothing it acknowledged is lost.
func TestRunInstanceProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	out := t.TempDir()
	code, stdout, errs := call(t, nil, "run", "--scenario", "instance_kill", "--profile", "hardened", "--seed", "1", "--out", out)
	if code != exitcode.Go {
		t.Fatalf("exit %d; want 0 (GO)\nstdout:\n%s\nstderr:\n%s", code, stdout, errs)
	}
	if !strings.Contains(stdout, "instance 1 restarted as inst-1") {
		t.Errorf("stdout does not note the restart of instance 1:\n%s", stdout)
	}
	logs, _ := filepath.Glob(filepath.Join(out, "*", "*", "instances", "inst-1.*.log"))
	if len(logs) != 2 {
		t.Fatalf("instance 1 logs %v; want one per process (2)", logs)
	}
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if !strings.Contains(string(b), "harness control API on") {
			t.Errorf("%s: %q; want the log of `harness serve -control`", l, b)
		}
	}
}

// TestRunServiceInstanceCmd runs instance_kill by URL with --instance-cmd:
// the instances are a script of the team's own (here one that execs this
// binary's serve on HARNESS_ADDR, as a team's wrapper would exec its
// server); the scenario is judged, not INCONCLUSIVE, and no instance is
// left after the run.
func TestRunServiceInstanceCmd(t *testing.T) {
	p, s, tok := serviceUnderTest(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	mark := fmt.Sprintf("GONOGO_TEST_MARK=%d", time.Now().UnixNano())
	script := filepath.Join(t.TempDir(), "serve-instance")
	body := fmt.Sprintf("#!/bin/sh\n%s exec %s serve -control -profile hardened -addr \"$HARNESS_ADDR\"\n", mark, exe)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, stdout, errs := call(t, tok, "run", "--service", s.base, "--url", p.URL(), "--scenario", "instance_kill", "--seed", "1", "--out", out, "--instance-cmd", script)
	if code != exitcode.Go {
		t.Fatalf("exit %d; want %d\n%s\n%s", code, exitcode.Go, stdout, errs)
	}
	if !strings.Contains(stdout, "instance_kill  hardened  PASS") {
		t.Errorf("stdout: got\n%s\nwant instance_kill PASS", stdout)
	}
	if want := "instances: " + script; !strings.Contains(errs, want) {
		t.Errorf("stderr: got %q; want %q", errs, want)
	}
	if left := withEnv(mark); len(left) > 0 {
		t.Errorf("instance processes left after the run: %v", left)
	}
}

// withEnv lists the live processes whose environment holds kv.
func withEnv(kv string) []string {
	dirs, _ := os.ReadDir("/proc")
	var out []string
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil || !strings.Contains(string(b), kv) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat")); err == nil && !strings.Contains(string(stat), ") Z ") {
			out = append(out, d.Name())
		}
	}
	return out
}
