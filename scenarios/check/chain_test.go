package check

import (
	"math"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
)

// sconn is connection seq of client c on flow f1 to inst, sending after as
// Last-Event-ID.
func sconn(c string, seq int64, inst, after string, from, to float64) history.Op {
	o := history.Op{Client: c, Kind: history.Subscribe, Flow: "f1", Seq: seq, Value: inst, Call: s(from), Return: s(to), OK: true}
	if after != "" {
		o.Values = []string{after}
	}
	return o
}

// got is client c receiving event id at t on connection seq.
func got(c string, seq int64, id string, t float64) history.Op {
	return history.Op{Client: c, Kind: history.Deliver, Flow: "f1", EventID: id, Seq: seq, Call: s(t), Return: s(t), OK: true}
}

func TestSessionChain(t *testing.T) {
	// p0 publishes 1 … 6 on f1 every second from 1 s; the client connects
	// at 0.5 s to inst-0, drops at 2.2 s and resumes at 4.2 s on inst-1.
	pubs := []history.Op{
		pub("p0", "f1", 1, 1.0, 1.01, true), pub("p0", "f1", 2, 2.0, 2.01, true), pub("p0", "f1", 3, 3.0, 3.01, true),
		pub("p0", "f1", 4, 4.0, 4.01, true), pub("p0", "f1", 5, 5.0, 5.01, true), pub("p0", "f1", 6, 6.0, 6.01, true),
	}
	conns := []history.Op{sconn("c", 1, "inst-0", "", 0.5, 2.2), sconn("c", 2, "inst-1", "cur-2", 4.2, 8)}
	with := func(ops ...history.Op) []history.Op {
		return append(append(append([]history.Op(nil), pubs...), conns...), ops...)
	}
	all := []history.Op{got("c", 1, "p0-1", 1.02), got("c", 1, "p0-2", 2.02), got("c", 2, "p0-3", 4.21), got("c", 2, "p0-4", 4.22),
		got("c", 2, "p0-5", 5.02), got("c", 2, "p0-6", 6.02)}
	runTable(t, "session_chain", SessionChain, []tc{
		{name: "gap caught up on another instance", h: hist(nil, with(all...)...), verdict: verdict.Pass,
			metrics: map[string]float64{"chains": 1, "chain_connections": 2, "chain_judged": 6, "chain_missing": 0,
				"chain_duplicates": 0, "chain_reordered": 0, "chain_detectable_pct": 100 * (1 - math.Pow(0.05, 1.0/6))}},
		{name: "catch-up skipped the gap", h: hist(nil, with(all[0], all[1], all[4], all[5])...), verdict: verdict.Fail, err: ErrChainMissing,
			evidence: []string{
				"client c: event f1/p0-3 (no fault) published in the gap between connection 1 (inst-0), ended at 2.200s, and connection 2 (inst-1, Last-Event-ID cur-2) at 4.200s, acknowledged at 3.010s, never received",
				"event f1/p0-4"},
			metrics: map[string]float64{"chain_missing": 2, "chain_judged": 6}},
		{name: "resume re-delivers what the first connection had", h: hist(nil, with(append(all, got("c", 2, "p0-2", 4.205))...)...),
			verdict: verdict.Fail, err: ErrChainDuplicate,
			evidence: []string{"client c: event f1/p0-2 received 2 times: 2.020s during connection 1 (inst-0); 4.205s during connection 2 (inst-1, Last-Event-ID cur-2)"},
			metrics:  map[string]float64{"chain_duplicates": 1, "chain_missing": 0}},
		{name: "catch-up out of order", h: hist(nil, with(all[0], all[1], got("c", 2, "p0-4", 4.21), got("c", 2, "p0-3", 4.22), all[4], all[5])...),
			verdict: verdict.Fail, err: ErrChainReordered,
			evidence: []string{"client c: event f1/p0-3 received at 4.220s during connection 2 (inst-1, Last-Event-ID cur-2) (publisher p0, seq 3) follows p0-4 (seq 4)"},
			metrics:  map[string]float64{"chain_reordered": 1, "chain_duplicates": 0, "chain_missing": 0}},
		{name: "publishers' real-time order",
			h: hist(nil, pub("p0", "f1", 1, 1.0, 1.1, true), pub("p1", "f1", 1, 1.2, 1.3, true),
				sconn("c", 1, "inst-0", "", 0.5, 3), got("c", 1, "p1-1", 1.6), got("c", 1, "p0-1", 1.7)),
			verdict: verdict.Fail, err: ErrChainReordered,
			evidence: []string{"client c: event f1/p0-1 received at 1.700s during connection 1 (inst-0) (acknowledged at 1.100s) follows p1-1, whose publish was called later (1.200s)"}},
		{name: "acknowledged from memory on two instances: no order to keep",
			h: hist(nil, onInst(pub("p0", "f1", 1, 1.0, 1.1, true), "inst-0", "memory"), onInst(pub("p1", "f1", 1, 1.2, 1.3, true), "inst-1", "memory"),
				sconn("c", 1, "inst-0", "", 0.5, 3), got("c", 1, "p1-1", 1.6), got("c", 1, "p0-1", 1.7)),
			verdict: verdict.Pass, metrics: map[string]float64{"chain_reordered": 0}},
		{name: "concurrent publishes may arrive in either order",
			h: hist(nil, pub("p0", "f1", 1, 1.0, 1.5, true), pub("p1", "f1", 1, 1.1, 1.2, true),
				sconn("c", 1, "inst-0", "", 0.5, 3), got("c", 1, "p1-1", 1.6), got("c", 1, "p0-1", 1.7)),
			verdict: verdict.Pass, metrics: map[string]float64{"chain_reordered": 0, "chain_judged": 2}},
		{name: "published before the first connect is not required",
			h:       hist(nil, pub("p0", "f1", 1, 0.2, 0.21, true), pub("p0", "f1", 2, 1, 1.01, true), sconn("c", 1, "inst-0", "", 0.5, 3), got("c", 1, "p0-2", 1.02)),
			verdict: verdict.Pass, metrics: map[string]float64{"chain_judged": 1}},
		{name: "acknowledged within the grace of the chain's end is not required",
			h:       hist(nil, pub("p0", "f1", 1, 1, 1.01, true), pub("p0", "f1", 2, 2.8, 2.81, true), sconn("c", 1, "inst-0", "", 0.5, 3), got("c", 1, "p0-1", 1.02)),
			verdict: verdict.Pass, metrics: map[string]float64{"chain_judged": 1}},
		{name: "a failed reconnect is counted, not judged",
			h:       hist(nil, with(append(all, history.Op{Client: "c", Kind: history.Subscribe, Flow: "f1", Seq: 2, Value: "inst-1", Call: s(3), Return: s(3), Err: "refused"})...)...),
			verdict: verdict.Pass, metrics: map[string]float64{"chain_failed_connects": 1, "chain_connections": 2}},
		{name: "each client is its own chain",
			h: hist(nil, pub("p0", "f1", 1, 1, 1.01, true), sconn("a", 1, "inst-0", "", 0.5, 3), sconn("b", 1, "inst-1", "", 0.5, 3),
				got("a", 1, "p0-1", 1.02)),
			verdict: verdict.Fail, err: ErrChainMissing, evidence: []string{"client b: event f1/p0-1"}, metrics: map[string]float64{"chains": 2, "chain_missing": 1}},
		{name: "a client that never connected is owed its events",
			h:       hist(nil, with(append(all, history.Op{Client: "b", Kind: history.Subscribe, Flow: "f1", Seq: 1, Value: "inst-0", Call: s(0.7), Return: s(0.7), Err: "EventSource connect failed"})...)...),
			verdict: verdict.Fail, err: ErrChainMissing, evidence: []string{"client b: never connected to f1: 1 failed connects, the first at 0.700s: EventSource connect failed"},
			metrics: map[string]float64{"chains": 2, "chain_never_connected": 1, "chain_missing": 0, "chain_failed_connects": 1}},
		{name: "no connection", h: hist(nil, pubs...), verdict: verdict.Inconclusive, err: ErrNoData},
		{name: "nothing published in the chain's span", h: hist(nil, sconn("c", 1, "inst-0", "", 0.5, 3)), verdict: verdict.Inconclusive, err: ErrNoData,
			metrics: map[string]float64{"chain_judged": 0, "chain_detectable_pct": 100}},
	})
}

