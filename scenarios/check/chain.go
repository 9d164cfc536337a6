package check

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/history"
)

// Sentinels of the session-chain guarantee (guarantee 10).
var (
	ErrChainMissing   = errors.New("a client that reconnects with Last-Event-ID, to any instance, must receive every event published to its flow after its first connect")
	ErrChainDuplicate = errors.New("a client must receive each event at most once across all its connections")
	ErrChainReordered = errors.New("a client must receive the events of its flow in publish order: an event acknowledged before another's publish began comes first")
)

// SlowClientPrefix starts the name of an SSE client that reads slowly or
// stops reading on purpose (package scenarios): the delivery check leaves
// it out (its latency is its own doing), the session-chain check judges it
// like any other.
const SlowClientPrefix = "slow-"

// slowClient reports whether the named SSE client is a slow consumer.
func slowClient(name string) bool { return strings.HasPrefix(name, SlowClientPrefix) }

// chain is one logical SSE client on one flow: its connections (subscribe
// ops, in connect order) and what they received.
type chain struct {
	key   subKey
	conns []history.Op
	fails int
	// firstFail is the first failed connect, for evidence.
	firstFail history.Op
}

// chains groups the subscribe ops of each client and flow. A subscribe op
// is one connection of the logical client named by Client: Seq numbers its
// connections, Value names the instance it reached, Values[0], when set,
// is the Last-Event-ID it sent. A failed one (not OK) never connected.
func chains(h history.History) []*chain {
	m := map[subKey]*chain{}
	for _, o := range sortedOps(h) {
		if o.Kind != history.Subscribe {
			continue
		}
		k := subKey{o.Client, o.Flow}
		ch := m[k]
		if ch == nil {
			ch = &chain{key: k}
			m[k] = ch
		}
		if !o.OK {
			if ch.fails == 0 {
				ch.firstFail = o
			}
			ch.fails++
			continue
		}
		ch.conns = append(ch.conns, o)
	}
	out := make([]*chain, 0, len(m))
	for _, k := range sortedSubKeys(m) {
		out = append(out, m[k])
	}
	return out
}

// connName is "connection 3 (inst-1, Last-Event-ID 17-0)" for evidence.
func connName(o history.Op) string {
	s := fmt.Sprintf("connection %d", o.Seq)
	var at []string
	if o.Value != "" {
		at = append(at, o.Value)
	}
	if len(o.Values) > 0 && o.Values[0] != "" {
		at = append(at, "Last-Event-ID "+o.Values[0])
	}
	if len(at) > 0 {
		s += " (" + strings.Join(at, ", ") + ")"
	}
	return s
}

// place says where in the chain t fell: inside a connection, or in the gap
// before the next one.
func (ch *chain) place(t time.Duration) string {
	for i, c := range ch.conns {
		if t < c.Call {
			if i == 0 {
				return "before the first connection"
			}
			return fmt.Sprintf("in the gap between %s, ended at %s, and %s at %s", connName(ch.conns[i-1]), secs(subEnd(ch.conns[i-1])), connName(c), secs(c.Call))
		}
		if t < subEnd(c) {
			return "during " + connName(c)
		}
	}
	return "after the last connection"
}

// DetectableRate is the smallest per-event violation rate that judging n
// events detects with probability 0.95: the p with 1-(1-p)^n = 0.95,
// about 3/n. It is 1 for n = 0.
func DetectableRate(n int) float64 {
	if n <= 0 {
		return 1
	}
	return 1 - math.Pow(0.05, 1/float64(n))
}

