package reports

import (
	"math"
	"strings"
	"testing"

	"github.com/gonogo/harness/internal/verdict"
)

func crit(metric, agg, cmp string, bound float64) Criterion {
	return Criterion{ID: "c", Metric: metric, Aggregation: agg, Comparator: cmp, Bound: bound, Unit: "ms", Why: "w"}
}

func TestEvaluate(t *testing.T) {
	lat := Measurements{"m": {Stat: Distribution(fixtureLatencies(1000, 1))}} // 1 … 3.45 ms
	one := func(v float64) Measurements { return Measurements{"m": {Stat: Value(v)}} }
	pct := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name       string
		c          Criterion
		m          Measurements
		verdict    verdict.Verdict
		measured   float64
		margin     float64
		marginPct  *float64
		reasonPart string
	}{
		{"less holds", crit("m", AggValue, "<", 10), one(4), verdict.Pass, 4, 6, pct(60), "m = 4 ms, < 10 ms"},
		{"less fails", crit("m", AggValue, "<", 10), one(12.5), verdict.Fail, 12.5, -2.5, pct(-25), "m = 12.5 ms, not < 10 ms"},
		{"less on the bound fails", crit("m", AggValue, "<", 10), one(10), verdict.Fail, 10, 0, pct(0), "not < 10"},
		{"less-equal on the bound holds", crit("m", AggValue, "<=", 10), one(10), verdict.Pass, 10, 0, pct(0), "<= 10"},
		{"greater on the bound fails", crit("m", AggValue, ">", 80), one(80), verdict.Fail, 80, 0, pct(0), "not > 80"},
		{"greater-equal on the bound holds", crit("m", AggValue, ">=", 80), one(80), verdict.Pass, 80, 0, pct(0), ""},
		{"greater holds", crit("m", AggValue, ">", 80), one(92), verdict.Pass, 92, 12, pct(15), ""},
		{"equal zero holds", crit("m", AggValue, "==", 0), one(0), verdict.Pass, 0, 0, nil, ""},
		{"equal zero fails", crit("m", AggValue, "==", 0), one(3), verdict.Fail, 3, -3, nil, "not == 0"},
		{"equal fails below", crit("m", AggValue, "==", 1), one(0), verdict.Fail, 0, -1, pct(-100), ""},
		{"negative bound", crit("m", AggValue, ">", -5), one(-4), verdict.Pass, -4, 1, pct(20), ""},
		{"p99 of a distribution", crit("m", AggP99, "<", 3.4), lat, verdict.Fail, 3.45, -0.05, pct(-0.05 / 3.4 * 100), "p99(m) = 3.45 ms"},
		{"p50 of a distribution", crit("m", AggP50, "<", 3.4), lat, verdict.Pass, 2.2, 1.2, pct(1.2 / 3.4 * 100), ""},
		{"count", crit("m", AggCount, "==", 1000), lat, verdict.Pass, 1000, 0, pct(0), ""},
		{"count of nothing is evidence", crit("m", AggCount, "==", 0), Measurements{"m": {}}, verdict.Pass, 0, 0, nil, ""},
		{"not measured", crit("x", AggValue, "<", 1), one(0), verdict.Inconclusive, 0, 0, nil, "not measured: nothing in this run produced x"},
		{"missing evidence", crit("m", AggValue, "<", 1), Measurements{"m": {Stat: Value(0), Missing: "quota exhausted"}}, verdict.Inconclusive, 0, 0, nil, "quota exhausted"},
		{"too few samples for p99", crit("m", AggP99, "<", 100), Measurements{"m": {Stat: Distribution(fixtureLatencies(99, 1))}}, verdict.Inconclusive, 0, 0, nil, "too few samples: 99, p99 needs at least 100"},
		{"too few samples for p99.9", crit("m", AggP999, "<", 100), Measurements{"m": {Stat: Distribution(fixtureLatencies(999, 1))}}, verdict.Inconclusive, 0, 0, nil, "needs at least 1000"},
		{"min_samples override", Criterion{ID: "c", Metric: "m", Aggregation: AggP99, Comparator: "<", Bound: 100, MinSamples: 2000}, lat, verdict.Inconclusive, 0, 0, nil, "needs at least 2000"},
		{"no samples for a value", crit("m", AggValue, "<", 1), Measurements{"m": {}}, verdict.Inconclusive, 0, 0, nil, "too few samples: 0"},
		{"precondition holds", Criterion{ID: "c", Metric: "m", Aggregation: AggValue, Comparator: "==", Bound: 1, Precondition: true}, one(1), verdict.Pass, 1, 0, pct(0), ""},
		{"precondition unmet is inconclusive", Criterion{ID: "c", Metric: "m", Aggregation: AggValue, Comparator: "==", Bound: 1, Precondition: true}, one(0), verdict.Inconclusive, 0, -1, pct(-100), "precondition not met"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Evaluate(Gate{Criteria: []Criterion{tc.c}}, tc.m)[0]
			if r.Verdict != tc.verdict {
				t.Errorf("verdict: got %s; want %s (%s)", r.Verdict, tc.verdict, r.Reason)
			}
			if math.Abs(r.Measured-tc.measured) > 1e-9 || math.Abs(r.Margin-tc.margin) > 1e-9 {
				t.Errorf("measured, margin: got %v, %v; want %v, %v", r.Measured, r.Margin, tc.measured, tc.margin)
			}
			switch {
			case (r.MarginPct == nil) != (tc.marginPct == nil):
				t.Errorf("margin %%: got %v; want %v", r.MarginPct, tc.marginPct)
			case r.MarginPct != nil && math.Abs(*r.MarginPct-*tc.marginPct) > 1e-9:
				t.Errorf("margin %%: got %v; want %v", *r.MarginPct, *tc.marginPct)
			}
			if !strings.Contains(r.Reason, tc.reasonPart) {
				t.Errorf("reason: got %q; want it to contain %q", r.Reason, tc.reasonPart)
			}
		})
	}
}

