package explore

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/gonogo/harness/impl/profiles"
)

// TestExploreSeed explores the seed profile for 20 s with one down fault
// per schedule against real redis-server: it must find a failure, shrink
// it, write the minimal file, its report and the summary, and the minimal
// file, read back and run again with its workload seed, must fail the same
// checker.
func TestExploreSeed(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server (-short)")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("needs redis-server in PATH: apt-get install redis-server")
	}
	// go-redis logs every failed dial of the outage.
	redis.SetLogger(quiet{})
	eng := NewEngine("seed", profiles.Default(), nil, nil)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sum, err := Explore(ctx, Options{
		Engine: eng, Seed: 3, Budget: 20 * time.Second, Out: out, MaxShrinkRuns: 6, Confirm: 3,
		Generator: Generator{Faults: []string{"down"}, MaxFaults: 1, MaxInstances: 1, MaxDuration: 3 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Runs == 0 || len(sum.Failures) == 0 || sum.ExitCode() != 1 {
		t.Fatalf("%d runs, %d failures, exit %d; want a failure of seed and exit 1", sum.Runs, len(sum.Failures), sum.ExitCode())
	}
	if sum.Kinds["down"] != sum.Runs {
		t.Errorf("fault kinds %v over %d runs; want down in each", sum.Kinds, sum.Runs)
	}
	f := sum.Failures[0]
	t.Logf("found %s after %s in run %d: %s %s, %d shrink steps, %d shrink runs, flaky %v", f.Checker, f.FoundAfter, f.FoundAtRun, f.Faults, f.Duration, f.ShrinkSteps, f.ShrinkRuns, f.Flaky)
	data, err := os.ReadFile(f.File)
	if err != nil {
		t.Fatal(err)
	}
	var s Scenario
	if err := yaml.Unmarshal(data, &s); err != nil {
		t.Fatalf("minimal file: %v\n%s", err, data)
	}
	if err := eng.Validate(s); err != nil {
		t.Fatalf("minimal file does not validate: %v\n%s", err, data)
	}
	if filepath.Base(f.File) != f.Checker+"-"+s.Hash()+".yaml" || s.Name != f.Checker+"-"+s.Hash() {
		t.Errorf("minimal file %s named %s; want <checker>-<hash>", f.File, s.Name)
	}
	if len(s.Checks) != 1 || s.Checks[0].Name != f.Checker || len(s.Faults) > 1 {
		t.Errorf("minimal judges %v with faults %v; want %s alone, at most the one fault", s.Checks, s.FaultKinds(), f.Checker)
	}
	var rep Failure
	if b, err := os.ReadFile(f.Report); err != nil || json.Unmarshal(b, &rep) != nil || rep.Checker != f.Checker {
		t.Errorf("report %s: %v, checker %q", f.Report, err, rep.Checker)
	}
	// Every finding keeps a failing run's history, a flaky one (no run
	// but the one that found it failed) too.
	for _, g := range sum.Failures {
		for _, name := range []string{"history.json", "result.json"} {
			if _, err := os.Stat(filepath.Join(g.Dir, name)); g.Dir == "" || err != nil {
				t.Errorf("failure %s (%s): its failing run's %s: dir %q, %v", g.Checker, g.Status(), name, g.Dir, err)
			}
		}
	}
	for _, name := range []string{SummaryJSON, SummaryMD} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Error(err)
		}
	}
	if f.Flaky {
		t.Skipf("the failure did not repeat (%d of %d) on this machine's load: not replayed\n%s", f.Reproduced, f.Tries, data)
	}
	// Replay: the file as written, with its seed, fails the same checker.
	// It failed 3 runs in a row while shrinking; on a loaded machine (the
	// whole suite under -race) seed also loses events without a fault now
	// and then, so a minimal scenario may be one that fails only mostly:
	// at least one of 3 replays must fail.
	for try := 0; ; try++ {
		tr, err := eng.Run(ctx, s, f.RunSeed, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		failed := tr.Failed()
		if len(failed) == 1 && failed[0].Check == f.Checker {
			break
		}
		if try == 2 {
			t.Fatalf("replaying %s 3 times: last failed %v; want %s", f.File, failed, f.Checker)
		}
	}
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