// SessionChain judges each logical SSE client's chain of connections (all
// its connections to one flow, across reconnects, instances and modes):
// every acknowledged event of the flow whose publish was called at or after
// the chain's first connect, and acknowledged at least Config.DeliveryGrace
// before its last connection ended (when published inside a fault window,
// that connection ended Resync + DeliveryGrace after the window's end or
// later: see recoveredBy), must be received (ErrChainMissing):
// events published while the client was away arrive by Last-Event-ID
// catch-up. With Config.SkipFaultWindows, an event published inside a fault
// window is expected only when a connection of the chain began after that
// window ended (a resume could then fetch it). No event may be received
// twice (ErrChainDuplicate), and first receipts must keep publish order as
// Reordered defines it: per publisher, and a before b when a's publish
// returned before b's was called, for publishes through one instance or
// both acknowledged on Redis (ErrChainReordered). A slow consumer
// (SlowClientPrefix) may never catch up: it is owed only the events
// acknowledged before the latest-published one it received was called, so
// a gap counts, a backlog does not. The result states its sensitivity
// (also as metric chain_detectable_pct): the smallest per-event violation
// rate it detects with 95 % probability, given the events it judged.
func SessionChain(h history.History, c Config) Result {
	c = c.withDefaults()
	r := result("session_chain", strings.Join([]string{ErrChainMissing.Error(), ErrChainDuplicate.Error(), ErrChainReordered.Error()}, "; "))
	chs := chains(h)
	if len(chs) == 0 {
		return r.noData("no SSE connection")
	}
	fs := faultsOf(h)
	ws := windowsOf(fs)
	cutFaults := redisSide(fs)
	cut := windowsOf(cutFaults)
	acked := ackedByFlow(h)
	pubs := publishes(h)
	dels := deliveries(h)
	final := finalReads(h)
	flight := inFlight(pubs, dels, c)
	subs := map[string][]history.Op{} // every client's connections, by flow
	for _, ch := range chs {
		subs[ch.key.flow] = append(subs[ch.key.flow], ch.conns...)
	}
	var judged, missing, dups, reordered, conns, fails, never int
	var missEv, dupEv, reoEv []string
	for _, ch := range chs {
		conns += len(ch.conns)
		fails += ch.fails
		if len(ch.conns) == 0 {
			// A client that asked and never got a stream (a browser
			// whose EventSource gave up, say) is owed what it asked for.
			never++
			missEv = append(missEv, fmt.Sprintf("client %s: never connected to %s: %d failed connects, the first at %s: %s",
				ch.key.client, ch.key.flow, ch.fails, secs(ch.firstFail.Call), ch.firstFail.Err))
			continue
		}
		first := ch.conns[0].Call
		end := subEnd(ch.conns[len(ch.conns)-1])
		got := dels[ch.key]
		if got == nil {
			got = &received{byID: map[string][]receipt{}}
		}
		owed := end - c.DeliveryGrace
		if slowClient(ch.key.client) {
			owed = min(owed, reachedUpTo(got, pubs, ch.key.flow))
		}
		for _, p := range acked[ch.key.flow] {
			if p.Call < first || p.Return > owed || !ch.resumedAfter(p.Call, ws, c) || !recoveredBy(p, end, cut, c) ||
				ch.unheard(p, end, cut, subs[ch.key.flow], c) || ch.frozenOut(p, fs, flight, c) || ch.wipedOut(p, final, c.Wipes) {
				continue
			}
			judged++
			if len(got.byID[p.EventID]) == 0 {
				missing++
				missEv = append(missEv, fmt.Sprintf("client %s: event %s/%s (%s) published %s, acknowledged at %s, never received",
					ch.key.client, ch.key.flow, p.EventID, where(fs, p.Call), ch.place(p.Call), secs(p.Return)))
			}
		}
		order := newOrder(pubs, ch.key.flow)
		order.cut = cutFaults
		for _, id := range got.order {
			ds := got.byID[id]
			if len(ds) > 1 {
				dups++
				at := make([]string, len(ds))
				for i, d := range ds {
					at[i] = secs(d.Return) + " " + ch.place(d.Return)
				}
				dupEv = append(dupEv, fmt.Sprintf("client %s: event %s/%s received %d times: %s",
					ch.key.client, ch.key.flow, id, len(ds), strings.Join(at, "; ")))
			}
			if why, judged := order.next(id); judged && why != "" {
				reordered++
				reoEv = append(reoEv, fmt.Sprintf("client %s: event %s/%s received at %s %s %s",
					ch.key.client, ch.key.flow, id, secs(ds[0].Return), ch.place(ds[0].Return), why))
			}
		}
	}
	r.Evidence = append(append(append(r.Evidence, missEv...), dupEv...), reoEv...)
	if judged > 0 {
		r.Sensitivity = fmt.Sprintf("judged %d events over %d clients and %d connections: detects a per-event violation rate of %.3g %% with 95 %% probability",
			judged, len(chs), conns, 100*DetectableRate(judged))
	}
	r.Metrics["chains"] = float64(len(chs))
	r.Metrics["chain_connections"] = float64(conns)
	r.Metrics["chain_failed_connects"] = float64(fails)
	r.Metrics["chain_never_connected"] = float64(never)
	r.Metrics["chain_judged"] = float64(judged)
	r.Metrics["chain_missing"] = float64(missing)
	r.Metrics["chain_duplicates"] = float64(dups)
	r.Metrics["chain_reordered"] = float64(reordered)
	r.Metrics["chain_detectable_pct"] = 100 * DetectableRate(judged)
	var errs []error
	if missing > 0 {
		errs = append(errs, fmt.Errorf("%w: %d of %d events missing", ErrChainMissing, missing, judged))
	}
	if never > 0 {
		errs = append(errs, fmt.Errorf("%w: %d of %d clients never connected", ErrChainMissing, never, len(chs)))
	}
	if dups > 0 {
		errs = append(errs, fmt.Errorf("%w: %d events received more than once", ErrChainDuplicate, dups))
	}
	if reordered > 0 {
		errs = append(errs, fmt.Errorf("%w: %d events received after a later one", ErrChainReordered, reordered))
	}
	unjudged := ""
	if judged == 0 && never == 0 {
		unjudged = "no acknowledged event was published within a chain's span"
	}
	return r.finish(c, errs, unjudged)
}