// TestSessionChainFaultWindows: with SkipFaultWindows an event published
// during an outage is owed only to a chain that connected again after the
// outage ended.
func TestSessionChainFaultWindows(t *testing.T) {
	out := []history.Fault{fault("down", 2, 4)}
	during := pub("p0", "f1", 1, 3, 3.01, true)
	skip := Config{SkipFaultWindows: true}
	runTable(t, "session_chain", SessionChain, []tc{
		{name: "no reconnect after the outage: not owed", c: skip,
			h:       hist(out, during, pub("p0", "f1", 2, 5, 5.01, true), sconn("c", 1, "inst-1", "", 1, 8), got("c", 1, "p0-2", 5.02)),
			verdict: verdict.Pass, metrics: map[string]float64{"chain_judged": 1}},
		{name: "reconnected after the outage: owed", c: skip,
			h: hist(out, during, pub("p0", "f1", 2, 5, 5.01, true), sconn("c", 1, "inst-1", "", 1, 4.5), sconn("c", 2, "inst-0", "x", 4.6, 8),
				got("c", 2, "p0-2", 5.02)),
			verdict: verdict.Fail, err: ErrChainMissing, evidence: []string{"event f1/p0-1 (during fault down) published during connection 1 (inst-1)"}},
		{name: "without the option everything is owed",
			h:       hist(out, during, sconn("c", 1, "inst-1", "", 1, 8)),
			verdict: verdict.Fail, err: ErrChainMissing},
		// explore's session_chain-15f4ff3b: the clients closed as the
		// fault ended; nothing acknowledged in it could reach them.
		{name: "chain ended with the fault: not owed",
			h:       hist(out, during, pub("p0", "f1", 2, 1.5, 1.51, true), sconn("c", 1, "inst-1", "", 1, 4.1), got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Pass, metrics: map[string]float64{"chain_judged": 1}},
		// explore's session_chain-28a7c57a: a publish called 0.3 ms
		// before a hang began, acknowledged from memory at its budget,
		// inside the fault.
		{name: "acknowledged in the fault, called just before: not owed",
			h: hist(out, pub("p0", "f1", 1, 1.999, 2.05, true), pub("p0", "f1", 2, 1.5, 1.51, true),
				sconn("c", 1, "inst-1", "", 1, 4.1), got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Pass, metrics: map[string]float64{"chain_judged": 1}},
		{name: "an instance fault to the end leaves it owed",
			h: hist([]history.Fault{fault("instance_restart", 2, 4)}, during, pub("p0", "f1", 2, 1.5, 1.51, true),
				sconn("c", 1, "inst-1", "", 1, 4.1), got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Fail, err: ErrChainMissing, metrics: map[string]float64{"chain_judged": 2}},
		// explore seed 18181, session_chain-f36927de: acknowledged 220 ms
		// after a partition healed, on one instance, to a client on the
		// other, still reconnecting to the new primary; the client left
		// 520 ms later.
		{name: "acknowledged within resync after the fault, chain ended before resync + grace: not owed",
			h:       hist(out, onInst(pub("p0", "f1", 1, 4.2, 4.22, true), "inst-0", "redis"), pub("p0", "f1", 2, 1.5, 1.51, true), sconn("c", 1, "inst-1", "", 1, 4.75), got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Pass, metrics: map[string]float64{"chain_judged": 1}},
		{name: "acknowledged within resync after the fault, chain lasted resync + grace: owed",
			h:       hist(out, onInst(pub("p0", "f1", 1, 4.2, 4.22, true), "inst-0", "redis"), pub("p0", "f1", 2, 1.5, 1.51, true), sconn("c", 1, "inst-1", "", 1, 4.96), got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Fail, err: ErrChainMissing, metrics: map[string]float64{"chain_judged": 2}},
		{name: "acknowledged past resync after the fault: owed",
			h:       hist(out, onInst(pub("p0", "f1", 1, 4.5, 4.52, true), "inst-0", "redis"), pub("p0", "f1", 2, 1.5, 1.51, true), sconn("c", 1, "inst-1", "", 1, 5.05), got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Fail, err: ErrChainMissing, metrics: map[string]float64{"chain_judged": 2}},
		{name: "chain lasted resync + grace past the fault: owed",
			h:       hist(out, during, pub("p0", "f1", 2, 1.5, 1.51, true), sconn("c", 1, "inst-1", "", 1, 5), got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Fail, err: ErrChainMissing, metrics: map[string]float64{"chain_judged": 2}},
		// explore seed 14141, session_chain-f0fb7f76: acknowledged through
		// inst-0 5 ms before the primary was killed, while the client was
		// between connections; it resumed on instances that did not hear
		// it and could not reach Redis until its session ended.
		{name: "acknowledged just before the fault, client away, resumed elsewhere: not owed",
			h: hist(out, onInst(pub("p0", "f1", 1, 1.99, 1.995, true), "inst-0", "redis"), pub("p0", "f1", 2, 1.5, 1.51, true),
				sconn("c", 1, "inst-0", "", 1, 1.9), sconn("c", 2, "inst-1", "x", 2.05, 4.1), got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Pass, metrics: map[string]float64{"chain_judged": 1}},
		{name: "acknowledged just before the fault, resumed on its instance: owed",
			h: hist(out, onInst(pub("p0", "f1", 1, 1.99, 1.995, true), "inst-0", "redis"), pub("p0", "f1", 2, 1.5, 1.51, true),
				sconn("c", 1, "inst-0", "", 1, 1.9), sconn("c", 2, "inst-1", "x", 2.05, 3), sconn("c", 3, "inst-0", "x", 3.1, 4.1),
				got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Fail, err: ErrChainMissing, metrics: map[string]float64{"chain_judged": 2}},
		{name: "acknowledged just before the fault, client connected: owed",
			h: hist(out, onInst(pub("p0", "f1", 1, 1.99, 1.995, true), "inst-0", "redis"), pub("p0", "f1", 2, 1.5, 1.51, true),
				sconn("c", 1, "inst-1", "", 1, 4.1), got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Fail, err: ErrChainMissing, metrics: map[string]float64{"chain_judged": 2}},
		{name: "acknowledged before the fault, client away, resumed on an instance that followed the flow: owed",
			h: hist(out, onInst(pub("p0", "f1", 1, 1.2, 1.21, true), "inst-0", "redis"), pub("p0", "f1", 2, 1.0, 1.01, true),
				sconn("c", 1, "inst-0", "", 0.5, 1.1), sconn("c", 2, "inst-1", "x", 2.05, 4.1), got("c", 1, "p0-2", 1.02),
				sconn("d", 1, "inst-1", "", 0.5, 4.1), got("d", 1, "p0-2", 1.02), got("d", 1, "p0-1", 1.22)),
			verdict: verdict.Fail, err: ErrChainMissing, evidence: []string{"client c: event f1/p0-1"}, metrics: map[string]float64{"chain_judged": 4, "chain_missing": 1}},
		{name: "acknowledged before the fault, resumed before it: owed",
			h: hist(out, onInst(pub("p0", "f1", 1, 1.2, 1.21, true), "inst-0", "redis"), pub("p0", "f1", 2, 1.0, 1.01, true),
				sconn("c", 1, "inst-0", "", 0.5, 1.1), sconn("c", 2, "inst-1", "x", 1.9, 4.1), got("c", 1, "p0-2", 1.02)),
			verdict: verdict.Fail, err: ErrChainMissing, metrics: map[string]float64{"chain_judged": 2}},
	})
}

// TestSessionChainWiped: an event Redis acknowledged before a fault wiped
// its data, while the client was between connections, is owed only when a
// connection could have had it: one open when it was acknowledged (live),
// or a resume before the wipe; and not when the final read of its stream
// holds it (it survived). Explore seed 20202, session_chain-0462ef68: a
// hard restart without persistence 5 ms after the acknowledgement, the
// client away from 2.432 s to 2.534 s.
func TestSessionChainWiped(t *testing.T) {
	wipe := []history.Fault{fault("restart", 2.452, 2.551)}
	c := Config{Wipes: []time.Duration{s(2.452)}}
	ev := onInst(pub("p0", "f1", 1, 2.445, 2.4466, true), "inst-0", "redis")
	before := pub("p0", "f1", 2, 1.5, 1.51, true)
	final := func(ids ...string) history.Op {
		o := rd("f1", 3.6, ids...)
		o.Kind, o.Client = history.ServerRead, "harness"
		return o
	}
	away := []history.Op{sconn("c", 1, "inst-0", "", 1, 2.432), sconn("c", 2, "inst-0", "x", 2.534, 3.5), got("c", 1, "p0-2", 1.52)}
	runTable(t, "session_chain", SessionChain, []tc{
		{name: "away when acknowledged, resumed after the wipe: not owed", c: c,
			h:       hist(wipe, append([]history.Op{ev, before, final("p0-2")}, away...)...),
			verdict: verdict.Pass, metrics: map[string]float64{"chain_judged": 1}},
		{name: "the final read holds it: owed", c: c,
			h:       hist(wipe, append([]history.Op{ev, before, final("p0-2", "p0-1")}, away...)...),
			verdict: verdict.Fail, err: ErrChainMissing, metrics: map[string]float64{"chain_judged": 2}},
		{name: "no wipe: owed",
			h:       hist(wipe, append([]history.Op{ev, before, final("p0-2")}, away...)...),
			verdict: verdict.Fail, err: ErrChainMissing},
		{name: "connected when acknowledged: owed", c: c,
			h: hist(wipe, ev, before, final("p0-2"), sconn("c", 1, "inst-0", "", 1, 2.45), sconn("c", 2, "inst-0", "x", 2.534, 3.5),
				got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Fail, err: ErrChainMissing},
		{name: "resumed between the acknowledgement and the wipe: owed", c: c,
			h: hist(wipe, ev, before, final("p0-2"), sconn("c", 1, "inst-0", "", 1, 2.44), sconn("c", 2, "inst-1", "x", 2.448, 2.45),
				sconn("c", 3, "inst-0", "x", 2.534, 3.5), got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Fail, err: ErrChainMissing},
	})
}

// TestSessionChainFrozenInstance: an event that reaches the chain only
// through a connection whose instance is frozen (instance_pause) is owed
// only when that connection outlasts the freeze by Resync + DeliveryGrace,
// or another connection of the chain can carry it (explore seed 16161,
// session_chain-298fc667: the client's own instance frozen to the end).
func TestSessionChainFrozenInstance(t *testing.T) {
	pause := func(inst string, from, to float64) history.Fault {
		f := fault("instance_pause", from, to)
		f.Params = map[string]string{"instance": inst}
		return f
	}
	frozen := []history.Fault{pause("1", 2, 4)}
	during := onInst(pub("p0", "f1", 1, 3, 3.01, true), "inst-0", "redis")
	before := onInst(pub("p0", "f1", 2, 1.5, 1.51, true), "inst-0", "redis")
	runTable(t, "session_chain", SessionChain, []tc{
		{name: "its instance frozen to the chain's end: not owed",
			h:       hist(frozen, during, before, sconn("c", 1, "inst-1", "", 1, 4.1), got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Pass, metrics: map[string]float64{"chain_judged": 1}},
		{name: "connection outlasted the freeze: owed",
			h:       hist(frozen, during, before, sconn("c", 1, "inst-1", "", 1, 5), got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Fail, err: ErrChainMissing, metrics: map[string]float64{"chain_judged": 2}},
		{name: "another instance frozen: owed",
			h:       hist([]history.Fault{pause("0", 2, 4)}, during, before, sconn("c", 1, "inst-1", "", 1, 4.1), got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Fail, err: ErrChainMissing, metrics: map[string]float64{"chain_judged": 2}},
		{name: "resumed on a running instance during the freeze: owed",
			h: hist(frozen, during, before, sconn("c", 1, "inst-1", "", 1, 3.2), sconn("c", 2, "inst-0", "x", 3.3, 4.1),
				got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Fail, err: ErrChainMissing, metrics: map[string]float64{"chain_judged": 2}},
		{name: "acknowledged before the freeze: owed",
			h:       hist([]history.Fault{pause("1", 3.1, 4)}, during, before, sconn("c", 1, "inst-1", "", 1, 4.1), got("c", 1, "p0-2", 1.52)),
			verdict: verdict.Fail, err: ErrChainMissing, metrics: map[string]float64{"chain_judged": 2}},
		// explore seed 20202, session_chain-da2ce7ea: acknowledged 15 ms
		// before the client's instance froze to the end, the run's slowest
		// delivery 73 ms: it may have been inside the frozen process.
		{name: "acknowledged within the slowest delivery before the freeze: not owed",
			h:       hist([]history.Fault{pause("1", 3.1, 4)}, during, before, sconn("c", 1, "inst-1", "", 1, 4.1), got("c", 1, "p0-2", 1.65)),
			verdict: verdict.Pass, metrics: map[string]float64{"chain_judged": 1}},
	})
}

// TestDeliveryLeavesSlowClientsOut: a client named as a slow consumer is
// judged by the session chain, not by live delivery.
func TestDeliveryLeavesSlowClientsOut(t *testing.T) {
	h := hist(nil, pub("p0", "f1", 1, 1, 1.01, true), sconn("c", 1, "inst-0", "", 0.5, 8), got("c", 1, "p0-1", 1.02),
		sconn(SlowClientPrefix+"0", 1, "inst-0", "", 0.5, 8), got(SlowClientPrefix+"0", 1, "p0-1", 6))
	if r := Delivery(h, Config{}); r.Verdict != verdict.Pass || r.Metrics["delivery_expected"] != 1 {
		t.Errorf("Delivery: got %s (%v), %v expected; want PASS judging the normal client only", r.Verdict, r.Err, r.Metrics["delivery_expected"])
	}
	if r := SessionChain(h, Config{}); r.Verdict != verdict.Pass || r.Metrics["chains"] != 2 {
		t.Errorf("SessionChain: got %s (%v), %v chains; want PASS over both clients", r.Verdict, r.Err, r.Metrics["chains"])
	}
}

// TestSessionChainSlowBacklog: a slow consumer is owed what precedes the
// latest event it received (a gap fails), not the backlog it never read.
func TestSessionChainSlowBacklog(t *testing.T) {
	slow := SlowClientPrefix + "rate-0"
	pubs := []history.Op{pub("p0", "f1", 1, 1, 1.01, true), pub("p0", "f1", 2, 2, 2.01, true), pub("p0", "f1", 3, 3, 3.01, true), pub("p0", "f1", 4, 4, 4.01, true)}
	with := func(ops ...history.Op) []history.Op {
		return append(append(append([]history.Op(nil), pubs...), sconn(slow, 1, "inst-0", "", 0.5, 3.5), sconn(slow, 2, "inst-0", "cur-2", 3.6, 8)), ops...)
	}
	runTable(t, "session_chain", SessionChain, []tc{
		{name: "behind, no gap", h: hist(nil, with(got(slow, 1, "p0-1", 3), got(slow, 2, "p0-2", 7))...), verdict: verdict.Pass,
			metrics: map[string]float64{"chain_judged": 1, "chain_missing": 0}},
		{name: "gap", h: hist(nil, with(got(slow, 1, "p0-1", 3), got(slow, 2, "p0-3", 7))...), verdict: verdict.Fail, err: ErrChainMissing,
			evidence: []string{"client slow-rate-0: event f1/p0-2"}, metrics: map[string]float64{"chain_judged": 2, "chain_missing": 1}},
	})
}

func TestDetectableRate(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want float64
	}{{0, 1}, {1, 0.95}, {100, 0.0295}, {3000, 0.000998}} {
		if got := DetectableRate(tt.n); math.Abs(got-tt.want) > 0.0005*max(1, tt.want*10) {
			t.Errorf("DetectableRate(%d) = %.6f; want about %.6f", tt.n, got, tt.want)
		}
		if p := DetectableRate(tt.n); tt.n > 0 && math.Abs(1-math.Pow(1-p, float64(tt.n))-0.95) > 1e-9 {
			t.Errorf("DetectableRate(%d) = %g: detection probability %g; want 0.95", tt.n, p, 1-math.Pow(1-p, float64(tt.n)))
		}
	}
}

// onInst marks a publish as made through inst and acknowledged in mode.
func onInst(o history.Op, inst, mode string) history.Op {
	o.Value, o.Mode = inst, mode
	return o
}

// TestSessionChainSensitivity: the check states what it would catch.
func TestSessionChainSensitivity(t *testing.T) {
	h := hist(nil, pub("p0", "f1", 1, 1.0, 1.01, true), sconn("c", 1, "inst-0", "", 0.5, 3), got("c", 1, "p0-1", 1.02))
	r := SessionChain(h, Config{})
	if want := "judged 1 events over 1 clients and 1 connections: detects a per-event violation rate of 95 % with 95 % probability"; r.Sensitivity != want {
		t.Errorf("Sensitivity = %q; want %q", r.Sensitivity, want)
	}
}
