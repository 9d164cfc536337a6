package gate

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/bench"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/scenarios"
	"github.com/gonogo/harness/scenarios/check"
	"github.com/gonogo/harness/target"
)

// TestDefaultGatesValidate checks the shipped gates file against what the
// scenario engine, the checkers and the benchmarks really produce.
func TestDefaultGatesValidate(t *testing.T) {
	known := scenarios.DefaultKnown(profiles.Default())
	gs, specs, err := LoadGates("", known)
	if err != nil {
		t.Fatalf("default gates against the real catalogue: %v", err)
	}
	release, err := gs.Gate("release")
	if err != nil {
		t.Fatal(err)
	}
	ha, err := gs.Gate("production-ha")
	if err != nil {
		t.Fatal(err)
	}
	// Every scenario runs in release, but those on a replicated or
	// sharded target (many redis-server processes): they run in
	// production-ha, so that make run stays as it is.
	for _, name := range scenarios.Catalogue() {
		if s := specs[name]; s.Target.Kind == target.KindSentinel || s.Target.Kind == target.KindCluster {
			if !slices.Contains(ha.Scenarios, name) || slices.Contains(release.Scenarios, name) {
				t.Errorf("scenario %s on target %s: want it in production-ha, not in release", name, s.Target.Kind)
			}
			continue
		}
		if !slices.Contains(release.Scenarios, name) {
			t.Errorf("release does not run catalogue scenario %s", name)
		}
	}
	if len(specs) != len(scenarios.Catalogue()) {
		t.Errorf("specs: got %d; want the %d catalogue scenarios", len(specs), len(scenarios.Catalogue()))
	}
	// The catalogue is strict: a criterion on a name the checkers do not
	// produce is refused, an engine metric is accepted.
	cat := catalogue(slices.Collect(mapValues(specs)))
	for metric, want := range map[string]bool{
		"scenario:basic:cache_hit_rate":                true,
		"scenario:basic:round_trips_publish":           true, // basic's round_trips check
		"scenario:blackhole:round_trips_publish":       false,
		"scenario:basic:acked_lost":                    false,
		"scenario:fanout_2:delivery_p99_ms":            true,
		"scenario:latency_100ms:publish_p99_ms_during": true,
		"check:basic:round_trips":                      true,
		"check:basic:fallback_time":                    false, // basic does not run it
		"bench:sse_publish:latency_ms":                 true,
		"bench:api:latency_ms":                         false,
		"bench:xadd:latency_ms":                        false, // raw baselines are not judged
	} {
		if got := cat.Has(metric); got != want {
			t.Errorf("Has(%s): got %v; want %v", metric, got, want)
		}
	}
}