func TestMeasure(t *testing.T) {
	r := fixtureRun(t)
	r.Scenarios = append(r.Scenarios, Scenario{Name: "quota", Checks: []Check{
		{Name: "fallback_time", Verdict: verdict.Inconclusive, Error: "a verdict needs the operations it judges to be in the history: no call after the fault\nmore", Metrics: map[string]float64{"fallback_ms": 12}},
	}})
	r.Benchmarks = append(r.Benchmarks, Bench{Op: "cache_get", Profile: "hardened", Inconclusive: "command budget exhausted", Latency: Value(1)})
	m := Measure(r)
	for _, tc := range []struct {
		metric, agg string
		want        float64
		missing     string
	}{
		{"check:basic:health", AggValue, 1, ""},
		{"check:proxy_down:recover_time", AggValue, 0, ""},
		{"check:quota:fallback_time", AggValue, 0, "check fallback_time of scenario quota is INCONCLUSIVE: a verdict needs"},
		{"scenario:quota:fallback_ms", AggValue, 12, "check fallback_time of scenario quota is INCONCLUSIVE"}, // an unjudged check's metric is no evidence
		{"scenario:proxy_down:lost", AggValue, 2, ""},                                                         // from the check's metrics
		{"scenario:basic:cache_hit_rate", AggValue, 90, ""},
		{"scenario:basic:publish_ms", AggCount, 400, ""},
		{"scenario:fanout_2:delivery_p99_ms", AggValue, 4.2, "scenario fanout_2: load before the fault"},
		{"bench:publish:latency_ms", AggP99, 0.9, ""}, // hardened, not seed's 12.5
		{"bench:publish:round_trips_per_op", AggValue, 1, ""},
		{"bench:cache_get:latency_ms", AggValue, 1, "benchmark cache_get: command budget exhausted"},
		{"env:tls", AggValue, 1, ""},
		{"env:remote", AggValue, 0, ""},
		{"env:rtt_ms", AggValue, 0.2, ""},
	} {
		got, ok := m[tc.metric]
		if !ok {
			t.Errorf("%s: not measured", tc.metric)
			continue
		}
		v, _ := got.Get(tc.agg)
		if math.Abs(v-tc.want) > 1e-9 || !strings.HasPrefix(got.Missing, tc.missing) || (tc.missing == "") != (got.Missing == "") {
			t.Errorf("%s %s: got %v (missing %q); want %v (missing %q)", tc.agg, tc.metric, v, got.Missing, tc.want, tc.missing)
		}
	}
	if got := m["check:quota:fallback_time"].Missing; strings.Contains(got, "more") {
		t.Errorf("missing reason %q: want the error's first line only", got)
	}
	if ev := strings.Join(m["scenario:proxy_down:lost"].Evidence, "\n"); !strings.Contains(ev, "fault proxy_down from 5 s to 8 s") || !strings.Contains(ev, "2 lost: evt-117, evt-118") {
		t.Errorf("lost evidence lacks the fault window or the lost ids:\n%s", ev)
	}
	r.Environment.TargetKind = "remote-sim"
	if v := Measure(r)["env:remote"].Value; v != 1 {
		t.Errorf("env:remote for remote-sim: got %v; want 1", v)
	}
}

// The server's side of a benchmark is evidence where measured and
// INCONCLUSIVE where the target did not report it.
func TestMeasureServerSide(t *testing.T) {
	three, idle, load := 3.0, 19, 22
	r := Run{Benchmarks: []Bench{
		{Op: "publish", Latency: Value(1), ServerCommandsPerOp: &three, Connections: &Connections{Instances: 1, Idle: &idle, Load: &load}},
		{Op: "cache_get", Latency: Value(1)},
	}}
	m := Measure(r)
	for metric, want := range map[string]float64{"bench:publish:server_commands_per_op": 3, "bench:publish:connections_idle": 19, "bench:publish:connections_under_load": 22} {
		if got := m[metric]; got.Missing != "" || got.Value != want {
			t.Errorf("%s: %v (missing %q); want %v", metric, got.Value, got.Missing, want)
		}
	}
	for _, metric := range []string{"bench:cache_get:server_commands_per_op", "bench:cache_get:connections_idle"} {
		res := Evaluate(Gate{Criteria: []Criterion{crit(metric, AggValue, "<=", 2)}}, m)[0]
		if res.Verdict != verdict.Inconclusive || !strings.Contains(res.Reason, "not measured") {
			t.Errorf("%s: %s (%s); want INCONCLUSIVE, not measured", metric, res.Verdict, res.Reason)
		}
	}
}

func TestJudgeDefaultReleaseGate(t *testing.T) {
	// An empty run against the real release gate: nothing measured, so
	// INCONCLUSIVE, never GO, and every criterion says what is missing.
	g, err := DefaultGates().Gate("release")
	if err != nil {
		t.Fatal(err)
	}
	r := Run{}
	r.Judge(g)
	if r.Verdict != verdict.Inconclusive || len(r.Criteria) != len(g.Criteria) {
		t.Fatalf("got %s with %d criteria; want INCONCLUSIVE with %d", r.Verdict, len(r.Criteria), len(g.Criteria))
	}
	for _, c := range r.Criteria {
		if c.Verdict != verdict.Inconclusive || c.Reason == "" {
			t.Errorf("%s: %s %q; want INCONCLUSIVE with a reason", c.Criterion.ID, c.Verdict, c.Reason)
		}
	}
}
