package check

import (
	"testing"
	"time"

	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
)

// cnt is a successful count read of n on instance inst.
func cnt(inst string, call, ret float64, n int64) history.Op {
	return history.Op{Client: "lookup-" + inst, Kind: history.RegCount, Value: inst, Count: n, Call: s(call), Return: s(ret), OK: true}
}

func TestRegistryCount(t *testing.T) {
	c := Config{RegistryTTL: time.Second, CleanupInterval: 250 * time.Millisecond}
	// c1 (flow f1) and c2 (flow f2) register at 0 on different instances
	// and heartbeat every 0.3s until 3.0s; c1 then stops.
	ops := []history.Op{reg(history.RegRegister, "c1", "f1", 0, 0.01), reg(history.RegRegister, "c2", "f2", 0, 0.01)}
	for x := 0.3; x <= 3.01; x += 0.3 {
		ops = append(ops, reg(history.RegHeartbeat, "c1", "f1", x, x+0.01))
	}
	for x := 0.3; x <= 6.01; x += 0.3 {
		ops = append(ops, reg(history.RegHeartbeat, "c2", "f2", x, x+0.01))
	}
	mk := func(faults []history.Fault, extra ...history.Op) history.History {
		return hist(faults, append(append([]history.Op(nil), ops...), extra...)...)
	}
	failed := cnt("inst-0", 1, 1.01, 0)
	failed.OK = false
	runTable(t, "registry_count", RegistryCount, []tc{
		{name: "every instance agrees", c: c,
			h:       mk(nil, cnt("inst-0", 1, 1.01, 2), cnt("inst-1", 1, 1.01, 2), cnt("inst-1", 5.5, 5.51, 1)),
			verdict: verdict.Pass, metrics: map[string]float64{"count_reads": 3, "count_mismatches": 0}},
		{name: "an instance counts only its own", c: c,
			h:       mk(nil, cnt("inst-0", 1, 1.01, 2), cnt("inst-1", 1, 1.01, 1), cnt("inst-1", 2, 2.01, 1)),
			verdict: verdict.Fail, err: ErrCountMismatch,
			evidence: []string{"instance inst-1: 2 count reads outside the range the registrations, unregistrations and expiries allow; first: count on inst-1 by lookup-inst-1 at 1.000s (no fault) returned 1 at 1.010s; consistent range [2, 2]; live throughout: c1, c2"},
			metrics:  map[string]float64{"count_reads": 3, "count_mismatches": 2}},
		{name: "counting a connection past TTL + cleanup", c: c,
			h:       mk(nil, cnt("inst-0", 5.5, 5.51, 2)),
			verdict: verdict.Fail, err: ErrCountMismatch, evidence: []string{"returned 2 at 5.510s; consistent range [1, 1]"}},
		{name: "registration in flight may be counted or not", c: c,
			h: mk(nil, reg(history.RegRegister, "c3", "f1", 0.95, 1.05),
				cnt("inst-0", 1, 1.01, 2), cnt("inst-1", 1, 1.01, 3)),
			verdict: verdict.Pass, metrics: map[string]float64{"count_mismatches": 0}},
		{name: "a registration that has not been called is not counted", c: c,
			h:       mk(nil, reg(history.RegRegister, "c3", "f1", 1.02, 1.05), cnt("inst-1", 1, 1.01, 3)),
			verdict: verdict.Fail, err: ErrCountMismatch, evidence: []string{"consistent range [2, 2]"}},
		{name: "unregister in flight need not be counted", c: c,
			h:       mk(nil, reg(history.RegUnreg, "c2", "f2", 0.99, 1.05), cnt("inst-0", 1, 1.01, 1)),
			verdict: verdict.Pass},
		{name: "unregistered may linger until TTL + cleanup", c: c,
			h:       mk(nil, reg(history.RegUnreg, "c2", "f2", 0.5, 0.51), cnt("inst-0", 1, 1.01, 2), cnt("inst-0", 1.1, 1.11, 1)),
			verdict: verdict.Pass},
		{name: "counting an unregistered connection", c: c,
			h: mk(nil, reg(history.RegUnreg, "c1", "f1", 3.1, 3.11), cnt("inst-0", 3.2, 3.21, 1),
				cnt("inst-1", 3.2, 3.21, 2)),
			verdict: verdict.Fail, err: ErrCountMismatch, evidence: []string{"consistent range [1, 1]"}},
		{name: "failed reads are not judged", c: c, h: mk(nil, failed, cnt("inst-0", 1, 1.01, 2)),
			verdict: verdict.Pass, metrics: map[string]float64{"count_reads": 1}},
		{name: "reads during a fault judged by default", c: c,
			h:       mk([]history.Fault{fault("down", 0.9, 1.5)}, cnt("inst-1", 1, 1.01, 1)),
			verdict: verdict.Fail, err: ErrCountMismatch, evidence: []string{"(during fault down)"}},
		{name: "reads during a fault exempt when asked", c: Config{RegistryTTL: time.Second, CleanupInterval: 250 * time.Millisecond, SkipFaultWindows: true},
			h:       mk([]history.Fault{fault("down", 0.9, 1.5)}, cnt("inst-1", 1, 1.01, 1)),
			verdict: verdict.Inconclusive, err: ErrNoData},
		{name: "no connection: zero", c: c, h: hist(nil, cnt("inst-0", 1, 1.01, 0)),
			verdict: verdict.Pass, metrics: map[string]float64{"count_reads": 1}},
		{name: "no count read", c: c, h: mk(nil), verdict: verdict.Inconclusive, err: ErrNoData},
	})
}

// TestRegistryCountEdges pins the range at the TTL edges, with the
// registry check's rules: c1's last heartbeat is called at 0.4 and returns
// at 0.428.
func TestRegistryCountEdges(t *testing.T) {
	c := Config{RegistryTTL: time.Second, CleanupInterval: 250 * time.Millisecond}
	ops := []history.Op{reg(history.RegRegister, "c1", "f1", 0, 0.01), reg(history.RegHeartbeat, "c1", "f1", 0.4, 0.428)}
	mk := func(extra ...history.Op) history.History {
		return hist(nil, append(append([]history.Op(nil), ops...), extra...)...)
	}
	runTable(t, "registry_count", RegistryCount, []tc{
		{name: "returned 1ms before call + TTL: must count it", c: c,
			h: mk(cnt("inst-0", 1.39, 1.399, 0)), verdict: verdict.Fail, err: ErrCountMismatch,
			evidence: []string{"consistent range [1, 1]; live throughout: c1"}},
		{name: "returned exactly at call + TTL: either", c: c,
			h: mk(cnt("inst-0", 1.39, 1.4, 0), cnt("inst-1", 1.39, 1.4, 1)), verdict: verdict.Pass},
		{name: "called exactly TTL + cleanup after the last return: may count it", c: c,
			h: mk(cnt("inst-0", 1.678, 1.68, 1)), verdict: verdict.Pass},
		{name: "called 1ms past TTL + cleanup: must not", c: c,
			h: mk(cnt("inst-0", 1.679, 1.68, 1)), verdict: verdict.Fail, err: ErrCountMismatch,
			evidence: []string{"returned 1 at 1.680s; consistent range [0, 0]"}},
		{name: "a heartbeat in flight may have refreshed it", c: c,
			h: mk(reg(history.RegHeartbeat, "c1", "f1", 1.6, 1.75), cnt("inst-0", 1.7, 1.71, 1)), verdict: verdict.Pass},
	})
}
