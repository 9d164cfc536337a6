package check

import (
	"fmt"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
)

func TestBudget(t *testing.T) {
	fast := []history.Op{pub("p0", "f1", 1, 0.1, 0.11, true), op(history.CacheGet, "c1", "f1", 0.2, 0.21, true)}
	slow := pub("p0", "f1", 2, 2.0, 3.5, false)
	slow.Err = "context deadline exceeded"
	slower := pub("p0", "f1", 3, 2.1, 4.1, true)
	blackhole := []history.Fault{fault("blackhole", 2, 5)}
	runTable(t, "budget", Budget, []tc{
		{name: "within budget", h: hist(blackhole, fast...), verdict: verdict.Pass,
			metrics: map[string]float64{"over_budget": 0, "budget_worst_ms": 10}},
		{name: "blocked under blackhole, worst first", h: hist(blackhole, append(fast, slow, slower)...), verdict: verdict.Fail, err: ErrBlocked,
			evidence: []string{
				"publish by p0 (flow f1, event p0-3) took 2s (budget 50ms), called at 2.100s during fault blackhole",
				"publish by p0 (flow f1, event p0-2) took 1.5s (budget 50ms), called at 2.000s during fault blackhole: context deadline exceeded",
			},
			metrics: map[string]float64{"over_budget": 2, "budget_worst_ms": 2000}},
		{name: "only the configured kinds", h: hist(nil, slow, op(history.CacheGet, "c1", "f1", 0.2, 0.25, true)),
			c:       Config{BudgetKinds: []string{history.CacheGet}, Budget: map[string]time.Duration{history.CacheGet: 10 * time.Millisecond}},
			verdict: verdict.Fail, err: ErrBlocked, evidence: []string{"cache_get by c1 (flow f1) took 50ms (budget 10ms)"},
			metrics: map[string]float64{"over_budget": 1, "budget_worst_ms": 50}},
		{name: "kind without its own budget gets 50ms", h: hist(nil, op(history.Read, "r", "f1", 0, 0.06, true)),
			c: Config{BudgetKinds: []string{history.Read}}, verdict: verdict.Fail, err: ErrBlocked},
		{name: "no budgeted op", h: hist(nil, op(history.Health, "h", "", 0, 5, true)), verdict: verdict.Inconclusive, err: ErrNoData},
	})
}

// TestBudgetStalls: harness stalls are subtracted from a call by their
// overlap with it, merged first, never more.
func TestBudgetStalls(t *testing.T) {
	stalls := func(h history.History, ws ...[2]float64) history.History {
		for _, w := range ws {
			h.Stalls = append(h.Stalls, history.Stall{Start: s(w[0]), End: s(w[1])})
		}
		return h
	}
	call := func(from, to float64) history.History { return hist(nil, pub("p0", "f1", 1, from, to, true)) }
	runTable(t, "budget", Budget, []tc{
		{name: "call fully explained by a stall", h: stalls(call(2.0, 2.4), [2]float64{2.0, 2.38}), verdict: verdict.Pass,
			evidence: []string{"1 calls over budget only for harness stalls (not the layer's); slowest: publish by p0 (flow f1, event p0-1) took 400ms, 380ms of it a harness stall, called at 2.000s"},
			metrics:  map[string]float64{"over_budget": 0, "stall_excused": 1, "harness_stalls": 1, "harness_stall_max_ms": 380, "budget_worst_ms": 400}},
		{name: "over budget by more than the stall", h: stalls(call(2.0, 2.5), [2]float64{2.1, 2.3}), verdict: verdict.Fail, err: ErrBlocked,
			evidence: []string{"publish by p0 (flow f1, event p0-1) took 500ms (300ms after subtracting 200ms of harness stall) (budget 50ms), called at 2.000s no fault"},
			metrics:  map[string]float64{"over_budget": 1, "stall_excused": 0}},
		{name: "overlapping stalls merged, not double-counted", h: stalls(call(2.0, 2.36), [2]float64{2.0, 2.2}, [2]float64{2.1, 2.3}), verdict: verdict.Fail, err: ErrBlocked,
			evidence: []string{"took 360ms (60ms after subtracting 300ms of harness stall)"},
			metrics:  map[string]float64{"over_budget": 1, "harness_stalls": 1, "harness_stall_max_ms": 300}},
		{name: "touching stalls merged", h: stalls(call(2.0, 2.3), [2]float64{2.0, 2.1}, [2]float64{2.1, 2.26}), verdict: verdict.Pass,
			metrics: map[string]float64{"harness_stalls": 1, "harness_stall_max_ms": 260, "stall_excused": 1}},
		{name: "only the overlap is excused", h: stalls(call(2.0, 2.2), [2]float64{1.5, 2.05}), verdict: verdict.Fail, err: ErrBlocked,
			evidence: []string{"took 200ms (150ms after subtracting 50ms of harness stall)"}},
		{name: "two stalls inside one call add up", h: stalls(call(2.0, 2.3), [2]float64{2.0, 2.1}, [2]float64{2.14, 2.3}), verdict: verdict.Pass,
			metrics: map[string]float64{"harness_stalls": 2, "stall_excused": 1}},
		{name: "a stall outside the call excuses nothing", h: stalls(call(2.0, 2.2), [2]float64{2.2, 2.6}, [2]float64{1.0, 2.0}), verdict: verdict.Fail, err: ErrBlocked,
			evidence: []string{"took 200ms (budget 50ms)"}, metrics: map[string]float64{"harness_stall_max_ms": 1000}},
		{name: "no stall", h: call(2.0, 2.04), verdict: verdict.Pass, metrics: map[string]float64{"harness_stalls": 0, "harness_stall_max_ms": 0}},
	})
}

