package reports

import (
	"testing"
	"time"

	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
)

// secret is the password in the fixture's Redis URL; no rendering may show it.
const secret = "hunter2&co"

var (
	fixtureStart = time.Date(2026, 11, 28, 20, 15, 0, 0, time.UTC)
	fixtureURL   = "rediss://default:" + secret + "@127.0.0.1:6390/0"
)

// fixtureGate is the gate of testdata/gates.yaml.
func fixtureGate(t *testing.T) Gate {
	t.Helper()
	gs, err := LoadGates("testdata/gates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := gs.Gate("release")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// fixtureHistory is a deterministic 10 s history: a publish every 50 ms, a
// cache read every 100 ms; during the fault (5 s to 8 s) publishes are slow
// and every fourth fails.
func fixtureHistory() history.History {
	h := history.History{End: 10 * time.Second}
	fault := history.Fault{Name: "proxy_down", Start: 5 * time.Second, End: 8 * time.Second}
	h.Faults = append(h.Faults, fault)
	for i := range 200 {
		call := time.Duration(i) * 50 * time.Millisecond
		lat := time.Duration(800+(i%7)*100) * time.Microsecond
		ok := true
		if fault.Contains(call) {
			lat = time.Duration(30+i%20) * time.Millisecond
			ok = i%4 != 0
		}
		h.Ops = append(h.Ops, history.Op{Client: "p1", Kind: history.Publish, Call: call, Return: call + lat, OK: ok})
		if i%2 == 0 {
			h.Ops = append(h.Ops, history.Op{Client: "c1", Kind: history.CacheGet, Call: call, Return: call + 400*time.Microsecond, OK: true})
		}
	}
	return h
}

func fixtureLatencies(n int, base float64) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = base + float64(i%50)*0.05
	}
	return xs
}

// fixtureRun is a judged NO-GO run: 3 criteria pass, 2 fail, 2 are inconclusive.
func fixtureRun(t *testing.T) Run {
	t.Helper()
	h := fixtureHistory()
	hits := make([]float64, 200)
	for i := range hits {
		if i%10 != 0 {
			hits[i] = 1
		}
	}
	r := Run{
		Schema:   SchemaVersion,
		ID:       "20261128T201500Z-a1b2",
		Started:  fixtureStart,
		Finished: fixtureStart.Add(95 * time.Second),
		Environment: Environment{
			RedisVersion: "7.0.15", TargetKind: "process", TargetURL: fixtureURL, TLS: true, RTTMs: 0.2,
			GoVersion: "go1.26.0", GitSHA: "0123abcd", Seed: 42, Profile: "hardened",
			CommandLine: []string{"harness", "run", "--gate", "release", "--target", fixtureURL},
		},
		Scenarios: []Scenario{
			{
				Name: "basic", Profile: "hardened", Verdict: verdict.Pass, DurationMs: 2000,
				Checks: []Check{
					{Name: "health", Guarantee: 8, Verdict: verdict.Pass, Evidence: []string{"redis up at 0.000s: reported after 3 ms"}},
					{Name: "stale_read", Guarantee: 6, Verdict: verdict.Pass, Metrics: map[string]float64{"stale_reads": 0, "cache_hit_rate": 90}},
				},
				Metrics: map[string]Stat{"publish_ms": Distribution(fixtureLatencies(400, 0.5))},
				Series:  SeriesFrom(history.History{End: 2 * time.Second, Ops: h.Ops[:60]}, 250*time.Millisecond),
			},
			{
				Name: "proxy_down", Profile: "hardened", Verdict: verdict.Fail, DurationMs: 10000,
				Checks: []Check{
					{Name: "lost", Guarantee: 2, Verdict: verdict.Fail, Error: "an acknowledged event must be readable from history after recovery",
						Evidence: []string{"event f1/evt-117 acknowledged at 6.100s, missing from the history read at 9.500s"},
						Metrics:  map[string]float64{"lost": 2}},
					{Name: "recover_time", Guarantee: 7, Verdict: verdict.Fail,
						Evidence: []string{"still serving from memory 2 s after the fault ended", "AUTH " + secret + " refused"},
						Metrics:  map[string]float64{"recover_ms": 2000}},
				},
				Faults: []Fault{FaultFrom(h.Faults[0])},
				Series: SeriesFrom(h, 500*time.Millisecond),
			},
			{
				Name: "fanout_2", Profile: "hardened", Verdict: verdict.Inconclusive, DurationMs: 4000,
				Inconclusive: "load before the fault 40 ops/s, below the target 100 ops/s",
				Checks:       []Check{{Name: "delivery", Guarantee: 4, Verdict: verdict.Pass, Metrics: map[string]float64{"delivery_p99_ms": 4.2}}},
			},
		},
		Benchmarks: []Bench{
			{Op: "publish", Profile: "hardened", Target: "process", Mode: "open", DurationMs: 5000, OpsPerSec: 2000,
				Latency:         Stat{Count: 10000, Value: 0.31, Rate: 100, P50: 0.25, P90: 0.4, P99: 0.9, P999: 2.1, Max: 4.5},
				RoundTripsPerOp: 1, CommandsPerOp: 3, BytesOutPerOp: 412, BytesInPerOp: 4},
			{Op: "publish", Profile: "seed", Target: "process", Mode: "open", DurationMs: 5000, OpsPerSec: 1900,
				Latency:         Stat{Count: 9500, Value: 0.9, Rate: 100, P50: 0.7, P90: 1.1, P99: 12.5, P999: 20, Max: 31},
				RoundTripsPerOp: 3, CommandsPerOp: 3, BytesOutPerOp: 520, BytesInPerOp: 30},
		},
		Anomalies: []Anomaly{{Scenario: "proxy_down", Kind: "lost", IDs: []string{"evt-118", "evt-117"}, Detail: "acknowledged during the outage"}},
	}
	r.Judge(fixtureGate(t))
	return r
}

// fixturePrevious is the run before fixtureRun: the same gate, GO, with
// proxy_down passing and publish faster.
func fixturePrevious(t *testing.T) Run {
	t.Helper()
	r := fixtureRun(t)
	r.ID = "20261127T201500Z-0c0d"
	r.Started = fixtureStart.Add(-24 * time.Hour)
	r.Finished = r.Started.Add(90 * time.Second)
	r.Scenarios[1].Checks = []Check{
		{Name: "lost", Guarantee: 2, Verdict: verdict.Pass, Metrics: map[string]float64{"lost": 0}},
		{Name: "recover_time", Guarantee: 7, Verdict: verdict.Pass, Metrics: map[string]float64{"recover_ms": 300}},
	}
	r.Scenarios[1].Verdict = verdict.Pass
	r.Benchmarks[0].Latency.P99 = 0.5
	r.Benchmarks[0].OpsPerSec = 2500
	r.Anomalies = nil
	r.Judge(fixtureGate(t))
	return r
}
