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
//
// A hub keeps the messages it heard on the flows it follows the same way
// (hub.heard), to hand a client resuming during an outage the other
// layers' writes after its position when it heard every one of them.
const (
	sentWindow = 5 * time.Second
	sentCap    = 256
	// sentBytes bounds a flow's payload bytes in a ring.
	sentBytes = 1 << 20
	// sentSweep: past this many flows an add sweeps every flow's expired
	// writes (at most once a sentWindow), so flows that stopped publishing
	// do not hold theirs.
	sentSweep = 1024
)

// sentEvent is a write in a ring: as the queue item of a stream entry
// (e.Cursor its stream ID; for an own write, ack its acknowledgement's
// number, see Bus.acked) and when it was added.
type sentEvent struct {
	item
	at time.Time
}

// sentRing holds recent writes per flow, in stream order.
type sentRing struct {
	mu     sync.Mutex
	byFlow map[string][]sentEvent
	// bytes is, per flow, the payload bytes of its writes held.
	bytes map[string]int
	// dropped is, per flow, the stream ID of the latest write the ring
	// dropped (past sentCap, sentBytes or sentWindow): a position before it lacks
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
	e.Cursor = sid
	r.put(item{e: e, ack: ack})
}

// put records the stream entry it (its event's Cursor the entry's ID).
func (r *sentRing) put(it item) {
	now := time.Now()
	flow, sid := it.e.FlowID, it.e.Cursor
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byFlow == nil {
		r.byFlow, r.dropped, r.bytes = map[string][]sentEvent{}, map[string]string{}, map[string]int{}
	}
	if len(r.byFlow) > sentSweep && now.Sub(r.sweptAt) >= sentWindow {
		r.sweptAt = now
		for f, es := range r.byFlow {
			if r.trim(f, es, now); len(r.byFlow[f]) == 0 {
				r.forgetLocked(f)
			}
		}
	}
	es := r.trim(flow, r.byFlow[flow], now)
	n := 0
	for n < len(es) && (len(es)-n >= sentCap || r.bytes[flow]+len(it.e.Payload) > sentBytes) {
		r.bytes[flow] -= len(es[n].e.Payload)
		n++
	}
	if n > 0 {
		r.drop(flow, es[n-1].e.Cursor)
		es = es[n:]
	}
	// Concurrent writes are acknowledged in any order: keep stream order.
	i := len(es)
	for i > 0 && cursorAfter(es[i-1].e.Cursor, sid) {
		i--
	}
	es = append(es, sentEvent{})
	copy(es[i+1:], es[i:])
	es[i] = sentEvent{item: it, at: now}
	r.byFlow[flow] = es
	r.bytes[flow] += len(it.e.Payload)
}

// trim drops flow's writes es older than sentWindow, recording them as
// dropped, and stores and returns the rest. Callers hold r.mu.
func (r *sentRing) trim(flow string, es []sentEvent, now time.Time) []sentEvent {
	i := 0
	for i < len(es) && now.Sub(es[i].at) > sentWindow {
		r.bytes[flow] -= len(es[i].e.Payload)
		i++
	}
	if i == 0 {
		return es
	}
	r.drop(flow, es[i-1].e.Cursor)
	r.byFlow[flow] = es[i:]
	return es[i:]
}

// forget drops everything the ring holds of flow.
func (r *sentRing) forget(flow string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetLocked(flow)
}

// forgetLocked is forget; callers hold r.mu.
func (r *sentRing) forgetLocked(flow string) {
	delete(r.byFlow, flow)
	delete(r.dropped, flow)
	delete(r.bytes, flow)
}

// after returns the flow's recent writes after stream ID sid, in order;
// complete is false when the ring dropped some of its writes after sid
// (the stream alone then has them all).
func (r *sentRing) after(flow, sid string) (out []sentEvent, complete bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byFlow == nil {
		return nil, true
	}
	for _, s := range r.trim(flow, r.byFlow[flow], time.Now()) {
		if cursorAfter(s.e.Cursor, sid) {
			out = append(out, s)
		}
	}
	if d := r.dropped[flow]; d != "" && cursorAfter(d, sid) {
		return out, false
	}
	return out, true
}

// sum returns the XOR of the idSums of the flow's recent writes after
// stream ID from up to to; complete is false when the ring dropped some of
// its writes after from.
func (r *sentRing) sum(flow, from, to string) (sum uint64, complete bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.dropped[flow]; d != "" && cursorAfter(d, from) {
		return 0, false
	}
	for _, s := range r.byFlow[flow] {
		if cursorAfter(s.e.Cursor, from) && !cursorAfter(s.e.Cursor, to) {
			sum ^= idSum(s.e.ID)
		}
	}
	return sum, true
}

// has reports whether stream ID sid of flow is one of this layer's recent
// writes.
func (r *sentRing) has(flow, sid string) bool {
	_, ok := r.ackOf(flow, sid)
	return ok
}

// ackOf returns the acknowledgement number of the recent write at stream
// ID sid of flow (ok false: not one).
func (r *sentRing) ackOf(flow, sid string) (ack uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.byFlow[flow] {
		if s.e.Cursor == sid {
			return s.ack, true
		}
	}
	return 0, false
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
