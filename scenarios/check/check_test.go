package check

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
)

// s converts seconds to a Duration (rounded to the nanosecond).
func s(x float64) time.Duration { return time.Duration(math.Round(x * float64(time.Second))) }

// pub is a publish by client of event "<client>-<seq>" on flow.
func pub(client, flow string, seq int64, call, ret float64, ok bool) history.Op {
	return history.Op{Client: client, Kind: history.Publish, Flow: flow, EventID: fmt.Sprintf("%s-%d", client, seq),
		Seq: seq, Call: s(call), Return: s(ret), OK: ok}
}

// rd is a successful history read of flow at t.
func rd(flow string, t float64, ids ...string) history.Op {
	return history.Op{Client: "reader", Kind: history.Read, Flow: flow, Values: ids, Call: s(t), Return: s(t + 0.01), OK: true}
}

// op is any op.
func op(kind, client, flow string, call, ret float64, ok bool) history.Op {
	return history.Op{Client: client, Kind: kind, Flow: flow, Call: s(call), Return: s(ret), OK: ok}
}

func withMode(o history.Op, mode string) history.Op { o.Mode = mode; return o }

func fault(name string, start, end float64) history.Fault {
	return history.Fault{Name: name, Start: s(start), End: s(end)}
}

func hist(faults []history.Fault, ops ...history.Op) history.History {
	h := history.History{Faults: faults, Ops: ops}
	h.End = runEnd(h)
	return h
}

// tc is one table case for a checker.
type tc struct {
	name     string
	h        history.History
	c        Config
	verdict  verdict.Verdict
	err      error              // errors.Is target(s) on Result.Err; nil on PASS
	errs     []error            // further errors.Is targets
	evidence []string           // each must be a substring of some evidence line
	metrics  map[string]float64 // exact values
	absent   []string           // metrics that must not be set
}

func runTable(t *testing.T, check string, fn Checker, cases []tc) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			r := fn(tt.h, tt.c)
			if r.Check != check {
				t.Errorf("Check = %q; want %q", r.Check, check)
			}
			if r.Guarantee == "" {
				t.Errorf("Guarantee is empty")
			}
			if r.Verdict != tt.verdict {
				t.Errorf("Verdict = %s (err %v, evidence %q); want %s", r.Verdict, r.Err, r.Evidence, tt.verdict)
			}
			if tt.verdict == verdict.Pass && r.Err != nil {
				t.Errorf("Err = %v on PASS; want nil", r.Err)
			}
			for _, want := range append([]error{tt.err}, tt.errs...) {
				if want != nil && !errors.Is(r.Err, want) {
					t.Errorf("Err = %v; want it to wrap %q", r.Err, want)
				}
			}
			for _, want := range tt.evidence {
				if !hasLine(r.Evidence, want) {
					t.Errorf("Evidence = %q; want a line containing %q", r.Evidence, want)
				}
			}
			for k, want := range tt.metrics {
				got, ok := r.Metrics[k]
				if !ok || math.Abs(got-want) > 1e-6 {
					t.Errorf("Metrics[%q] = %v (set %v); want %v", k, got, ok, want)
				}
			}
			for _, k := range tt.absent {
				if v, ok := r.Metrics[k]; ok {
					t.Errorf("Metrics[%q] = %v; want it absent", k, v)
				}
			}
		})
	}
}

func hasLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// rich is a history that exercises every checker.
func rich() history.History {
	return withCounts(hist([]history.Fault{fault("kill", 2, 3)},
		pub("p0", "f1", 1, 0.1, 0.11, true),
		pub("p0", "f1", 2, 1.0, 1.01, true),
		withMode(pub("p0", "f1", 3, 2.1, 2.11, true), "memory"),
		withMode(pub("p0", "f1", 4, 3.5, 3.51, true), "redis"),
		history.Op{Client: "s1", Kind: history.Subscribe, Flow: "f1", Call: s(0), Return: s(5), OK: true},
		history.Op{Client: "s1", Kind: history.Deliver, Flow: "f1", EventID: "p0-1", Call: s(0.1), Return: s(0.12), OK: true},
		history.Op{Client: "s1", Kind: history.Deliver, Flow: "f1", EventID: "p0-2", Call: s(1.0), Return: s(1.02), OK: true},
		history.Op{Client: "s1", Kind: history.Deliver, Flow: "f1", EventID: "p0-3", Call: s(2.1), Return: s(2.12), OK: true},
		history.Op{Client: "s1", Kind: history.Deliver, Flow: "f1", EventID: "p0-4", Call: s(3.5), Return: s(3.52), OK: true},
		history.Op{Client: "w", Kind: history.DBWrite, Flow: "f1", Version: 1, Call: s(0.2), Return: s(0.21), OK: true},
		history.Op{Client: "w", Kind: history.CacheInval, Flow: "f1", Version: 1, Call: s(0.22), Return: s(0.23), OK: true},
		history.Op{Client: "c", Kind: history.CacheGet, Flow: "f1", Version: 1, Call: s(0.3), Return: s(0.31), OK: true},
		history.Op{Client: "i0", Kind: history.RegRegister, Flow: "f1", Value: "c1", Call: s(0.1), Return: s(0.11), OK: true},
		history.Op{Client: "i0", Kind: history.RegLookup, Flow: "f1", Values: []string{"c1"}, Call: s(0.5), Return: s(0.51), OK: true},
		history.Op{Client: "i0", Kind: history.RegCount, Value: "inst-0", Count: 1, Call: s(0.52), Return: s(0.53), OK: true},
		history.Op{Client: "e", Kind: history.RedisState, Value: "up", Call: s(0), Return: s(0), OK: true},
		history.Op{Client: "e", Kind: history.RedisState, Value: "down", Call: s(2), Return: s(2), OK: true},
		history.Op{Client: "e", Kind: history.RedisState, Value: "up", Call: s(3), Return: s(3), OK: true},
		history.Op{Client: "hc", Kind: history.Health, Value: "healthy", Call: s(0.1), Return: s(0.11), OK: true},
		history.Op{Client: "hc", Kind: history.Health, Value: "unavailable", Call: s(2.2), Return: s(2.21), OK: true},
		history.Op{Client: "hc", Kind: history.Health, Value: "healthy", Call: s(3.2), Return: s(3.21), OK: true},
		rd("f1", 4.5, "p0-1", "p0-2", "p0-3", "p0-4"),
		history.Op{Client: "harness", Kind: history.StreamInfo, Flow: "f1", Count: 4, Value: "86399000", Call: s(4.6), Return: s(4.61), OK: true},
		exitOp("inst-1", ExitStop, 1.5, true),
		exitOp("inst-2", ExitKill, 1.6, false),
		rssOp("inst-0", 1, 30<<20), rssOp("inst-0", 2, 31<<20),
	))
}

// withCounts records in h's meta, as the engine does, one Redis round trip
// and one command per publish, cache read and registry lookup.
func withCounts(h history.History) history.History {
	n := map[string]int{}
	for _, o := range h.Ops {
		n[o.Kind]++
	}
	h.Meta = map[string]string{}
	for _, k := range roundTripKinds {
		h.Meta["counter."+k+".round_trips"] = strconv.Itoa(n[k])
		h.Meta["counter."+k+".commands"] = strconv.Itoa(n[k])
	}
	return h
}

func TestRichHistoryPassesEveryCheck(t *testing.T) {
	c := Config{HealthInterval: time.Second, MinRateBefore: 0.5}
	rs, err := Run(rich(), nil, c)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := len(rs), len(Checks); got != want {
		t.Fatalf("len(results) = %d; want %d", got, want)
	}
	for _, r := range rs {
		if r.Verdict != verdict.Pass {
			t.Errorf("%s: Verdict = %s (%v, %q); want PASS", r.Check, r.Verdict, r.Err, r.Evidence)
		}
	}
}

func TestEveryMetricIsCatalogued(t *testing.T) {
	h := rich()
	// Add failures so that failure-only metrics show up too.
	h.Ops = append(h.Ops, pub("p1", "f1", 1, 4.0, 5.5, false), rd("f2", 4.6))
	checks := map[string]bool{}
	for _, ch := range Checks {
		checks[ch.Name] = true
	}
	for _, ch := range Checks {
		r := ch.Func(h, Config{HealthInterval: time.Second})
		if len(r.Metrics) == 0 {
			t.Errorf("%s: no metrics; want some (verdict %s, %v)", ch.Name, r.Verdict, r.Err)
		}
		for name := range r.Metrics {
			m, ok := MetricNamed(name)
			if !ok {
				t.Errorf("%s: metric %q is not in the catalogue", ch.Name, name)
				continue
			}
			if m.Check != ch.Name {
				t.Errorf("metric %q: catalogue says check %q; produced by %q", name, m.Check, ch.Name)
			}
		}
	}
	seen := map[string]bool{}
	for _, m := range Metrics {
		if seen[m.Name] {
			t.Errorf("metric %q catalogued twice", m.Name)
		}
		seen[m.Name] = true
		if !checks[m.Check] {
			t.Errorf("metric %q: check %q does not exist", m.Name, m.Check)
		}
		switch m.Unit {
		case "count", "ms", "%", "ops/s", "MiB":
		default:
			t.Errorf("metric %q: unit %q; want count, ms, %%, ops/s or MiB", m.Name, m.Unit)
		}
	}
	if _, ok := MetricNamed("publish_p99_ms_before"); !ok {
		t.Errorf("MetricNamed(publish_p99_ms_before) not found; want it catalogued")
	}
	if _, ok := MetricNamed("publish_p98_ms"); ok {
		t.Errorf("MetricNamed(publish_p98_ms) found; want unknown")
	}
}

