package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

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
