package scenarios

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/scenarios/check"
)

// runSpec runs spec against profile with the real dependencies and logs
// what did not pass.
func runSpec(t *testing.T, spec Spec, profile string, reg *impl.Profiles, seed int64) Outcome {
	t.Helper()
	return runSpecSeed(t, spec, profile, reg, seed, DefaultDeps())
}

// runSpecDeps is runSpec with the engine's constructors given.
func runSpecDeps(t *testing.T, spec Spec, profile string, reg *impl.Profiles, deps *Deps) Outcome {
	t.Helper()
	return runSpecSeed(t, spec, profile, reg, 1, deps)
}

func runSpecSeed(t *testing.T, spec Spec, profile string, reg *impl.Profiles, seed int64, deps *Deps) Outcome {
	t.Helper()
	raceTolerance(&spec)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o, err := Run(ctx, spec, Options{Profile: profile, Profiles: reg, Seed: seed, Dir: t.TempDir(), Deps: deps})
	if err != nil {
		t.Fatalf("Run(%s, %s): %v", spec.Name, profile, err)
	}
	for _, r := range o.Failed() {
		ev := r.Evidence
		if len(ev) > 3 {
			ev = ev[:3]
		}
		t.Logf("%s/%s: %s %s: %s %q", spec.Name, profile, r.Check, r.Verdict, firstLine(r.Error), ev)
	}
	return o
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

func result(o Outcome, name string) (Result, bool) {
	for _, r := range o.Results {
		if r.Check == name {
			return r, true
		}
	}
	return Result{}, false
}

// TestCatalogueEndToEnd runs catalogue scenarios against real redis-server
// for both profiles: hardened passes; seed fails with the named guarantee.
func TestCatalogueEndToEnd(t *testing.T) {
	needRedis(t)
	reg := profiles.Default()
	known := DefaultKnown(reg)
	tests := []struct {
		scenario string
		// seedFails maps each check the seed must fail to its guarantee.
		seedFails map[string]error
	}{
		{"basic", map[string]error{"registry": check.ErrVanished, "round_trips": check.ErrRoundTrips}},
		{"startup_down", map[string]error{"recover_time": check.ErrNoRecovery}},
		{"kill_no_aof", map[string]error{"lost": check.ErrLost}},
		{"blackhole", map[string]error{"budget": check.ErrBlocked}},
		{"rollback_flip", map[string]error{"stale_read": check.ErrStaleRead}},
	}
	for _, tt := range tests {
		spec, err := Load(tt.scenario, known)
		if err != nil {
			t.Fatal(err)
		}
		// Profiles and scenarios run one after the other, so a loaded
		// machine does not stall hardened past its budgets.
		t.Run(tt.scenario, func(t *testing.T) {
			t.Run("hardened", func(t *testing.T) {
				o := runSpec(t, spec, "hardened", reg, 1)
				if o.Verdict != verdict.Pass {
					t.Errorf("verdict: got %s; want PASS", o.Verdict)
				}
			})
			t.Run("seed", func(t *testing.T) {
				o := runSpec(t, spec, "seed", reg, 1)
				if o.Verdict != verdict.Fail {
					t.Errorf("verdict: got %s; want FAIL", o.Verdict)
				}
				for name, want := range tt.seedFails {
					r, ok := result(o, name)
					if !ok || r.Verdict != verdict.Fail || !errors.Is(r.Err, want) {
						t.Errorf("check %s: got %s (%v); want FAIL: %v", name, r.Verdict, r.Err, want)
					}
				}
			})
		})
	}
}

// TestCatalogueValid loads every embedded scenario with the real catalogues
// of faults, checks and profiles.
func TestCatalogueValid(t *testing.T) {
	known := DefaultKnown(profiles.Default())
	names := Catalogue()
	if len(names) < 28 {
		t.Errorf("catalogue has %d scenarios; want at least 28", len(names))
	}
	for _, n := range names {
		s, err := Load(n, known)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if s.Name != n {
			t.Errorf("%s: name is %q; want the file name", n, s.Name)
		}
		if s.Description == "" {
			t.Errorf("%s: no description", n)
		}
		d := s.Workload.Duration.D()
		if s.Episodes > 1 {
			// Episodes lengthen the run (repeatEpisodes); the file's own
			// duration is that of the first.
			if d > 30*time.Second {
				t.Errorf("%s: %d episodes last %s; want at most 30s", n, s.Episodes, d)
			}
			d -= time.Duration(s.Episodes-1)*s.EpisodeEvery.D() + episodeSpread
		}
		if d < 3*time.Second || d > 8*time.Second {
			t.Errorf("%s: duration %s; want 3s to 8s", n, d)
		}
	}
}

// TestFlake runs a mixed scenario against hardened with ten seeds: no
// checker may fire. It takes about a minute: set GONOGO_LONG=1.
func TestFlake(t *testing.T) {
	needRedis(t)
	if os.Getenv("GONOGO_LONG") == "" {
		t.Skip("set GONOGO_LONG=1 to run the 10-seed flake test")
	}
	reg := profiles.Default()
	for _, name := range []string{"basic", "proxy_down"} {
		spec, err := Load(name, DefaultKnown(reg))
		if err != nil {
			t.Fatal(err)
		}
		for seed := int64(1); seed <= 10; seed++ {
			t.Run(name+"/"+strconv.FormatInt(seed, 10), func(t *testing.T) {
				if o := runSpec(t, spec, "hardened", reg, seed); o.Verdict != verdict.Pass {
					t.Errorf("seed %d: got %s; want PASS", seed, o.Verdict)
				}
			})
		}
	}
}

// TestRefusedFillIsAnAnswer: in cache_race hardened refuses fills that
// raced an invalidation; they are recorded as its answer (OK, value
// refused), so error_rate, judged there, passes.
func TestRefusedFillIsAnAnswer(t *testing.T) {
	t.Parallel()
	needRedis(t)
	o := runOn(t, "cache_race", "hardened", DefaultDeps())
	if r, _ := result(o, "error_rate"); r.Verdict != verdict.Pass {
		t.Errorf("check error_rate: got %s (%v); want PASS", r.Verdict, r.Err)
	}
	refused, failed := 0, 0
	for _, op := range savedHistory(t, o).Ops {
		if op.Kind != history.CacheSet {
			continue
		}
		if op.Value == history.FillRefused && op.OK {
			refused++
		}
		if !op.OK {
			failed++
		}
	}
	if refused == 0 || failed != 0 {
		t.Errorf("cache_set: %d refused (recorded OK), %d failed; want some refused and none failed", refused, failed)
	}
}

// TestFindingsValid loads every scenario of scenarios/findings (known
// defects of hardened, run by path) as the CLI would.
func TestFindingsValid(t *testing.T) {
	known := DefaultKnown(profiles.Default())
	files, err := filepath.Glob(filepath.Join("findings", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("findings: %v, %d files; want at least one", err, len(files))
	}
	for _, f := range files {
		if _, err := Load(f, known); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestInProcessJournal: config journal gives in-process instances an
// outbox journal that outlives a flag step's rebuild, as it does instance
// processes. redeploy_outage rebuilds the instance during an outage, here
// made to outlast the rebuild's drain (which waits up to its drain
// timeout for Redis, set to 1 s: the outage ends 2.1 s after the rebuild
// began): with the journal what the instance acknowledged from memory
// reaches Redis; without it the rebuild loses it, and lost says so (before
// in-process instances had journals, both runs failed).
func TestInProcessJournal(t *testing.T) {
	t.Parallel()
	needRedis(t)
	reg := profiles.Default()
	spec, err := Load("redeploy_outage", DefaultKnown(reg))
	if err != nil {
		t.Fatal(err)
	}
	spec.Workload.Duration = Duration(2500 * time.Millisecond)
	spec.Faults[0].For = Duration(2400 * time.Millisecond)
	spec.Config.DrainTimeout = Duration(time.Second)
	for _, journal := range []bool{true, false} {
		spec.Config.Journal = journal
		o := runSpec(t, spec, "hardened", reg, 1)
		r, _ := result(o, "lost")
		want := verdict.Pass
		if !journal {
			want = verdict.Fail
		}
		if r.Verdict != want {
			t.Errorf("journal %v: lost %s; want %s", journal, r.Verdict, want)
		}
	}
}
