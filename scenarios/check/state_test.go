package check

import (
	"github.com/gonogo/harness/impl"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
)

func versioned(kind, flow string, version int64, call, ret float64, ok bool) history.Op {
	return history.Op{Client: "c1", Kind: kind, Flow: flow, Version: version, Call: s(call), Return: s(ret), OK: ok}
}

func TestStaleRead(t *testing.T) {
	base := []history.Op{
		versioned(history.CacheGet, "f1", 1, 0.5, 0.51, true),
		versioned(history.DBWrite, "f1", 2, 1.0, 1.05, true),
		versioned(history.CacheInval, "f1", 2, 1.06, 1.1, true),
	}
	mk := func(ops ...history.Op) history.History {
		return hist(nil, append(append([]history.Op(nil), base...), ops...)...)
	}
	runTable(t, "stale_read", StaleRead, []tc{
		{name: "fresh hit and a miss", h: mk(versioned(history.CacheGet, "f1", 2, 1.2, 1.21, true), versioned(history.CacheGet, "f1", 0, 1.3, 1.31, true)),
			verdict: verdict.Pass, metrics: map[string]float64{"stale_reads": 0, "cache_reads": 3, "cache_hit_rate": 200.0 / 3}},
		{name: "stale after invalidate", h: mk(versioned(history.CacheGet, "f1", 1, 1.2, 1.21, true)),
			verdict: verdict.Fail, err: ErrStaleRead,
			evidence: []string{"cache_get of f1 by c1 at 1.200s (no fault) returned version 1; the invalidation for version 2 completed at 1.100s (authoritative version 2 since 1.050s)"},
			metrics:  map[string]float64{"stale_reads": 1}},
		{name: "read racing the invalidation is not judged", h: mk(versioned(history.CacheGet, "f1", 1, 1.08, 1.09, true)),
			verdict: verdict.Inconclusive, err: ErrNoData, metrics: map[string]float64{"stale_reads": 0}},
		{name: "failed invalidation does not count", h: hist(nil, versioned(history.CacheInval, "f1", 2, 1.0, 1.1, false), versioned(history.CacheGet, "f1", 1, 1.2, 1.21, true)),
			verdict: verdict.Inconclusive, err: ErrNoData, metrics: map[string]float64{"cache_hit_rate": 100}},
		{name: "other flow's invalidation does not count", h: mk(versioned(history.CacheGet, "f2", 1, 1.2, 1.21, true)),
			verdict: verdict.Inconclusive, err: ErrNoData},
		{name: "highest completed invalidation wins", h: mk(versioned(history.CacheInval, "f1", 3, 1.11, 1.15, true), versioned(history.CacheGet, "f1", 2, 1.2, 1.21, true)),
			verdict: verdict.Fail, err: ErrStaleRead, evidence: []string{"returned version 2; the invalidation for version 3 completed at 1.150s"}},
		{name: "no read", h: hist(nil, base[1:]...), verdict: verdict.Inconclusive, err: ErrNoData},
	})
}

// TestStaleReadDeferred: a deferred invalidation binds reads on the
// instance that deferred it, not on the others.
func TestStaleReadDeferred(t *testing.T) {
	on := func(o history.Op, inst string) history.Op {
		o.Instance = inst
		return o
	}
	inval := on(versioned(history.CacheInval, "f1", 2, 1.06, 1.1, true), "inst-0")
	inval.Value = history.Deferred
	base := []history.Op{versioned(history.DBWrite, "f1", 2, 1.0, 1.05, true), inval}
	mk := func(ops ...history.Op) history.History {
		return hist(nil, append(append([]history.Op(nil), base...), ops...)...)
	}
	runTable(t, "stale_read", StaleRead, []tc{
		{name: "old state on the deferring instance", h: mk(on(versioned(history.CacheGet, "f1", 1, 1.2, 1.21, true), "inst-0")),
			verdict: verdict.Fail, err: ErrStaleRead},
		{name: "old state on another instance", h: mk(on(versioned(history.CacheGet, "f1", 1, 1.2, 1.21, true), "inst-1")),
			verdict: verdict.Inconclusive, err: ErrNoData},
	})
}

