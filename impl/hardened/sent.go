package hardened

import (
	"sync"
	"time"

	"github.com/gonogo/harness/impl"
)

// Own events. A layer delivers the events it writes to Redis to its local
// subscribers through Pub/Sub, like everybody else's. When its Pub/Sub
// connection drops at the start of an outage, the messages of its last
// writes may be lost with it; without them, a local subscriber would get
// the events this layer then acknowledges from memory first and those
// last writes only from the catch-up after the outage: out of order. So
// the layer keeps its writes of the last sentWindow (at most sentCap per
// flow), each with its stream ID, and hands a subscriber the ones after
// its position when the connection drops, or when it subscribes while
// Redis is unreachable, ahead of any memory event.
const (
	sentWindow = 5 * time.Second
	sentCap    = 256
	// sentSweep: past this many flows an add sweeps every flow's expired
	// writes (at most once a sentWindow), so flows that stopped publishing
	// do not hold theirs.
	sentSweep = 1024
)

type sentEvent struct {
	e   impl.Event // Cursor: its stream ID
	at  time.Time
	ack uint64 // its acknowledgement's number (see Bus.acked)
}

// sentRing holds a layer's recent writes per flow, in stream order.
type sentRing struct {
	mu     sync.Mutex
	byFlow map[string][]sentEvent
	// dropped is, per flow, the stream ID of the latest write the ring
	// dropped (past sentCap or sentWindow): a position before it lacks
	// writes the ring no longer holds. Forgotten with the flow's writes
	// when a sweep drops them all.
	dropped map[string]string
	sweptAt time.Time
}

// drop records that the flow's writes up to stream ID sid were dropped.
// Callers hold r.mu.
func (r *sentRing) drop(flow, sid string) {
	if sid != "" && cursorAfter(sid, r.dropped[flow]) {
		r.dropped[flow] = sid
	}
}

// add records e, written to the stream as entry sid and acknowledged as
// number ack.
func (r *sentRing) add(e impl.Event, sid string, ack uint64) {
	now := time.Now()
	e.Cursor = sid
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byFlow == nil {
		r.byFlow, r.dropped = map[string][]sentEvent{}, map[string]string{}
	}
	if len(r.byFlow) > sentSweep && now.Sub(r.sweptAt) >= sentWindow {
		r.sweptAt = now
		for f, es := range r.byFlow {
			if es, _ = within(es, now); len(es) == 0 {
				delete(r.byFlow, f)
				delete(r.dropped, f)
			} else {
				r.byFlow[f] = es
			}
		}
	}
	es, gone := within(r.byFlow[e.FlowID], now)
	r.drop(e.FlowID, gone)
	if len(es) >= sentCap {
		r.drop(e.FlowID, es[len(es)-sentCap].e.Cursor)
		es = es[len(es)-sentCap+1:]
	}
	// Concurrent writes are acknowledged in any order: keep stream order.
	i := len(es)
	for i > 0 && cursorAfter(es[i-1].e.Cursor, sid) {
		i--
	}
	es = append(es, sentEvent{})
	copy(es[i+1:], es[i:])
	es[i] = sentEvent{e: e, at: now, ack: ack}
	r.byFlow[e.FlowID] = es
}

// after returns the flow's recent writes after stream ID sid, in order;
// complete is false when the ring dropped some of its writes after sid
// (the stream alone then has them all).
func (r *sentRing) after(flow, sid string) (out []sentEvent, complete bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	es, gone := within(r.byFlow[flow], time.Now())
	for _, s := range es {
		if cursorAfter(s.e.Cursor, sid) {
			out = append(out, s)
		}
	}
	for _, d := range []string{gone, r.dropped[flow]} {
		if d != "" && cursorAfter(d, sid) {
			return out, false
		}
	}
	return out, true
}

// has reports whether stream ID sid of flow is one of this layer's recent
// writes.
func (r *sentRing) has(flow, sid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.byFlow[flow] {
		if s.e.Cursor == sid {
			return true
		}
	}
	return false
}

// within drops the writes older than sentWindow from the front of es;
// gone is the stream ID of the last one it dropped ("" if none).
func within(es []sentEvent, now time.Time) (kept []sentEvent, gone string) {
	i := 0
	for i < len(es) && now.Sub(es[i].at) > sentWindow {
		i++
	}
	if i > 0 {
		gone = es[i-1].e.Cursor
	}
	return es[i:], gone
}

// heardCap bounds heardRing: the untagged messages of about the last
// second at 1,000 events/s, more than a publish budget's worth.
const heardCap = 1024

// heardRing maps the last heardCap untagged live messages (flow, event ID)
// to their stream IDs.
type heardRing struct {
	mu   sync.Mutex
	sids map[[2]string]string
	ring [heardCap][2]string
	next int
}

// add records the message of event id of flow, stream ID sid (strings the
// hub already copied out of the message).
func (r *heardRing) add(flow, id, sid string) {
	k := [2]string{flow, id}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sids == nil {
		r.sids = make(map[[2]string]string, heardCap)
	}
	if _, ok := r.sids[k]; ok {
		// Heard again (a second write of that ID): one slot per key, or
		// the older slot's eviction would drop the newer entry.
		r.sids[k] = sid
		return
	}
	delete(r.sids, r.ring[r.next])
	r.ring[r.next] = k
	r.next = (r.next + 1) % heardCap
	r.sids[k] = sid
}

// sid returns the stream ID of the message of event id of flow, "" if it
// was not heard (or not lately).
func (r *heardRing) sid(flow, id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sids[[2]string{flow, id}]
}