// reachedUpTo is the latest publish call among the events a slow consumer
// received: it is owed everything acknowledged before it (no gap), not
// what it never got to read.
func reachedUpTo(got *received, pubs map[eventKey]history.Op, flow string) time.Duration {
	var t time.Duration = -1
	for _, id := range got.order {
		if p, ok := pubs[eventKey{flow, id}]; ok && p.Call > t {
			t = p.Call
		}
	}
	return t
}

// recoveredBy reports whether the event of publish p can be owed to a
// chain whose last connection ended at end: one published, or acknowledged
// (a publish called just before a hang began returns from memory at its
// budget, inside it: explore's session_chain-28a7c57a), inside a window
// of faults on the Redis side (ws: redisSide) only when the chain lasted
// Config.Resync + Config.DeliveryGrace past the window's end (so too one
// published or acknowledged less than Resync after it). Until then
// an instance cut off from Redis cannot hand it on to another instance's
// subscribers (explore's session_chain-15f4ff3b: a blackhole lasting to
// the end of the traffic, the clients closed as it ended, events
// acknowledged from memory on the other instance counted never received).
// Instance faults and rollbacks leave Redis reachable: what the instances
// that run acknowledge stays owed.
func recoveredBy(p history.Op, end time.Duration, ws []window, c Config) bool {
	for _, w := range ws {
		// Less than Resync after the window's end, the instances may
		// still be catching up (explore seed 18181,
		// session_chain-f36927de: acknowledged 220 ms after a partition
		// healed, for a client on an instance still reconnecting to the
		// new primary, which left 520 ms later).
		near := func(t time.Duration) bool { return t >= w.Start && t < w.End+c.Resync }
		if (near(p.Call) || near(p.Return)) && end < w.End+c.Resync+c.DeliveryGrace {
			return false
		}
	}
	return true
}