func TestEmptyHistoryIsNeverPass(t *testing.T) {
	for _, ch := range Checks {
		for _, h := range []history.History{{}, {Faults: []history.Fault{fault("kill", 1, 2)}}} {
			r := ch.Func(h, Config{})
			if r.Verdict != verdict.Inconclusive || !errors.Is(r.Err, ErrNoData) {
				t.Errorf("%s on %d faults, no ops: %s (%v); want INCONCLUSIVE with ErrNoData", ch.Name, len(h.Faults), r.Verdict, r.Err)
			}
		}
	}
}

func TestFaultAtTimeZero(t *testing.T) {
	h := rich()
	h.Faults = []history.Fault{fault("down-at-start", 0, 1)}
	for _, tt := range []struct {
		min  float64
		want verdict.Verdict
	}{{0, verdict.Pass}, {10, verdict.Inconclusive}} {
		r := Load(h, Config{MinRateBefore: tt.min})
		if r.Verdict != tt.want {
			t.Errorf("Load with MinRateBefore %g, fault at 0: %s (%v); want %s", tt.min, r.Verdict, r.Err, tt.want)
		}
		if tt.want == verdict.Inconclusive && !errors.Is(r.Err, ErrLowLoad) {
			t.Errorf("Load err = %v; want ErrLowLoad", r.Err)
		}
	}
	// Every checker copes with a run that has no before phase.
	for _, ch := range Checks {
		r := ch.Func(h, Config{HealthInterval: time.Second})
		if r.Verdict == "" {
			t.Errorf("%s: empty verdict", ch.Name)
		}
	}
}

func TestRun(t *testing.T) {
	lost := hist([]history.Fault{fault("kill", 1, 2)},
		pub("p0", "f1", 1, 0.1, 0.11, true),
		pub("p0", "f1", 2, 0.2, 0.21, true),
		rd("f1", 3, "p0-1"))
	tests := []struct {
		name    string
		names   []string
		c       Config
		want    []verdict.Verdict
		wantErr []error
	}{
		{"judged", []string{"lost"}, Config{}, []verdict.Verdict{verdict.Fail}, []error{ErrLost}},
		{"enough load", []string{"lost", "load"}, Config{MinRateBefore: 1}, []verdict.Verdict{verdict.Fail, verdict.Pass}, []error{ErrLost, nil}},
		{"low load", []string{"lost", "reordered", "load"}, Config{MinRateBefore: 100},
			[]verdict.Verdict{verdict.Inconclusive, verdict.Inconclusive, verdict.Inconclusive}, []error{ErrLost, ErrLowLoad, ErrLowLoad}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := Run(lost, tt.names, tt.c)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			for i, r := range rs {
				if r.Check != tt.names[i] || r.Verdict != tt.want[i] {
					t.Errorf("result %d = %s %s; want %s %s", i, r.Check, r.Verdict, tt.names[i], tt.want[i])
				}
				if tt.wantErr[i] != nil && !errors.Is(r.Err, tt.wantErr[i]) {
					t.Errorf("%s: Err = %v; want %q", r.Check, r.Err, tt.wantErr[i])
				}
			}
		})
	}
	t.Run("low load keeps the judgement as evidence", func(t *testing.T) {
		rs, _ := Run(lost, []string{"lost"}, Config{MinRateBefore: 100})
		r := rs[0]
		if !errors.Is(r.Err, ErrLowLoad) || !errors.Is(r.Err, ErrLost) {
			t.Errorf("Err = %v; want both ErrLowLoad and ErrLost", r.Err)
		}
		if len(r.Evidence) < 2 || !strings.Contains(r.Evidence[0], "would have been FAIL") || !strings.Contains(r.Evidence[1], "p0-2") {
			t.Errorf("Evidence = %q; want a not-judged line, then the loss of p0-2", r.Evidence)
		}
	})
	t.Run("unknown check", func(t *testing.T) {
		_, err := Run(lost, []string{"lost", "nope"}, Config{})
		if err == nil || exitcode.Of(err) != exitcode.BadInput || !strings.Contains(err.Error(), `"nope"`) {
			t.Errorf("Run(nope) err = %v (exit %d); want a bad-input error naming nope", err, exitcode.Of(err))
		}
	})
}