func mapValues(m map[string]scenarios.Spec) func(func(scenarios.Spec) bool) {
	return func(yield func(scenarios.Spec) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func TestBenchSteps(t *testing.T) {
	got := benchSteps([]string{bench.OpPublish, bench.OpSSEPublish, bench.OpSSE, bench.OpCacheGet})
	if want := []string{bench.OpPublish, bench.OpSSE, bench.OpCacheGet}; !slices.Equal(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
}

func TestGuaranteeOf(t *testing.T) {
	for _, name := range check.Names() {
		if got := guaranteeOf(name); got == "" || strings.HasPrefix(got, "check ") {
			t.Errorf("guaranteeOf(%s): got %q; want the checker's guarantee", name, got)
		}
	}
	for name, want := range map[string]string{
		"lost":        check.ErrLost.Error(),
		"budget":      check.ErrBlocked.Error(),
		"round_trips": check.ErrRoundTrips.Error(),
		"nope":        "check nope passes",
	} {
		if got := guaranteeOf(name); got != want {
			t.Errorf("guaranteeOf(%s): got %q; want %q", name, got, want)
		}
	}
}

func TestScenarioGate(t *testing.T) {
	specs, err := scenarios.LoadAll([]string{"eviction"}, scenarios.DefaultKnown(profiles.Default()))
	if err != nil {
		t.Fatal(err)
	}
	plan := Plan{Profiles: []string{"seed", "hardened"}, Registry: profiles.Default()}
	g := scenarioGate(plan.jobsFor(specs))
	if got, want := strings.Join(g.Scenarios, " "), "eviction.seed eviction.hardened"; got != want {
		t.Errorf("scenarios: got %q; want %q", got, want)
	}
	var ids []string
	for _, c := range g.Criteria {
		ids = append(ids, c.ID)
		i := strings.LastIndex(c.ID, ".")
		if want := "check:" + c.ID[:i] + ":" + c.ID[i+1:]; c.Metric != want || c.Comparator != "==" || c.Bound != 1 {
			t.Errorf("%s: got %s %s %g; want %s == 1", c.ID, c.Metric, c.Comparator, c.Bound, want)
		}
	}
	// eviction's lost check is report-only: it decides nothing.
	if want := "eviction.seed.duplicated eviction.seed.budget eviction.seed.error_rate eviction.hardened.duplicated eviction.hardened.budget eviction.hardened.error_rate"; strings.Join(ids, " ") != want {
		t.Errorf("criteria: got %v; want %s", ids, want)
	}
}

func TestAnomaliesOf(t *testing.T) {
	an := func(kind, id, op string, at float64) check.Anomaly {
		return check.Anomaly{Kind: kind, ID: id, Op: op, At: time.Duration(at * float64(time.Second)), Expected: "x", Seen: "y"}
	}
	res := func(name string, left int, as ...check.Anomaly) scenarios.Result {
		return scenarios.Result{Result: check.Result{Check: name, Anomalies: as, AnomaliesLeft: left}}
	}
	results := []scenarios.Result{
		res("lost", 12, an(check.AnomalyLost, "f1/e9", "history read", 6), an(check.AnomalyLost, "f1/e7", "history read", 6)),
		res("duplicated", 0, an(check.AnomalyDuplicate, "f2/e3", "history read", 6), an(check.AnomalyDuplicate, "f2/e4", "delivery to sse-1", 1.2)),
		res("delivery", 0, an(check.AnomalyUndelivered, "f2/e5", "delivery to sse-0", 1), an(check.AnomalyDuplicate, "f2/e4", "delivery to sse-1", 1.2),
			an(check.AnomalyLate, "f2/e6", "delivery to sse-0", 3)),
		res("reordered", 0, an(check.AnomalyReordered, "f1/e2", "history read", 6)),
		res("budget", 0),
	}
	got := anomaliesOf("proxy_down", results)
	want := []struct{ kind, ids string }{
		{"lost", "f1/e7 f1/e9"}, {"duplicate", "f2/e3 f2/e4"}, {"undelivered", "f2/e5"}, {"late", "f2/e6"}, {"reordered", "f1/e2"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d anomalies %+v; want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if a := got[i]; a.Scenario != "proxy_down" || a.Kind != w.kind || strings.Join(a.IDs, " ") != w.ids {
			t.Errorf("anomaly %d: got %s %v; want %s %s", i, a.Kind, a.IDs, w.kind, w.ids)
		}
	}
	if got[0].Detail != "lost: 12 more not listed" {
		t.Errorf("lost detail %q; want the cap noted", got[0].Detail)
	}
	// f2/e4 delivered twice to sse-1 is found by two checks: one event.
	if n := len(got[1].Events); n != 2 {
		t.Errorf("duplicate events: got %d %+v; want 2 (one per event and operation)", n, got[1].Events)
	}
	if e := got[0].Events[0]; e.ID != "f1/e9" || e.Op != "history read" || e.AtMs != 6000 || e.Expected != "x" || e.Seen != "y" {
		t.Errorf("lost event: %+v; want f1/e9 seen by the history read at 6000 ms", e)
	}
}

// TestScenarioModelFromSavedRun maps a saved run into the model: every
// check with its guarantee number, the fault windows, the series; an
// unjudged check's verdict is missing evidence, a judged one is not.
func TestScenarioModelFromSavedRun(t *testing.T) {
	dir := filepath.Join("..", "scenarios", "testdata", "kill_no_aof-seed")
	o, _, h, err := rejudge(dir, scenarios.DefaultKnown(profiles.Default()))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := scenarioModel("kill_no_aof", o, h)
	if len(s.Checks) != len(o.Results) || len(s.Faults) != len(h.Faults) || len(s.Series.Latency) == 0 {
		t.Fatalf("model: %d checks, %d faults, %d latency series; want %d, %d, > 0", len(s.Checks), len(s.Faults), len(s.Series.Latency), len(o.Results), len(h.Faults))
	}
	m := reports.Measure(reports.Run{Scenarios: []reports.Scenario{s}})
	for _, r := range o.Results {
		mm, ok := m["check:kill_no_aof:"+r.Check]
		if !ok {
			t.Errorf("check %s not measured", r.Check)
			continue
		}
		if want := r.Verdict != verdict.Pass && r.Verdict != verdict.Fail; (mm.Missing != "") != want {
			t.Errorf("check %s (%s): missing %q", r.Check, r.Verdict, mm.Missing)
		}
		if g := check.GuaranteeNumber(r.Check); s.Checks[slices.IndexFunc(s.Checks, func(c reports.Check) bool { return c.Name == r.Check })].Guarantee != g {
			t.Errorf("check %s: guarantee not %d", r.Check, g)
		}
	}
}

// TestForGateLoad: a gate's benchmarks are driven with the gates file's
// bench_load; the shipped one is the load the harness always used (open
// loop, 100 calls/s for 3 s after 1 s, 32 in flight, inconclusive past 5 %
// of calls 25 ms late).
func TestForGateLoad(t *testing.T) {
	reg := profiles.Default()
	p := Plan{Profiles: []string{"hardened"}, Registry: reg}
	if err := p.ForGate("release", "", scenarios.DefaultKnown(reg)); err != nil {
		t.Fatal(err)
	}
	want := bench.Load{Workers: 32, Rate: 100, Duration: 3 * time.Second, Warmup: time.Second,
		LateAfter: 25 * time.Millisecond, MaxMissed: 0.05}
	if p.Load != want {
		t.Errorf("load: got %+v; want %+v", p.Load, want)
	}
	if len(p.Benches) == 0 || len(p.Jobs) != len(p.Gate.Scenarios) {
		t.Errorf("plan: %d benches, %d jobs for %d scenarios; want benches and a job per scenario", len(p.Benches), len(p.Jobs), len(p.Gate.Scenarios))
	}
	own := benchLoad(&reports.BenchLoad{Workers: 4, Rate: 50, DurationS: 0.5, LateAfterMs: 2.5, MaxMissed: 0.1})
	if want := (bench.Load{Workers: 4, Rate: 50, Duration: 500 * time.Millisecond, LateAfter: 2500 * time.Microsecond, MaxMissed: 0.1}); own != want {
		t.Errorf("own load: got %+v; want %+v", own, want)
	}
}

// TestForGateSweeps: a gate's sweeps are planned with the values range-
// checked; a value out of range is bad input.
func TestForGateSweeps(t *testing.T) {
	reg := profiles.Default()
	file := func(sweep string) string {
		path := filepath.Join(t.TempDir(), "gates.yaml")
		body := "version: 1\ngates:\n  scale:\n    description: lookups stay one round trip\n    sweeps: [\"" + sweep + "\"]\n" +
			"    criteria:\n      - {id: flat, metric: \"sweep:members:reg_lookup:round_trips_per_op\", aggregation: growth, comparator: \"<=\", bound: 0, why: guarantee 9}\n"
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p := Plan{Profiles: []string{"hardened"}, Registry: reg}
	if err := p.ForGate("scale", file("members=10,1k"), scenarios.DefaultKnown(reg)); err != nil {
		t.Fatal(err)
	}
	if len(p.Sweeps) != 1 || p.Sweeps[0].Param != bench.SweepMembers || !slices.Equal(p.Sweeps[0].Values, []int64{10, 1000}) {
		t.Errorf("sweeps %+v; want members 10, 1000", p.Sweeps)
	}
	// The example in docs stays valid.
	if err := p.ForGate("scale", "../docs/gates-scale.yaml", scenarios.DefaultKnown(reg)); err != nil || len(p.Sweeps) != 1 {
		t.Errorf("docs/gates-scale.yaml: %v, sweeps %+v", err, p.Sweeps)
	}
	err := p.ForGate("scale", file("members=0,10"), scenarios.DefaultKnown(reg))
	if exitcode.Of(err) != exitcode.BadInput || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("members=0,10: err %v; want bad input, out of range", err)
	}
}