// unheard reports whether the event of publish p could reach the chain
// only from Redis while Redis was out of reach until the chain ended: p was
// acknowledged before a window of Redis-side faults (cut) that the chain
// did not outlast by Resync + DeliveryGrace, and every connection of the
// chain after it began inside that window on an instance that did not
// acknowledge p and had no connection of p's flow open (any client's) when
// p was acknowledged: such an instance did not follow the flow then and
// heard nothing of it (explore seed 14141, session_chain-f0fb7f76: an
// event acknowledged 5 ms before the primary was killed, while the client
// was between connections; it resumed on instances that heard nothing of
// the flow). An instance that followed the flow, or wrote the event, must
// hand it (catalogue resume_heard_outage).
func (ch *chain) unheard(p history.Op, end time.Duration, cut []window, subs []history.Op, c Config) bool {
	var w window
	found := false
	for _, x := range cut {
		if x.Start >= p.Return && (!found || x.Start < w.Start) {
			w, found = x, true
		}
	}
	if !found || end >= w.End+c.Resync+c.DeliveryGrace || p.Value == "" {
		return false
	}
	followed := map[string]bool{p.Value: true}
	for _, o := range subs {
		if o.OK && o.Call <= p.Return && p.Return < subEnd(o) {
			followed[o.Value] = true
		}
	}
	for _, o := range ch.conns {
		if subEnd(o) <= p.Return {
			continue
		}
		if o.Call < w.Start || o.Value == "" || followed[o.Value] {
			return false
		}
	}
	return true
}

// frozenOut reports whether no connection of the chain could carry the
// event of publish p: each one open after p was called was on an instance
// frozen (instance_pause) when it would have carried it (p's publish or
// acknowledgement, or the connect when later) and ended before that
// freeze's end + Resync + DeliveryGrace, as Delivery holds one
// subscription (explore seed 16161, session_chain-298fc667: the client's
// own instance frozen until its session ended). A freeze counts from
// flight before it (inFlight): an event acknowledged that shortly before
// may have been inside the process.
func (ch *chain) frozenOut(p history.Op, fs []history.Fault, flight time.Duration, c Config) bool {
	open := 0
	for _, o := range ch.conns {
		end := subEnd(o)
		if end <= p.Call {
			continue
		}
		open++
		ws := frozenFrom(o, fs, flight)
		w, in := windowAt(ws, max(o.Call, p.Call))
		if !in {
			w, in = windowAt(ws, max(o.Call, p.Return))
		}
		if !in || end >= w.End+c.Resync+c.DeliveryGrace {
			return false
		}
	}
	return open > 0
}

// WipeSlack is how long after a wiping fault's recorded start (see
// Config.Wipes) a publish that Redis acknowledged may still return to its
// client.
const WipeSlack = 500 * time.Millisecond

// wipedOut reports whether the event of publish p was only in Redis while
// the chain could not read it, until a fault wiped Redis's data: the final
// read of its stream does not hold it, it was acknowledged before a wipe
// (before its start, or up to WipeSlack after it from Redis), and no
// connection of the chain was open when it was acknowledged (live
// delivery) or began between then and the wipe (a catch-up would have
// read it). No layer can hand it after the wipe, on whichever instance the
// client resumes, as the lost check holds of such events (explore seed
// 20202, session_chain-0462ef68: a hard restart without persistence 5 ms
// after the acknowledgement, while the client was between connections).
func (ch *chain) wipedOut(p history.Op, final map[string]history.Op, wipes []time.Duration) bool {
	if rd, ok := final[p.Flow]; !ok || slices.Contains(rd.Values, p.EventID) {
		return false
	}
	for _, w := range wipes {
		if p.Return >= w && (p.Mode != impl.ModeRedis || p.Return >= w+WipeSlack) {
			continue
		}
		reached := slices.ContainsFunc(ch.conns, func(o history.Op) bool {
			return o.Call <= p.Return && p.Return < subEnd(o) || o.Call > p.Return && o.Call < w
		})
		if !reached {
			return true
		}
	}
	return false
}

// redisSide are the faults of fs that can cut instances off from Redis:
// all but the instance faults and the rollback step.
func redisSide(fs []history.Fault) []history.Fault {
	return only(fs, func(f history.Fault) bool { return !strings.HasPrefix(f.Name, "instance_") && f.Name != FlagFault })
}

// resumedAfter reports whether an event published at t is expected of the
// chain as far as faults go: always, unless Config.SkipFaultWindows and t
// falls in a fault window; then only when a connection began after the
// window ended.
func (ch *chain) resumedAfter(t time.Duration, ws []window, c Config) bool {
	if !c.SkipFaultWindows {
		return true
	}
	w, in := windowAt(ws, t)
	if !in {
		return true
	}
	for _, o := range ch.conns {
		if o.Call >= w.End {
			return true
		}
	}
	return false
}