func TestFallbackTime(t *testing.T) {
	failing := func(call float64) history.Op { return pub("p0", "f1", int64(call*100), call, call+0.05, false) }
	down := []history.Fault{fault("down", 1, 3)}
	runTable(t, "fallback_time", FallbackTime, []tc{
		{name: "memory-mode call soon after", h: hist(down, failing(1.0), withMode(op(history.CacheGet, "c1", "f1", 1.1, 1.12, true), "memory"), failing(1.2)),
			verdict: verdict.Pass, evidence: []string{"fault down started at 1.000s: first successful call 120ms after (cache_get by c1 (flow f1) returned at 1.120s)"},
			metrics: map[string]float64{"fallback_ms": 120}},
		{name: "successful publish counts whatever the mode", h: hist(down, pub("p0", "f1", 1, 1.3, 1.31, true)),
			verdict: verdict.Pass, metrics: map[string]float64{"fallback_ms": 310}},
		{name: "redis-mode non-publish does not count", h: hist(down, withMode(op(history.CacheGet, "c1", "f1", 1.1, 1.12, true), "redis"), pub("p0", "f1", 1, 2.5, 2.51, true)),
			verdict: verdict.Fail, err: ErrNoFallback, evidence: []string{"first successful call 1.51s after", "over the 1s bound"},
			metrics: map[string]float64{"fallback_ms": 1510}},
		{name: "never", h: hist(down, failing(1.0), failing(2.0), failing(4.0)),
			verdict: verdict.Fail, err: ErrNoFallback, evidence: []string{"fault down started at 1.000s: first successful call never, 3 calls over the next 3.05s"}},
		{name: "too little observed to say", h: hist(down, failing(1.0), failing(1.5)),
			verdict: verdict.Inconclusive, err: ErrNoData},
		{name: "no call after the fault", h: hist(down, pub("p0", "f1", 1, 0.1, 0.11, true)),
			verdict: verdict.Inconclusive, err: ErrNoData},
		{name: "overlapping faults are one window", h: hist([]history.Fault{fault("a", 1, 3), fault("b", 2, 4)}, pub("p0", "f1", 1, 1.2, 1.21, true)),
			verdict: verdict.Pass, evidence: []string{"fault a+b started at 1.000s"}},
		{name: "fault at time zero", h: hist([]history.Fault{fault("down-at-start", 0, 2)}, failing(0), withMode(pub("p0", "f1", 1, 0.05, 0.06, true), "memory")),
			verdict: verdict.Pass, metrics: map[string]float64{"fallback_ms": 60}},
		{name: "no fault", h: hist(nil, pub("p0", "f1", 1, 0.1, 0.11, true)), verdict: verdict.Inconclusive, err: ErrNoData},
	})
}