func reg(kind, conn, flow string, call, ret float64) history.Op {
	return history.Op{Client: "i0", Kind: kind, Flow: flow, Value: conn, Call: s(call), Return: s(ret), OK: true}
}

func lookup(client, flow string, at float64, ids ...string) history.Op {
	return history.Op{Client: client, Kind: history.RegLookup, Flow: flow, Values: ids, Call: s(at), Return: s(at + 0.01), OK: true}
}

// wiped is c with Redis's data lost at t seconds.
func wiped(c Config, t float64) Config {
	c.Wipes = []time.Duration{s(t)}
	return c
}

func TestRegistry(t *testing.T) {
	// c1 registers at 0, heartbeats every 0.3s until 3.0s, then stops.
	ops := []history.Op{reg(history.RegRegister, "c1", "f1", 0, 0.01)}
	for x := 0.3; x <= 3.01; x += 0.3 {
		ops = append(ops, reg(history.RegHeartbeat, "c1", "f1", x, x+0.01))
	}
	c := Config{RegistryTTL: time.Second, CleanupInterval: time.Second}
	mk := func(faults []history.Fault, extra ...history.Op) history.History {
		return hist(faults, append(append([]history.Op(nil), ops...), extra...)...)
	}
	runTable(t, "registry", Registry, []tc{
		{name: "visible while heartbeating, gone after", c: c,
			h:       mk(nil, lookup("i1", "f1", 0.5, "c1"), lookup("i1", "f1", 2.5, "c1"), lookup("i1", "f1", 5.5), lookup("i1", "f2", 2.5)),
			verdict: verdict.Pass, metrics: map[string]float64{"vanished": 0, "lingered": 0, "lookups": 3}},
		{name: "vanished while heartbeating", c: c,
			h:       mk(nil, lookup("i1", "f1", 0.5, "c1"), lookup("i1", "f1", 2.5), lookup("i1", "f1", 2.7)),
			verdict: verdict.Fail, err: ErrVanished,
			evidence: []string{"connection c1 missing from 2 lookups while heartbeating; first: lookup of f1 by i1 at 2.500s (no fault) returned at 2.510s: last heartbeat called at 2.400s, 110ms before (TTL 1s)"},
			metrics:  map[string]float64{"vanished": 1}},
		// Redis loses its data at 1.25s (a restart without persistence):
		// the heartbeat at 1.2s holds no lookup after it, the next one
		// (1.5s) writes c1 back and holds again.
		{name: "wiped: owed again from the next heartbeat", c: wiped(c, 1.25),
			h:       mk(nil, lookup("i1", "f1", 1.3), lookup("i1", "f1", 1.6, "c1")),
			verdict: verdict.Pass},
		{name: "wiped and not written back", c: wiped(c, 1.25),
			h:       mk(nil, lookup("i1", "f1", 1.3), lookup("i1", "f1", 1.6)),
			verdict: verdict.Fail, err: ErrVanished,
			evidence: []string{"connection c1 missing from 1 lookups while heartbeating; first: lookup of f1 by i1 at 1.600s (no fault) returned at 1.610s: last heartbeat called at 1.500s, 110ms before (TTL 1s)"}},
		{name: "lingered past TTL + cleanup", c: c,
			h:       mk(nil, lookup("i1", "f1", 5.5, "c1")),
			verdict: verdict.Fail, err: ErrLingered,
			evidence: []string{"connection c1 still listed by 1 lookups after it stopped heartbeating; first: lookup of f1 by i1 at 5.500s (no fault): last heartbeat attempt returned at 3.010s, 2.49s before (TTL + cleanup 2s)"},
			metrics:  map[string]float64{"lingered": 1}},
		{name: "between TTL and TTL + cleanup either way", c: c,
			h:       mk(nil, lookup("i1", "f1", 2.5, "c1"), lookup("i1", "f1", 4.5, "c1"), lookup("i1", "f1", 4.6)),
			verdict: verdict.Pass},
		{name: "unregistered need not appear", c: c,
			h:       mk(nil, reg(history.RegUnreg, "c1", "f1", 2.0, 2.01), lookup("i1", "f1", 0.5, "c1"), lookup("i1", "f1", 2.5)),
			verdict: verdict.Pass},
		{name: "unregistered and still listed", c: c,
			h: mk(nil, reg(history.RegUnreg, "c1", "f1", 3.1, 3.11), lookup("i1", "f1", 3.0, "c1"),
				lookup("i1", "f1", 3.2, "c1"), lookup("i1", "f1", 3.3, "c1")),
			verdict: verdict.Fail, err: ErrGhost,
			evidence: []string{"connection c1 still listed by 2 lookups after its unregister returned; first: lookup of f1 by i1 at 3.200s (no fault): unregistered at 3.110s, 90ms before"},
			metrics:  map[string]float64{"ghosts": 1, "lingered": 0}},
		{name: "lookup racing the unregister either way", c: c,
			h:       mk(nil, reg(history.RegUnreg, "c1", "f1", 3.1, 3.2), lookup("i1", "f1", 0.5, "c1"), lookup("i1", "f1", 3.15, "c1")),
			verdict: verdict.Pass},
		{name: "failed unregister may leave it listed", c: c,
			h: mk(nil, history.Op{Client: "i0", Kind: history.RegUnreg, Flow: "f1", Value: "c1", Call: s(3.1), Return: s(3.11)},
				lookup("i1", "f1", 0.5, "c1"), lookup("i1", "f1", 3.2, "c1")),
			verdict: verdict.Pass},
		{name: "unregistered during a fault may linger", c: c,
			h:       mk([]history.Fault{fault("down", 3.05, 3.5)}, reg(history.RegUnreg, "c1", "f1", 3.1, 3.11), lookup("i1", "f1", 0.5, "c1"), lookup("i1", "f1", 3.6, "c1")),
			verdict: verdict.Pass},
		{name: "heartbeat after the unregister re-registers", c: c,
			h: mk(nil, reg(history.RegUnreg, "c1", "f1", 2.0, 2.01), lookup("i1", "f1", 0.5, "c1"), lookup("i1", "f1", 2.1),
				lookup("i1", "f1", 2.5, "c1")),
			verdict: verdict.Pass},
		{name: "registration still in flight is not required", c: c,
			h:       hist(nil, reg(history.RegRegister, "c2", "f1", 1, 1.2), lookup("i1", "f1", 1.1)),
			verdict: verdict.Inconclusive, err: ErrNoData},
		{name: "lookup during a fault is judged by default", c: c,
			h:       mk([]history.Fault{fault("down", 2, 3)}, lookup("i1", "f1", 0.5, "c1"), lookup("i1", "f1", 2.5)),
			verdict: verdict.Fail, err: ErrVanished, evidence: []string{"(during fault down)"}},
		{name: "lookup during a fault exempt when asked", c: Config{RegistryTTL: time.Second, CleanupInterval: time.Second, SkipFaultWindows: true},
			h:       mk([]history.Fault{fault("down", 2, 3)}, lookup("i1", "f1", 0.5, "c1"), lookup("i1", "f1", 2.5)),
			verdict: verdict.Pass, metrics: map[string]float64{"lookups": 1}},
		// An outage longer than the TTL: c1's Redis entry expired while its
		// instance answered its heartbeats from memory, exactly as a dead
		// instance's would; those heartbeats hold lookups only from the
		// outage's end + Resync (450ms by default), when its instance has
		// had time to write them back.
		{name: "outage past the TTL: not required until resync", c: c,
			h:       mk([]history.Fault{fault("down", 1, 2.5)}, lookup("i1", "f1", 0.5, "c1"), lookup("i1", "f1", 2.6), lookup("i1", "f1", 2.9)),
			verdict: verdict.Pass, metrics: map[string]float64{"vanished": 0, "lookups": 1}},
		{name: "outage past the TTL: required once resynced", c: c,
			h:       mk([]history.Fault{fault("down", 1, 2.5)}, lookup("i1", "f1", 0.5, "c1"), lookup("i1", "f1", 2.96)),
			verdict: verdict.Fail, err: ErrVanished,
			evidence: []string{"lookup of f1 by i1 at 2.960s (after a fault) returned at 2.970s: last heartbeat called at 2.700s"}},
		{name: "outage past the TTL: a shorter resync allowance", c: Config{RegistryTTL: time.Second, CleanupInterval: time.Second, Resync: 50 * time.Millisecond},
			h:       mk([]history.Fault{fault("down", 1, 2.5)}, lookup("i1", "f1", 0.5, "c1"), lookup("i1", "f1", 2.6)),
			verdict: verdict.Fail, err: ErrVanished,
			evidence: []string{"last heartbeat called at 2.400s"}},
		{name: "default TTL keeps it required", h: mk(nil, lookup("i1", "f1", 200)),
			verdict: verdict.Fail, err: ErrVanished},
		{name: "no lookup", c: c, h: mk(nil), verdict: verdict.Inconclusive, err: ErrNoData},
	})
}

