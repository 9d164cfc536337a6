package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/scenarios"
	"github.com/gonogo/harness/target"
	"github.com/gonogo/harness/target/targettest"
)

const secret = "pw-Kx9-never-printed"

// targetDeps parses args as `harness run` target flags and returns deps'
// result and what it printed.
func targetDeps(t *testing.T, args ...string) (*scenarios.Deps, string, error) {
	return targetDepsEnv(t, nil, args...)
}

// targetDepsEnv is targetDeps with the environment envv.
func targetDepsEnv(t *testing.T, envv map[string]string, args ...string) (*scenarios.Deps, string, error) {
	t.Helper()
	var out bytes.Buffer
	fs := newFlags("run", "run", env{stdout: &out, stderr: &out})
	o := addTargetFlags(fs, func(k string) string { return envv[k] })
	if err := parse(fs, args); err != nil {
		return nil, "", err
	}
	d, err := o.deps(context.Background(), &out)
	return d, out.String(), err
}

func TestTargetFlagsBadInput(t *testing.T) {
	p, _ := targettest.PasswordRedis(t, secret)
	port, _ := target.FreePort()
	unreachable := "redis://:" + secret + "@127.0.0.1:" + strconv.Itoa(port) + "/0"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown kind", []string{"--target", "nope"}, `--target "nope": want one of process, container, remote-sim, upstash-sim, sentinel, cluster, url`},
		{"url without --url", []string{"--target", "url"}, "--target url needs a Redis URL: --url redis://… or rediss://…, --url-env NAME, or $REDIS_URL"},
		{"--url and --url-env", []string{"--url", p.URL(), "--url-env", "X"}, "--url and --url-env both give the URL"},
		{"--url-env unset", []string{"--url-env", "GONOGO_UNSET"}, "--url-env GONOGO_UNSET: the variable is unset or empty"},
		{"--url-env not a name", []string{"--url-env", "A=B"}, `--url-env "A=B": want the name of an environment variable`},
		{"--url-env with another kind", []string{"--target", "process", "--url-env", "X"}, "are for --target url"},
		{"malformed url", []string{"--url", "redis://:" + secret + "@127.0.0.1:notaport/0"}, "does not parse"},
		{"not a redis url", []string{"--url", "http://127.0.0.1:6379"}, `unknown scheme "http"`},
		{"unreachable url", []string{"--url", unreachable}, "unreachable"},
		{"wrong password", []string{"--url", strings.Replace(p.URL(), secret, secret+"x", 1)}, "authentication failed"},
		{"url with another kind", []string{"--target", "process", "--url", p.URL()}, "--url, --url-env, --ca-file, --cert-file, --key-file and --insecure are for --target url"},
		{"tls option without url", []string{"--ca-file", "ca.pem"}, "are for --target url"},
		{"image without container", []string{"--image", "redis:7", "--target", "process"}, "--image is for --target container"},
		{"rtt with another kind", []string{"--target", "process", "--rtt", "30ms"}, "--rtt is for --target remote-sim"},
		{"negative rtt", []string{"--rtt", "-1s"}, "--rtt -1s: out of range, want 1ms to 10s"},
		{"huge rtt", []string{"--rtt", "1000h", "--target", "remote-sim"}, "--rtt 1000h0m0s: out of range, want 1ms to 10s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := targetDeps(t, tt.args...)
			if got := exitcode.Of(err); got != exitcode.BadInput {
				t.Fatalf("exit code: got %d (%v); want %d", got, err, exitcode.BadInput)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error: got %q; want it to contain %q", msg, tt.want)
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, secret) {
				t.Errorf("error: got %q; want one line without the password", msg)
			}
		})
	}
}