func TestRecoverTime(t *testing.T) {
	mem := func(call float64) history.Op {
		return withMode(pub("p0", "f1", int64(call*100), call, call+0.01, true), "memory")
	}
	red := func(call float64) history.Op {
		return withMode(pub("p0", "f1", int64(call*100), call, call+0.01, true), "redis")
	}
	down := []history.Fault{fault("down", 1, 3)}
	runTable(t, "recover_time", RecoverTime, []tc{
		{name: "back on redis", h: hist(down, red(0.5), mem(1.5), mem(3.1), red(3.3)),
			verdict: verdict.Pass, evidence: []string{"fault down ended at 3.000s: first call served from redis 310ms after"},
			metrics: map[string]float64{"recover_ms": 310}},
		{name: "no switch back", h: hist(down, red(0.5), mem(1.5), mem(3.1), mem(5), mem(9)),
			verdict: verdict.Fail, err: ErrNoRecovery, evidence: []string{"fault down ended at 3.000s: first call served from redis never, 3 calls over the next 6.01s"}},
		{name: "slow switch back", h: hist(down, mem(3.1), red(6)),
			verdict: verdict.Fail, err: ErrNoRecovery, metrics: map[string]float64{"recover_ms": 3010}},
		{name: "start-up outage (fault at 0)", h: hist([]history.Fault{fault("down-at-start", 0, 1)}, mem(0.1), mem(1.1), red(1.5)),
			verdict: verdict.Pass, metrics: map[string]float64{"recover_ms": 510}},
		{name: "gap between flaps too short to judge, last window judged", h: hist([]history.Fault{fault("f1", 1, 1.5), fault("f2", 2, 2.5)}, mem(1.6), mem(1.8), red(2.7)),
			verdict: verdict.Pass, evidence: []string{"fault f1: 2 calls in the 500ms observed after it ended", "fault f2 ended at 2.500s"},
			metrics: map[string]float64{"recover_ms": 210}},
		{name: "fault never undone", h: hist([]history.Fault{{Name: "x", Start: s(1), End: 0}}, mem(1.5)),
			verdict: verdict.Inconclusive, err: ErrNoData, evidence: []string{"fault x never ended"}},
		{name: "mode never reported", h: hist(down, pub("p0", "f1", 1, 3.5, 3.51, true)),
			verdict: verdict.Inconclusive, err: ErrNoData},
	})
}

// TestTimingStalls: a harness stall between a fault's edge and the first
// call that shows the layer recovered or fell back is the harness's time,
// not the layer's: it is subtracted, and said so.
func TestTimingStalls(t *testing.T) {
	stalled := func(h history.History, from, to float64) history.History {
		h.Stalls = append(h.Stalls, history.Stall{Start: s(from), End: s(to)})
		return h
	}
	mem := func(call float64) history.Op {
		return withMode(pub("p0", "f1", int64(call*100), call, call+0.01, true), "memory")
	}
	red := func(call float64) history.Op {
		return withMode(pub("p0", "f1", int64(call*100), call, call+0.01, true), "redis")
	}
	down := []history.Fault{fault("down", 1, 3)}
	runTable(t, "recover_time", RecoverTime, []tc{
		{name: "a stall explains the slow switch back", h: stalled(hist(down, mem(3.1), red(5.5)), 3.2, 5.0),
			verdict: verdict.Pass, evidence: []string{"first call served from redis 710ms after (publish by p0 (flow f1, event p0-550) returned at 5.510s), 1.8s of harness stall subtracted"},
			metrics: map[string]float64{"recover_ms": 710}},
		{name: "slow beyond the stall", h: stalled(hist(down, mem(3.1), red(6)), 3.2, 3.5),
			verdict: verdict.Fail, err: ErrNoRecovery, metrics: map[string]float64{"recover_ms": 2710}},
		{name: "a stall outside the interval excuses nothing", h: stalled(hist(down, mem(3.1), red(6)), 6.5, 9),
			verdict: verdict.Fail, err: ErrNoRecovery, metrics: map[string]float64{"recover_ms": 3010}},
		{name: "a stalled span is too short to judge", h: stalled(hist(down, mem(3.1), mem(4.5)), 3.2, 4.4),
			verdict: verdict.Inconclusive, err: ErrNoData},
	})
	runTable(t, "fallback_time", FallbackTime, []tc{
		{name: "a stall explains the slow fallback", h: stalled(hist(down, pub("p0", "f1", 1, 2.5, 2.51, true)), 1.2, 2.4),
			verdict: verdict.Pass, metrics: map[string]float64{"fallback_ms": 310}},
	})
}