// TestRegistryEdges pins both rules at the TTL edge: a connection is
// required only while the lookup surely ran before the TTL counted from its
// last heartbeat's call ran out, and forbidden only once the lookup surely
// ran after TTL + cleanup counted from its last attempt's return.
func TestRegistryEdges(t *testing.T) {
	c := Config{RegistryTTL: time.Second, CleanupInterval: 250 * time.Millisecond}
	at := func(call, ret float64) history.Op {
		return history.Op{Client: "i1", Kind: history.RegLookup, Flow: "f1", Call: s(call), Return: s(ret), OK: true}
	}
	with := func(o history.Op, ids ...string) history.Op { o.Values = ids; return o }
	// c1 registers at 0, then its last heartbeat is called at 0.4 and, the
	// machine being loaded, returns only at 0.428.
	ops := []history.Op{reg(history.RegRegister, "c1", "f1", 0, 0.01), reg(history.RegHeartbeat, "c1", "f1", 0.4, 0.428)}
	mk := func(extra ...history.Op) history.History {
		return hist(nil, append(append([]history.Op(nil), ops...), extra...)...)
	}
	failedLate := reg(history.RegHeartbeat, "c1", "f1", 0.5, 0.6)
	failedLate.OK = false
	runTable(t, "registry", Registry, []tc{
		{name: "called 999ms after the heartbeat returned, returned past call + TTL: not required", c: c,
			h: mk(at(1.427, 1.43)), verdict: verdict.Inconclusive, err: ErrNoData},
		{name: "returned 1ms before call + TTL: required", c: c,
			h: mk(at(1.39, 1.399)), verdict: verdict.Fail, err: ErrVanished,
			evidence: []string{"returned at 1.399s: last heartbeat called at 0.400s, 999ms before (TTL 1s)"}},
		{name: "returned 1ms before call + TTL and listed", c: c,
			h: mk(with(at(1.39, 1.399), "c1")), verdict: verdict.Pass, metrics: map[string]float64{"lookups": 1}},
		{name: "returned exactly at call + TTL: not required", c: c,
			h: mk(at(1.39, 1.4)), verdict: verdict.Inconclusive, err: ErrNoData},
		{name: "heartbeat still in flight when the lookup was called does not count", c: c,
			h: mk(reg(history.RegHeartbeat, "c1", "f1", 1.3, 1.5), at(1.39, 1.45)), verdict: verdict.Inconclusive, err: ErrNoData},
		{name: "called exactly TTL + cleanup after the last return: may still list it", c: c,
			h: mk(with(at(1.678, 1.68), "c1")), verdict: verdict.Inconclusive, err: ErrNoData},
		{name: "called 1ms past TTL + cleanup after the last return: must not list it", c: c,
			h: mk(with(at(1.679, 1.68), "c1")), verdict: verdict.Fail, err: ErrLingered,
			evidence: []string{"last heartbeat attempt returned at 0.428s, 1.251s before (TTL + cleanup 1.25s)"}},
		{name: "called 1ms past TTL + cleanup and not listed", c: c,
			h: mk(at(1.679, 1.68)), verdict: verdict.Pass, metrics: map[string]float64{"lingered": 0, "lookups": 1}},
		{name: "a failed attempt may have refreshed it", c: c,
			h: mk(failedLate, with(at(1.7, 1.71), "c1")), verdict: verdict.Inconclusive, err: ErrNoData},
		{name: "an attempt called after the lookup returned does not count", c: c,
			h: mk(reg(history.RegHeartbeat, "c1", "f1", 1.72, 1.73), with(at(1.7, 1.71), "c1")), verdict: verdict.Fail, err: ErrLingered},
	})
}