func TestPhase(t *testing.T) {
	overlapping := []history.Fault{fault("b", 2, 4), fault("a", 1, 3), fault("c", 6, 7)}
	tests := []struct {
		name   string
		faults []history.Fault
		t      float64
		want   Period
	}{
		{"no fault", nil, 5, Before},
		{"before first", overlapping, 0.5, Before},
		{"start is during", overlapping, 1, During},
		{"overlap", overlapping, 2.5, During},
		{"second only", overlapping, 3.5, During},
		{"end is after", overlapping, 4, After},
		{"between counts as after", overlapping, 5, After},
		{"third", overlapping, 6.5, During},
		{"after last", overlapping, 8, After},
		{"zero-length fault, before", []history.Fault{fault("kill", 2, 2)}, 1.9, Before},
		{"zero-length fault, after", []history.Fault{fault("kill", 2, 2)}, 2, After},
		{"fault at 0", []history.Fault{fault("x", 0, 1)}, 0, During},
		{"never undone", []history.Fault{{Name: "x", Start: s(1), End: 0}}, 1e6, During},
	}
	for _, tt := range tests {
		h := history.History{Faults: tt.faults}
		if got := Phase(h, s(tt.t)); got != tt.want {
			t.Errorf("%s: Phase(%gs) = %s; want %s", tt.name, tt.t, got, tt.want)
		}
	}
	ws := windowsOf(faultsOf(history.History{Faults: overlapping}))
	if len(ws) != 2 || ws[0].name() != "a+b" || ws[0].Start != s(1) || ws[0].End != s(4) {
		t.Errorf("windows = %+v; want [1s,4s) a+b then c", ws)
	}
}

func TestPercentile(t *testing.T) {
	var xs []time.Duration
	for i := 100; i >= 1; i-- {
		xs = append(xs, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		xs   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{[]time.Duration{7}, 99, 7},
		{xs, 0, time.Millisecond},
		{xs, 50, 50 * time.Millisecond},
		{xs, 90, 90 * time.Millisecond},
		{xs, 99, 99 * time.Millisecond},
		{xs, 99.9, 100 * time.Millisecond},
		{xs, 100, 100 * time.Millisecond},
		{[]time.Duration{3, 1, 2}, 50, 2},
	}
	for _, tt := range tests {
		if got := Percentile(tt.xs, tt.p); got != tt.want {
			t.Errorf("Percentile(%d values, %g) = %v; want %v", len(tt.xs), tt.p, got, tt.want)
		}
	}
	if xs[0] != 100*time.Millisecond {
		t.Errorf("Percentile modified its input: xs[0] = %v; want 100ms", xs[0])
	}
}

func TestEvidenceIsCapped(t *testing.T) {
	var ops []history.Op
	for i := int64(1); i <= 30; i++ {
		ops = append(ops, pub("p0", "f1", i, float64(i)/100, float64(i)/100+0.001, true))
	}
	srv := rd("f1", 1)
	srv.Kind = history.ServerRead
	ops = append(ops, srv)
	for _, tt := range []struct {
		max, want int
	}{{0, 21}, {5, 6}, {-1, 30}} {
		r := Lost(hist(nil, ops...), Config{MaxEvidence: tt.max})
		if len(r.Evidence) != tt.want {
			t.Errorf("MaxEvidence %d: %d evidence lines; want %d", tt.max, len(r.Evidence), tt.want)
		}
		if r.Metrics["lost"] != 30 {
			t.Errorf("MaxEvidence %d: lost = %v; want 30", tt.max, r.Metrics["lost"])
		}
	}
}

func TestResultJSON(t *testing.T) {
	r := Lost(hist(nil, pub("p0", "f1", 1, 0.1, 0.11, true), rd("f1", 1)), Config{})
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	for k, want := range map[string]any{"check": "lost", "verdict": "FAIL", "error": r.Err.Error(), "guarantee": ErrLost.Error()} {
		if got[k] != want {
			t.Errorf("JSON %s = %v; want %v", k, got[k], want)
		}
	}
	if m, _ := got["metrics"].(map[string]any); m["lost"] != 1.0 {
		t.Errorf("JSON metrics = %v; want lost 1", got["metrics"])
	}
}