func TestErrorRate(t *testing.T) {
	var ops []history.Op
	for i := 0; i < 100; i++ {
		ops = append(ops, pub("p0", "f1", int64(i), float64(i)/100, float64(i)/100+0.001, true))
	}
	during := func(n, failed int) []history.Op {
		out := append([]history.Op(nil), ops...)
		for i := 0; i < n; i++ {
			o := pub("p1", "f1", int64(i), 1+float64(i)/1000, 1+float64(i)/1000+0.001, i >= failed)
			if !o.OK {
				o.Err = "timeout"
			}
			out = append(out, o)
		}
		return append(out, op(history.Deliver, "s1", "f1", 1, 1, false)) // not a layer call
	}
	down := []history.Fault{fault("down", 1, 2)}
	runTable(t, "error_rate", ErrorRate, []tc{
		{name: "no errors", h: hist(down, during(100, 0)...), verdict: verdict.Pass,
			metrics: map[string]float64{"error_rate_before": 0, "error_rate_during": 0}, absent: []string{"error_rate_after"}},
		{name: "errors during the fault", h: hist(down, during(100, 10)...), verdict: verdict.Fail, err: ErrErrorRate,
			evidence: []string{"during: 10 of 100 calls failed (10.00%; publish 10); first: publish by p1 (flow f1, event p1-0) at 1.000s: timeout; bound 1%"},
			metrics:  map[string]float64{"error_rate_before": 0, "error_rate_during": 10}},
		{name: "below the bound", h: hist(down, during(200, 1)...), verdict: verdict.Pass,
			evidence: []string{"during: 1 of 200 calls failed (0.50%"}, metrics: map[string]float64{"error_rate_during": 0.5}},
		{name: "bound disabled", c: Config{MaxErrorRate: -1}, h: hist(down, during(100, 50)...), verdict: verdict.Pass,
			metrics: map[string]float64{"error_rate_during": 50}},
		{name: "between overlapping faults counts as after", h: hist([]history.Fault{fault("a", 0.2, 0.4), fault("b", 0.3, 0.5), fault("c", 0.8, 0.9)}, ops...),
			verdict: verdict.Pass, metrics: map[string]float64{"error_rate_before": 0, "error_rate_during": 0, "error_rate_after": 0}},
		{name: "no layer call", h: hist(down, op(history.Health, "h", "", 0, 1, false)), verdict: verdict.Inconclusive, err: ErrNoData},
	})
}

func TestLatency(t *testing.T) {
	var ops []history.Op
	for i := 1; i <= 100; i++ {
		ops = append(ops, pub("p0", "f1", int64(i), 0, float64(i)/1000, true))
		ops = append(ops, pub("p1", "f1", int64(i), 2, 2+float64(i)/100, true))
	}
	ops = append(ops, op(history.Subscribe, "s1", "f1", 0, 9, true), op(history.RedisState, "e", "", 0, 0, true))
	h := hist([]history.Fault{fault("down", 1, 3)}, ops...)
	runTable(t, "latency", Latency, []tc{
		{name: "per phase and overall", h: h, verdict: verdict.Pass,
			metrics: map[string]float64{
				"publish_p50_ms_before": 50, "publish_p90_ms_before": 90, "publish_p99_ms_before": 99, "publish_max_ms_before": 100,
				"publish_p50_ms_during": 500, "publish_max_ms_during": 1000,
				"publish_p50_ms": 91, "publish_max_ms": 1000,
			},
			absent: []string{"publish_p50_ms_after", "subscribe_max_ms", "redis_state_max_ms"}},
		{name: "nothing to time", h: hist(nil, op(history.Subscribe, "s1", "f1", 0, 9, true)), verdict: verdict.Inconclusive, err: ErrNoData},
	})
}

func state(v string, at float64) history.Op {
	return history.Op{Client: "engine", Kind: history.RedisState, Value: v, Call: s(at), Return: s(at), OK: true}
}

// polls records a health op every 0.25s in [from, to) reporting status.
func polls(status string, from, to float64) []history.Op {
	var out []history.Op
	for x := from; x < to-1e-9; x += 0.25 {
		out = append(out, history.Op{Client: "hc", Kind: history.Health, Value: status, Call: s(x), Return: s(x + 0.01), OK: true})
	}
	return out
}

