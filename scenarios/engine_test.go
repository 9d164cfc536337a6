package scenarios

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/target"
)

// TestRunCleansUpOnCancel cancels a run mid-traffic: Run must return an
// interrupted error, kill the redis-server it started and leave no
// goroutine behind.
func TestRunCleansUpOnCancel(t *testing.T) {
	needRedis(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	reg := profiles.Default()
	spec, err := Load("proxy_down", DefaultKnown(reg))
	if err != nil {
		t.Fatal(err)
	}
	deps := DefaultDeps()
	var proc *target.Process
	deps.StartTarget = func(ctx context.Context, tg Target) (target.Target, error) {
		p, err := startProcess(ctx, tg)
		proc, _ = p.(*target.Process)
		return p, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err = Run(ctx, spec, Options{Profile: "hardened", Profiles: reg, Deps: deps})
	if got := exitcode.Of(err); got != exitcode.Failure {
		t.Errorf("exit code of an interrupted run: got %d (%v); want %d", got, err, exitcode.Failure)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Run took %s after cancel; want it to return promptly", d)
	}
	if proc == nil {
		t.Fatal("no process target started")
	}
	if pid := proc.Pid(); pid != 0 {
		t.Errorf("redis-server still running (pid %d) after Run returned", pid)
	}
}