// TestTargetFlagsChoose starts the target each flag set chooses.
func TestTargetFlagsChoose(t *testing.T) {
	p, _ := targettest.PasswordRedis(t, secret)
	tp, err := target.StartProcess(context.Background(), target.ProcessOptions{TLS: true, Password: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.Close() })
	set, err := tp.Certs()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		spec     scenarios.Target
		wantKind target.Kind
		wantRTT  time.Duration
		wantOut  string
		env      map[string]string
	}{
		{"default: the spec's kind", nil, scenarios.Target{Kind: "process"}, "process", 0, "", nil},
		{"default: the spec's remote-sim and rtt", nil, scenarios.Target{Kind: "remote-sim", RTT: scenarios.Duration(30 * time.Millisecond)}, "remote-sim", 30 * time.Millisecond, "", nil},
		{"--rtt over the spec's", []string{"--rtt", "40ms"}, scenarios.Target{Kind: "remote-sim", RTT: scenarios.Duration(30 * time.Millisecond)}, "remote-sim", 40 * time.Millisecond, "", nil},
		{"--target remote-sim: default rtt", []string{"--target", "remote-sim"}, scenarios.Target{Kind: "process"}, "remote-sim", 20 * time.Millisecond, "target: remote-sim", nil},
		{"--target process over the spec's", []string{"--target", "process"}, scenarios.Target{Kind: "remote-sim"}, "process", 0, "", nil},
		{"--url alone: url", []string{"--url", p.URL()}, scenarios.Target{Kind: "process"}, "url", 0, "target: url redis://:xxxxx@" + p.Addr(), nil},
		{"rediss:// verified with --ca-file", []string{"--url", tp.URL(), "--ca-file", set.CAFile}, scenarios.Target{}, "url", 0, "target: url rediss://:xxxxx@" + tp.Addr(), nil},
		{"rediss:// --insecure is loud", []string{"--url", tp.URL(), "--insecure"}, scenarios.Target{}, "url", 0, "WARNING: INSECURE: TLS certificate verification is OFF", nil},
		{"--url-env alone: url", []string{"--url-env", "MY_REDIS"}, scenarios.Target{Kind: "process"}, "url", 0, "target: url redis://:xxxxx@" + p.Addr(), map[string]string{"MY_REDIS": p.URL()}},
		{"--target url: $REDIS_URL", []string{"--target", "url"}, scenarios.Target{Kind: "process"}, "url", 0, "target: url redis://:xxxxx@" + p.Addr(), map[string]string{"REDIS_URL": p.URL()}},
		{"$REDIS_URL alone does not choose url", nil, scenarios.Target{Kind: "process"}, "process", 0, "", map[string]string{"REDIS_URL": p.URL()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deps, out, err := targetDepsEnv(t, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tt.wantOut) || strings.Contains(out, secret) {
				t.Errorf("printed %q; want it to contain %q and no password", out, tt.wantOut)
			}
			tg, err := deps.StartTarget(context.Background(), tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			if got := tg.Kind(); got != tt.wantKind {
				t.Errorf("kind: got %s; want %s", got, tt.wantKind)
			}
			var rtt time.Duration
			if r, ok := tg.(interface{ RTT() time.Duration }); ok {
				rtt = r.RTT()
			}
			if rtt != tt.wantRTT {
				t.Errorf("rtt: got %s; want %s", rtt, tt.wantRTT)
			}
		})
	}
}

// TestRunURLTarget runs `harness run` against a password-protected
// redis-server given only by URL: basic runs for hardened, no key is
// left, and the password appears nowhere (stdout, stderr, saved files); a
// destructive scenario is not run but reported INCONCLUSIVE with the
// reason. Needs run.go to use addTargetFlags and deps.
func TestRunURLTarget(t *testing.T) {
	p, rdb := targettest.PasswordRedis(t, secret)
	out := t.TempDir()
	code, stdout, stderr := call(t, nil, "run", "--target", "url", "--url", p.URL(), "--scenario", "basic", "--profile", "hardened", "--seed", "1", "--out", out)
	// The verdict itself is scenarios.TestURLTarget's: here the run must
	// have been judged (a loaded machine can push hardened's start-up past
	// its 50 ms budget).
	if (code != exitcode.Go && code != exitcode.NoGo) || !strings.Contains(stdout, "basic     hardened  ") {
		t.Errorf("basic on url: got exit %d; want it run and judged\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "target: url redis://:xxxxx@"+p.Addr()) {
		t.Errorf("stderr: got\n%s\nwant the target named with its password masked", stderr)
	}
	if n := rdb.DBSize(context.Background()).Val(); n != 0 {
		t.Errorf("keys left on the url target: got %d; want 0", n)
	}
	code, stdout2, stderr2 := call(t, nil, "run", "--url", p.URL(), "--scenario", "kill_aof", "--profile", "hardened", "--seed", "1", "--out", out)
	if code != exitcode.Inconclusive {
		t.Errorf("kill_aof on url: got exit %d; want %d\n%s\n%s", code, exitcode.Inconclusive, stdout2, stderr2)
	}
	if want := "fault kill not available on target url: refused on a url target the harness does not own"; !strings.Contains(stdout2, want) {
		t.Errorf("stdout: got\n%s\nwant it to contain %q", stdout2, want)
	}
	for name, s := range map[string]string{"stdout": stdout + stdout2, "stderr": stderr + stderr2} {
		if strings.Contains(s, secret) {
			t.Errorf("%s contains the password:\n%s", name, s)
		}
	}
	files := 0
	err := filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte(secret)) {
			err = errors.New(path + " contains the password")
		}
		return err
	})
	if err != nil || files < 6 {
		t.Errorf("saved files: %v (%d files); want at least 6, none with the password", err, files)
	}
}

// TestRunTargetBadInput: bad target flags stop `harness run` before
// anything runs, exit 3 with one line. Needs run.go to use addTargetFlags
// and deps.
func TestRunTargetBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"--target", "nope"},
		{"--target", "url"},
		{"--url", "redis://:" + secret + "@127.0.0.1:notaport/0"},
	} {
		code, stdout, stderr := call(t, nil, append([]string{"run", "--scenario", "basic", "--out", t.TempDir()}, args...)...)
		if code != exitcode.BadInput || strings.Count(stderr, "\n") != 1 || stdout != "" || strings.Contains(stderr, secret) {
			t.Errorf("run %q: got exit %d, stdout %q, stderr %q; want %d and one line without the password", args, code, stdout, stderr, exitcode.BadInput)
		}
	}
}