func TestHealth(t *testing.T) {
	c := Config{HealthInterval: time.Second}
	mk := func(ops ...[]history.Op) history.History {
		var all []history.Op
		for _, o := range ops {
			all = append(all, o...)
		}
		return hist(nil, all...)
	}
	states := []history.Op{state("up", 0), state("up", 1), state("down", 2), state("up", 5)}
	runTable(t, "health", Health, []tc{
		{name: "follows redis", c: c, h: mk(states, polls("healthy", 0, 2.3), polls("unavailable", 2.5, 5.2), polls("healthy", 5.25, 8)),
			verdict: verdict.Pass, metrics: map[string]float64{"health_mismatches": 0, "health_lag_ms": 510}},
		{name: "never notices the outage", c: c, h: mk(states, polls("healthy", 0, 8)),
			verdict: verdict.Fail, err: ErrHealthMismatch,
			evidence: []string{`redis down at 2.000s: health did not report it within 1s; reported "healthy" at 2.000s, "healthy" at 2.250s, "healthy" at 2.500s`},
			metrics:  map[string]float64{"health_mismatches": 1}},
		{name: "notices too late", c: c, h: mk(states, polls("healthy", 0, 3.5), polls("unhealthy", 3.5, 5), polls("healthy", 5, 8)),
			verdict: verdict.Fail, err: ErrHealthMismatch, evidence: []string{"redis down at 2.000s: health did not report it within 1s (it did after 1.51s)"}},
		{name: "change too close to the end", c: c, h: mk([]history.Op{state("up", 0), state("down", 2)}, polls("healthy", 0, 2.5)),
			verdict: verdict.Pass, evidence: []string{"redis down at 2.000s: only 260ms observed"}},
		{name: "flap shorter than the interval is not judged", c: c, h: mk([]history.Op{state("down", 0), state("up", 0.5)}, polls("healthy", 0, 0.4)),
			verdict: verdict.Inconclusive, err: ErrNoData},
		{name: "default interval is 30s", h: mk(states, polls("healthy", 0, 3.5), polls("unhealthy", 3.5, 5), polls("healthy", 5, 8)),
			verdict: verdict.Pass},
		{name: "no redis state", c: c, h: mk(polls("healthy", 0, 1)), verdict: verdict.Inconclusive, err: ErrNoData},
		{name: "no health call", c: c, h: mk(states), verdict: verdict.Inconclusive, err: ErrNoData},
	})
}

func TestLoad(t *testing.T) {
	var ops []history.Op
	for i := 0; i < 100; i++ {
		ops = append(ops, pub("p0", "f1", int64(i), float64(i)/100, float64(i)/100+0.001, i%10 != 0))
	}
	ops = append(ops, pub("p0", "f1", 1000, 1.5, 1.501, true))
	at1 := []history.Fault{fault("down", 1, 2)}
	runTable(t, "load", Load, []tc{
		{name: "measured without a target", h: hist(at1, ops...), verdict: verdict.Pass,
			evidence: []string{"90 acknowledged publishes in 1s before the first fault: 90.0 ops/s"}, metrics: map[string]float64{"publish_rate_before": 90}},
		{name: "meets the target", c: Config{MinRateBefore: 90}, h: hist(at1, ops...), verdict: verdict.Pass},
		{name: "below the target", c: Config{MinRateBefore: 100}, h: hist(at1, ops...), verdict: verdict.Inconclusive, err: ErrLowLoad,
			evidence: []string{"90.0 ops/s, target 100 ops/s"}, metrics: map[string]float64{"publish_rate_before": 90}},
		{name: "no fault: the whole run", h: hist(nil, ops...), verdict: verdict.Pass,
			metrics: map[string]float64{"publish_rate_before": 91 / 1.501}},
		{name: "fault at 0 without a target", h: hist([]history.Fault{fault("x", 0, 1)}, ops...), verdict: verdict.Pass,
			absent: []string{"publish_rate_before"}},
		{name: "fault at 0 with a target", c: Config{MinRateBefore: 1}, h: hist([]history.Fault{fault("x", 0, 1)}, ops...),
			verdict: verdict.Inconclusive, err: ErrLowLoad, evidence: []string{"no time before the first fault at 0.000s"}},
		{name: "no publish at all", c: Config{MinRateBefore: 1}, h: hist(at1, op(history.CacheGet, "c", "f1", 0, 0.1, true)),
			verdict: verdict.Inconclusive, err: ErrLowLoad, metrics: map[string]float64{"publish_rate_before": 0}},
	})
	if got := fmt.Sprint(Load(history.History{}, Config{}).Verdict); got != string(verdict.Inconclusive) {
		t.Errorf("Load(empty) = %s; want INCONCLUSIVE", got)
	}
}