// TestRegistryInstances: a graceful stop of a connection's instance closes
// it until it registers again there; an instance that answers from memory
// without having read the flow from Redis since it started is held to its
// own connections only (explore's registry-cdb77ee7). The same lookups on
// an instance that did read it, or with no stop, are judged as before.
func TestRegistryInstances(t *testing.T) {
	c := Config{RegistryTTL: time.Second, CleanupInterval: 250 * time.Millisecond}
	on := func(inst string, o history.Op) history.Op { o.Instance = inst; return o }
	mem := func(o history.Op) history.Op { o.Mode = impl.ModeMemory; return o }
	stop := history.Op{Kind: history.InstanceExit, Value: ExitStop, Instance: "inst-1", Call: s(0.5), Return: s(0.55), OK: true}
	c1 := []history.Op{on("inst-1", reg(history.RegRegister, "c1", "f1", 0, 0.01)), on("inst-1", reg(history.RegHeartbeat, "c1", "f1", 0.3, 0.31))}
	c0 := []history.Op{on("inst-0", reg(history.RegRegister, "c0", "f1", 0, 0.01)), on("inst-0", reg(history.RegHeartbeat, "c0", "f1", 0.3, 0.31))}
	mk := func(ops ...history.Op) history.History {
		return hist(nil, append(append(append([]history.Op(nil), c1...), c0...), ops...)...)
	}
	// afterHang: inst-1 reads f1 from Redis at 0.35 s, both connections
	// heartbeat at 1.2 s, Redis hangs from 1.3 s to 1.4 s, and inst-1
	// answers a lookup at "at" from memory with ids.
	afterHang := func(at float64, ids ...string) history.History {
		return hist([]history.Fault{fault("timeout", 1.3, 1.4)}, append(append(append([]history.Op(nil), c1...), c0...),
			on("inst-1", lookup("i1", "f1", 0.35, "c0", "c1")), on("inst-0", reg(history.RegHeartbeat, "c0", "f1", 1.2, 1.21)),
			on("inst-1", reg(history.RegHeartbeat, "c1", "f1", 1.2, 1.21)), mem(on("inst-1", lookup("i1", "f1", at, ids...))))...)
	}
	runTable(t, "registry", Registry, []tc{
		{name: "stopped with its instance", c: c,
			h:       mk(stop, on("inst-0", lookup("i0", "f1", 0.7, "c0"))),
			verdict: verdict.Pass},
		{name: "no stop: still owed", c: c,
			h:       mk(on("inst-0", lookup("i0", "f1", 0.7, "c0"))),
			verdict: verdict.Fail, err: ErrVanished, evidence: []string{"connection c1 missing"}},
		{name: "registered again after the stop: owed again", c: c,
			h:       mk(stop, on("inst-1", reg(history.RegRegister, "c1", "f1", 0.6, 0.61)), on("inst-0", lookup("i0", "f1", 0.7, "c0"))),
			verdict: verdict.Fail, err: ErrVanished},
		{name: "a restarted instance without Redis knows its own only", c: c,
			h: mk(stop, on("inst-1", reg(history.RegRegister, "c1", "f1", 0.6, 0.61)),
				mem(on("inst-1", lookup("i1", "f1", 0.7, "c1")))),
			verdict: verdict.Pass, metrics: map[string]float64{"lookups": 1}},
		{name: "a restarted instance without Redis does not know what its killed process registered", c: c,
			h:       mk(history.Op{Kind: history.InstanceExit, Value: ExitKill, Instance: "inst-1", Call: s(0.5), Return: s(0.55)}, mem(on("inst-1", lookup("i1", "f1", 0.7)))),
			verdict: verdict.Inconclusive, err: ErrNoData},
		// explore seed 18181, registry-2ac417fc: the lookup missed its
		// budget in a Redis hang and answered from memory, while the
		// service's mode header still said redis.
		{name: "a restarted instance in a Redis-side fault knows its own only, whatever its mode header", c: c,
			h: hist([]history.Fault{fault("timeout", 0.65, 0.8)}, append(append(append([]history.Op(nil), c1...), c0...), stop,
				on("inst-1", reg(history.RegRegister, "c1", "f1", 0.6, 0.61)), on("inst-1", lookup("i1", "f1", 0.7, "c1")))...),
			verdict: verdict.Pass, metrics: map[string]float64{"lookups": 1}},
		{name: "a restarted instance outside any fault answers from Redis: owes the others'", c: c,
			h:       mk(stop, on("inst-1", reg(history.RegRegister, "c1", "f1", 0.6, 0.61)), on("inst-1", lookup("i1", "f1", 0.7, "c1"))),
			verdict: verdict.Fail, err: ErrVanished, evidence: []string{"connection c0 missing"}},
		{name: "an instance without Redis that read the flow since it started owes the others'", c: c,
			h:       mk(on("inst-1", lookup("i1", "f1", 0.35, "c0", "c1")), mem(on("inst-1", lookup("i1", "f1", 0.7, "c1")))),
			verdict: verdict.Fail, err: ErrVanished, evidence: []string{"connection c0 missing"}},
		// registry-26a5b9cc-3 and explore seed 21212, registry-b1809e93:
		// in a Redis-side fault, or less than Resync after it, its memory
		// knows another instance's connection only as its last read from
		// Redis saw it, which expires 1.3 s; the heartbeat at 1.2 s went
		// to Redis, which this lookup missed.
		{name: "an instance without Redis owes the others' only as its last read saw them", c: c,
			h: afterHang(1.5, "c1"), verdict: verdict.Pass},
		{name: "and its own as ever", c: c,
			h: afterHang(1.5), verdict: verdict.Fail, err: ErrVanished, evidence: []string{"connection c1 missing"}},
		{name: "the same answered from Redis owes the others'", c: c,
			h: hist([]history.Fault{fault("timeout", 1.3, 1.4)}, append(append(append([]history.Op(nil), c1...), c0...),
				on("inst-1", lookup("i1", "f1", 0.35, "c0", "c1")), on("inst-0", reg(history.RegHeartbeat, "c0", "f1", 1.2, 1.21)),
				on("inst-1", reg(history.RegHeartbeat, "c1", "f1", 1.2, 1.21)), on("inst-1", lookup("i1", "f1", 1.9, "c1")))...),
			verdict: verdict.Fail, err: ErrVanished, evidence: []string{"connection c0 missing"}},
		// A layer still answering from memory Resync after the fault has
		// not noticed Redis is back (TestRegistryResyncCaught's mutant).
		{name: "from memory past resync after the fault: owes the others'", c: c,
			h: afterHang(1.9, "c1"), verdict: verdict.Fail, err: ErrVanished, evidence: []string{"connection c0 missing"}},
	})
}

// TestRegistrySavedRun re-judges a hardened stale_cleanup run saved on a
// loaded machine: conn-1's last heartbeat was called at 1.425s and
// returned at 1.428s; a lookup called at 2.426s (998ms after that return,
// 1.001s after that call, TTL 1s) rightly no longer listed it. The rule
// that counted the TTL from the heartbeat's return called it vanished.
func TestRegistrySavedRun(t *testing.T) {
	h, err := history.Load("testdata/stale_cleanup-hardened.json")
	if err != nil {
		t.Fatal(err)
	}
	r := Registry(h, Config{RegistryTTL: time.Second, CleanupInterval: 250 * time.Millisecond})
	if r.Verdict != verdict.Pass {
		t.Errorf("verdict: got %s (%v, %q); want PASS", r.Verdict, r.Err, r.Evidence)
	}
	if r.Metrics["lookups"] < 100 {
		t.Errorf("judged lookups: got %v; want at least 100 of the run's 200", r.Metrics["lookups"])
	}
}
