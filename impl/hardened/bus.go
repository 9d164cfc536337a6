package hardened

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/redis/go-redis/v9"
)

// ErrOutboxFull is returned by Publish when Redis is unreachable and the
// outbox already holds Config.OutboxCap events: the event is refused (not
// acknowledged) and counted in OutboxStats.Overflow.
var ErrOutboxFull = errors.New("hardened: outbox full, event refused")

// replayBatch is how many outbox events one replay round trip carries, and
// replayBytes how many payload bytes (past the first event): Redis runs a
// round trip's script whole, and every other call waits meanwhile (explore
// seed 9090, registry-26a5b9cc: after a quota lifted, 100 events of 16 KB
// at a time held Redis while a lookup's 50 ms budget ran out, and the
// instance answered from memory that had forgotten the other instance's
// connections).
const (
	replayBatch = 100
	replayBytes = 128 << 10
)

// batchLen is how many events at the head of outbox one replay round trip
// carries: at most replayBatch, and replayBytes of payload unless the first
// alone is more.
func batchLen(outbox []pending) int {
	n, size := 0, 0
	for _, p := range outbox[:min(len(outbox), replayBatch)] {
		size += len(p.e.Payload)
		if n > 0 && size > replayBytes {
			break
		}
		n++
	}
	return n
}

// OutboxStats describes the outbox of events acknowledged while Redis was
// unreachable.
type OutboxStats struct {
	// Pending events wait for replay to the stream.
	Pending int `json:"pending"`
	// Overflow counts publishes refused because the outbox was full.
	Overflow int64 `json:"overflow"`
	// Replayed counts events written to the stream by replay (duplicates
	// of events already there included: the script skips them).
	Replayed int64 `json:"replayed"`
	// Dropped counts events that Redis rejected on replay with an error
	// that is not an outage (e.g. a key of the wrong type).
	Dropped int64 `json:"dropped"`
	// Journaled counts the events the outbox journal held at start
	// (acknowledged by an earlier layer on it), JournalUnreadable its
	// lines that could not be read (a write torn by a crash).
	Journaled         int64 `json:"journaled"`
	JournalUnreadable int64 `json:"journal_unreadable"`
}

// Bus is the hardened event bus (TASK-005).
//
// Publish is one EVALSHA (one command, in one round trip that concurrent
// publishes share as a pipeline): a script that appends the event to the
// flow's stream (XADD MAXLEN ~) unless its ID is already there, refreshes
// the stream TTL when this instance has not done so for StreamTTL/10, and
// PUBLISHes it with its stream ID for live delivery. While Redis is unreachable (or a flow still has events waiting
// in the outbox) an event is acknowledged from memory: delivered to local
// subscribers at once and queued in one in-order outbox that a single
// replayer writes back, a batch per round trip, when Redis returns. A
// publish behind its flow's outbox events while Redis answers waits for
// the replayer (within its budget) rather than outrun it.
//
// Cursors: see cursor.go.
type Bus struct {
	m     *manager
	k     keys
	redis bool // Enabled && EventBus
	hub   *hub
	pub   *publisher
	// The publish script's MAXLEN and TTL arguments, formatted (and boxed)
	// once: the hot path allocates only what differs per event.
	maxLenArg, ttlArg any
	// gapArg turns the scripts' gap marks on ("1", on a Redis Cluster:
	// see hub) or off ("0").
	gapArg any

	// origin names this layer in the tags of its memory-acknowledged
	// events (see cursor.go).
	origin string
	// jr is the outbox journal (Config.JournalDir), nil without one.
	jr *journal

	mu      sync.Mutex
	ring    map[string][]memEvent // recent memory-acknowledged events per flow
	outbox  []pending             // waiting for replay, in publish order
	pending map[string]int        // outbox events per flow
	memN    uint64                // memory sequence of the last event acknowledged from memory
	stats   OutboxStats

	// unresolved counts the outbox's maybe events whose stream copy, if
	// any, is not known (see resolve), readable without mu.
	unresolved atomic.Int64
	// queued is len(outbox), readable without mu: Publish takes mu only
	// when the outbox holds events.
	queued atomic.Int64
	// refreshed holds the last stream TTL refresh (time.Time) per flow;
	// refreshes counts its entries and sweptAt (unix ns) is its last sweep.
	refreshed sync.Map
	refreshes atomic.Int64
	sweptAt   atomic.Int64

	wakeReplay chan struct{}
	// sent are this layer's recent writes (see sentRing).
	sent sentRing
	// heard are the stream IDs of the last untagged messages (see resolve).
	heard heardRing
	// acks numbers this layer's acknowledgements, from memory or from
	// Redis, in the order they were made (see acked).
	acks atomic.Uint64
}

// acked numbers an acknowledgement about to be made: a subscriber's
// queue keeps the memory events it holds and the writes handed ahead of
// the stream in that order (see handOwn).
func (b *Bus) acked() uint64 { return b.acks.Add(1) }

func newBus(m *manager, k keys) *Bus {
	b := &Bus{
		m: m, k: k,
		redis:      m.cfg.Enabled && m.cfg.EventBus,
		maxLenArg:  strconv.FormatInt(m.cfg.StreamMaxLen, 10),
		ttlArg:     strconv.FormatInt(m.cfg.StreamTTL.Milliseconds(), 10),
		gapArg:     "0",
		origin:     newOrigin(),
		ring:       map[string][]memEvent{},
		pending:    map[string]int{},
		wakeReplay: make(chan struct{}, 1),
	}
	if impl.IsClusterURL(m.cfg.URL) {
		b.gapArg = "1"
	}
	b.hub = newHub(b)
	if b.redis {
		m.listen(func(rdb redis.UniversalClient, gen uint64) {
			b.hub.up(rdb)
			b.kick()
		}, b.hub.down)
		m.missed(b.hub.unreachable)
		m.goroutine(b.hub.watchClock)
		m.closers = append(m.closers, b.hub.close)
		m.goroutine(b.replayLoop)
		b.pub = newPublisher(m)
	}
	return b
}

// openJournal opens the outbox journal in dir and puts the events it
// holds (acknowledged by an earlier layer on it) into the outbox.
func (b *Bus) openJournal(dir string) error {
	jr, err := openJournal(dir)
	if err != nil {
		return err
	}
	old, bad, err := jr.load()
	if err != nil {
		jr.close()
		return err
	}
	b.mu.Lock()
	for _, p := range old {
		b.queue(p)
		b.keep(p.memEvent)
	}
	b.stats.Journaled = int64(len(old))
	b.stats.JournalUnreadable = int64(bad)
	b.jr = jr
	b.mu.Unlock()
	b.m.goroutine(func() { jr.loop(b, b.m.stop) })
	return nil
}

// Outbox returns the outbox counters.
func (b *Bus) Outbox() OutboxStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.Pending = len(b.outbox)
	return s
}

// Publish stores and broadcasts e within PublishBudget. An empty e.ID is
// replaced by a random one (IDs are what make replay idempotent).
func (b *Bus) Publish(ctx context.Context, e impl.Event) error {
	if e.FlowID == "" {
		return errors.New("hardened: event without flow_id")
	}
	if e.ID == "" {
		e.ID = newID()
	}
	fill(&e)
	e.Cursor = ""
	var attempted, attemptFence int64
	var landed string
	var late *pubReq
	behind, broke := false, false
	if b.redis {
		// A flow with events in the outbox queues behind them: its order
		// is the outbox's until the replay caught up.
		direct := true
		if b.queued.Load() > 0 {
			b.mu.Lock()
			direct = b.pending[e.FlowID] == 0
			b.mu.Unlock()
		}
		behind = !direct
		if direct {
			ttl := b.ttlDue(e.FlowID)
			now := time.Now()
			sent, fence := now.UnixMilli(), b.m.clock.fence(now, b.m.cfg.PublishBudget)
			keys, args, err := b.publishArgs(e, ttl, fence)
			if err != nil {
				return err
			}
			cctx, cancel := context.WithTimeout(ctx, b.m.cfg.PublishBudget)
			maybeSent, sid, l, err := b.pub.run(cctx, keys, args)
			late = l
			cancel()
			switch {
			case err == nil:
				if sid != "" {
					ack := b.acked()
					b.sent.add(e, sid, ack)
					b.hub.wrote(e, sid, ack)
				}
				impl.NoteMode(ctx, impl.ModeRedis)
				return nil
			case ctx.Err() != nil:
				return fmt.Errorf("hardened: publish %s: %w", e.ID, ctx.Err())
			case !errors.Is(err, errOffline) && !outage(err):
				return fmt.Errorf("hardened: publish %s: %w", e.ID, err)
			}
			if ttl {
				b.forgetRefresh(e.FlowID)
			}
			if maybeSent {
				// The request may have reached Redis, or may yet until
				// its fence.
				attempted, attemptFence = sent, fence
			}
			broke = !errors.Is(err, errNotReplicated) && !timeout(err) && !unsent(err)
			if errors.Is(err, errNotReplicated) {
				// Stored on the primary, not confirmed on a replica:
				// its entry is sid, which subscribers may have had
				// (see unseen). The call returned: it cannot land
				// later, so its replay need not wait for a fence.
				landed, attemptFence = sid, 0
			}
		}
	}
	// Behind the flow's outbox events while Redis answers, a publish
	// waits (within its budget) for the replay to write it: a publisher
	// faster than the replay would otherwise keep its flow in the outbox
	// until the outbox is full. During an outage it does not wait.
	var written chan struct{}
	if behind {
		if rdb, _ := b.m.client(); rdb != nil {
			written = make(chan struct{})
		}
	}
	var line []byte
	if b.jr != nil {
		js, err := appendEvent(make([]byte, 0, 256+len(e.Payload)), e)
		if err != nil {
			return fmt.Errorf("hardened: encoding event %s: %w", e.ID, err)
		}
		line = js
	}
	synced, err := b.remember(pending{memEvent: memEvent{e: e}, attempted: attempted, fence: attemptFence, written: written, late: late, landed: landed, broke: broke}, line)
	if err != nil {
		return err
	}
	b.kick()
	// Acknowledged from memory, unless the replay took it to Redis first.
	mode := impl.ModeMemory
	if written != nil {
		t := time.NewTimer(b.m.cfg.PublishBudget)
		defer t.Stop()
		select {
		case <-written:
			mode = impl.ModeRedis
		case <-t.C:
		case <-ctx.Done():
		}
	}
	if synced != nil {
		// Acknowledged once the journal holds it (the event stays in the
		// outbox either way: a refused publish may still be delivered).
		if err := synced.wait(b.m.cfg.PublishBudget); err != nil {
			return fmt.Errorf("hardened: publish %s: %w", e.ID, err)
		}
	}
	impl.NoteMode(ctx, mode)
	return nil
}

// memEvent is an event acknowledged from memory: its tag, and when (unix
// ms). Its e.Cursor is the position of a client that got it and nothing
// from the stream after that time (what History returns).
type memEvent struct {
	e   impl.Event
	tag memTag
	ms  int64
	// maybe: a publish of it may have reached Redis (see cursor.go).
	maybe bool
	// ack is its acknowledgement's number (see acked).
	ack uint64
	// sid is its stream entry once the replay wrote it (or found an
	// earlier attempt's, when known): set in the ring only (see stored).
	sid string
	// was is, in the ring once replayed, the entry an earlier attempt
	// wrote when it was known (pending.landed).
	was string
}

// pending is an outbox event (a direct publish is one with a zero tag).
// attempted is when (unix ms) a publish of it that may have reached Redis
// was made, 0 if none was: its replay then looks for it in the stream
// first, once Redis's clock is past fence, the latest fence of those
// attempts (see fence.go).
type pending struct {
	memEvent
	attempted, fence int64
	// written, when not nil, is closed once the event left the outbox
	// (written, or dropped as Redis refused it).
	written chan struct{}
	// landed is the stream ID of the untagged entry an earlier attempt
	// of a maybe event wrote, once this layer saw its live message.
	landed string
	// late is the earlier attempt while a flusher still has it in hand:
	// the replay waits for it (see replayOnce).
	late *pubReq
	// broke: the publish fell back because its connection broke (see
	// hub.local).
	broke bool
}

// remember acknowledges e from memory: a memory cursor, the flow's ring,
// (with the Redis bus on) the outbox, and the local subscribers, which get
// the flow's memory events in memory-sequence order (a subscriber that
// delivered n covers every earlier one: one pushed late would be skipped).
//
// With the journal on, line is the event's JSON: its journal line goes
// into the next batch, which remember returns (nil without a journal).
func (b *Bus) remember(p pending, line []byte) (*jbatch, error) {
	e := p.e
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.redis && len(b.outbox) >= b.m.cfg.OutboxCap {
		b.stats.Overflow++
		return nil, fmt.Errorf("hardened: publish %s: %w (cap %d)", e.ID, ErrOutboxFull, b.m.cfg.OutboxCap)
	}
	b.memN++
	me := memEvent{e: e, tag: memTag{b.origin, b.memN}, ms: time.Now().UnixMilli(), maybe: p.attempted > 0, ack: b.acked()}
	// strconv, not fmt: the critical section stays short.
	me.e.Cursor = position{sid: strconv.FormatInt(me.ms, 10) + "-0", tags: []memTag{me.tag}}.String()
	p.memEvent = me
	var synced *jbatch
	if b.redis {
		b.queue(p)
		if b.jr != nil {
			synced = b.jr.appendRecord(me, b.outbox[len(b.outbox)-1].landed, line)
		}
		if p.late != nil {
			b.m.goroutine(func() { b.settle(p.late, e.FlowID, e.ID) })
		}
	}
	b.keep(me)
	b.hub.local(me, p.broke || p.written != nil)
	return synced, nil
}

// settle waits for the earlier attempt of outbox event id (a call a
// flusher still had in hand when the publish gave up) to end: when it
// stored the event, that is its stream copy (resolve); either way the
// replay, which waited for it, goes on (see replayOnce).
func (b *Bus) settle(late *pubReq, flow, id string) {
	select {
	case <-late.settled:
	case <-b.m.stop:
		return
	}
	if late.sid != "" {
		b.resolve(flow, id, late.sid)
	}
	b.kick()
}

// queue appends p to the outbox. Callers hold b.mu.
func (b *Bus) queue(p pending) {
	if p.maybe && p.landed == "" {
		// Counted before heard is read: a message that arrives meanwhile
		// either is in heard or finds this count (see resolve).
		b.unresolved.Add(1)
		if p.landed = b.heard.sid(p.e.FlowID, p.e.ID); p.landed != "" {
			b.unresolved.Add(-1)
		}
	}
	b.outbox = append(b.outbox, p)
	b.queued.Store(int64(len(b.outbox)))
	b.pending[p.e.FlowID]++
}

// keep adds me to its flow's ring. Callers hold b.mu.
func (b *Bus) keep(me memEvent) {
	r := append(b.ring[me.e.FlowID], me)
	if n := b.m.cfg.MemoryEvents; len(r) >= 2*n {
		// Trimmed once per MemoryEvents publishes, not on each: copying
		// the ring per publish costs as much as the rest of memory mode.
		r = slices.Clone(r[len(r)-n:])
	}
	b.ring[me.e.FlowID] = r
}

// recent returns the flow's last MemoryEvents memory-acknowledged events.
// Callers hold b.mu and must not modify the result.
func (b *Bus) recent(flow string) []memEvent {
	r := b.ring[flow]
	return r[max(0, len(r)-b.m.cfg.MemoryEvents):]
}

// stored records that the flow's memory event t is stream entry sid (the
// replay wrote it, or found an earlier attempt's entry). Callers hold b.mu.
func (b *Bus) stored(flow string, t memTag, sid, landed string) {
	r := b.ring[flow]
	i := sort.Search(len(r), func(i int) bool { return r[i].tag.n >= t.n })
	if i < len(r) && r[i].tag == t {
		r[i].sid, r[i].was = sid, landed
	}
}

// unseen returns the flow's events this layer holds in memory that a
// client at pos did not get, in order. With the Redis bus: the replayed
// ones of the ring whose entries lie past pos (a client resumed here
// without Redis gets them before the outbox's, or naming a later tag
// would cover them), then those still in the outbox; without it the
// ring's, those since the position's time unless the position says which
// of this layer's it got. Callers hold b.mu.
func (b *Bus) unseen(flow string, pos position) []memEvent {
	ms, _, _ := parseCursor(pos.sid)
	own := pos.has(b.origin)
	var out []memEvent
	keep := func(me memEvent) {
		if !pos.covers(me.tag) && (b.redis || own || uint64(me.ms) >= ms) {
			out = append(out, me)
		}
	}
	if !b.redis {
		for _, me := range b.recent(flow) {
			keep(me)
		}
		return out
	}
	for _, me := range b.recent(flow) {
		// A position past the entry an earlier attempt wrote had the
		// event there (on a timeline a failover may since have
		// discarded: the replay wrote it again, and the catch-up hands
		// that copy when it lies past the position).
		if me.sid != "" && cursorAfter(me.sid, pos.sid) && (me.was == "" || cursorAfter(me.was, pos.sid)) {
			keep(me)
		}
	}
	if b.pending[flow] > 0 {
		for _, p := range b.outbox {
			// A maybe event whose entry the position passed was had.
			if p.e.FlowID == flow && (p.landed == "" || cursorAfter(p.landed, pos.sid)) {
				keep(p.memEvent)
			}
		}
	}
	return out
}

// resolve records that the untagged live message of event id (stream ID
// sid) arrived: if a maybe event of the outbox is that event, its earlier
// attempt wrote it there, and a client whose stream position passed sid
// had it. The message may come before the publish that sent it timed out:
// heard keeps the last heardCap for the maybe events to come.
func (b *Bus) resolve(flow, id, sid string) {
	b.heard.add(flow, id, sid)
	if b.unresolved.Load() == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.outbox {
		if p := &b.outbox[i]; p.maybe && p.landed == "" && p.e.ID == id && p.e.FlowID == flow {
			b.landedAs(p, sid)
			return
		}
	}
}

// landedAs records that the write of outbox event p landed at stream entry
// sid (when not known yet), in the journal too. Callers hold b.mu.
func (b *Bus) landedAs(p *pending, sid string) {
	if p.landed != "" {
		return
	}
	if p.maybe {
		b.unresolved.Add(-1)
	}
	p.landed = sid
	if b.jr != nil && p.tag.origin != "" {
		b.jr.appendLanded(p.tag, sid)
	}
}

// landedAt records that this layer's replay wrote its memory event t as
// entry sid (its own message says so), before the replay's reply: while a
// replica has not confirmed that write (WAIT) the event stays in the
// outbox, and a client whose stream position passed sid had it (see
// unseen). The replay's batch is at the head of the outbox.
func (b *Bus) landedAt(flow string, t memTag, sid string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.outbox[:min(len(b.outbox), replayBatch)] {
		if p := &b.outbox[i]; p.tag == t && p.e.FlowID == flow {
			b.landedAs(p, sid)
			return
		}
	}
}

// fill gives an event the fields every event carries (docs/http.md): a
// payload ({} when empty) and a source ("system" when empty).
func fill(e *impl.Event) {
	if len(e.Payload) == 0 {
		e.Payload = json.RawMessage("{}")
	}
	if e.Source == "" {
		e.Source = "system"
	}
}

// newOrigin returns a random origin token (see cursor.go).
func newOrigin() string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	var b [originLen]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = digits[int(b[i])%len(digits)]
	}
	return string(b[:])
}

// ttlDue reports whether this instance should refresh the stream TTL with
// this publish (once per flow per StreamTTL/10), and marks it refreshed.
// Lock-free on the hot path: a flow refreshed recently costs one map read.
func (b *Bus) ttlDue(flow string) bool {
	now := time.Now()
	every := b.m.cfg.StreamTTL / 10
	if last, ok := b.refreshed.Load(flow); ok && now.Sub(last.(time.Time)) < every {
		return false
	}
	if _, loaded := b.refreshed.Swap(flow, now); !loaded && b.refreshes.Add(1) > 10000 {
		// Forget flows not refreshed for a while, at most once per period.
		if last := b.sweptAt.Load(); now.UnixNano()-last >= int64(every) && b.sweptAt.CompareAndSwap(last, now.UnixNano()) {
			b.refreshed.Range(func(f, t any) bool {
				if now.Sub(t.(time.Time)) >= every {
					b.forgetRefresh(f.(string))
				}
				return true
			})
		}
	}
	return true
}

// forgetRefresh makes the next publish of flow refresh the stream TTL.
func (b *Bus) forgetRefresh(flow string) {
	if _, ok := b.refreshed.LoadAndDelete(flow); ok {
		b.refreshes.Add(-1)
	}
}

// argZero and argEmpty are the scripts' "no" arguments, boxed once.
var argZero, argEmpty any = "0", ""

// encode is the event's JSON as the stream and the messages carry it.
func encode(e impl.Event) ([]byte, error) {
	e.Cursor = ""
	js, err := appendEvent(make([]byte, 0, 256+len(e.Payload)), e)
	if err != nil {
		return nil, fmt.Errorf("hardened: encoding event %s: %w", e.ID, err)
	}
	return js, nil
}

func (b *Bus) ttlFor(refresh bool) any {
	if refresh {
		return b.ttlArg
	}
	return argZero
}

// publishArgs are publishScript's keys and arguments for e, stored only
// if Redis runs the call by fence (server ms).
func (b *Bus) publishArgs(e impl.Event, refreshTTL bool, fence int64) ([]string, []any, error) {
	js, err := encode(e)
	if err != nil {
		return nil, nil, err
	}
	return []string{b.k.events(e.FlowID)}, []any{b.maxLenArg, b.ttlFor(refreshTTL), b.k.channel(e.FlowID), js, fence, b.gapArg, b.origin}, nil
}

// replayArgs are replayScript's keys and arguments for outbox events of
// one flow, in order, for a call fenced at fence.
func (b *Bus) replayArgs(ps []pending, refreshTTL bool, fence int64) ([]string, []any, error) {
	flow := ps[0].e.FlowID
	var from int64
	args := make([]any, 6, 6+5*len(ps))
	for _, p := range ps {
		js, err := encode(p.e)
		if err != nil {
			return nil, nil, err
		}
		needle, tag := argEmpty, argEmpty
		if p.tag.origin != "" {
			tag = p.tag.String()
		}
		if p.attempted > 0 {
			// The JSON up to and including the ID: {"id":"…",
			id, _ := json.Marshal(p.e.ID)
			needle = `{"id":` + string(id) + `,`
			if from == 0 || p.attempted < from {
				from = p.attempted
			}
		}
		was := argEmpty
		if p.landed != "" {
			was = p.landed
		}
		args = append(args, needle, js, tag, p.fence, was)
	}
	args[0], args[1], args[2], args[3] = strconv.FormatInt(from, 10), b.maxLenArg, b.ttlFor(refreshTTL), b.k.channel(flow)
	args[4], args[5] = fence, b.gapArg
	return []string{b.k.events(flow)}, args, nil
}

// parseEntry turns a stream entry back into an item: its event, the tag it
// was acknowledged from memory with (zero if it was not), and the ID of the
// lost entry of its earlier attempt if it names one (see replayScript). An entry that is not
// an event's JSON (written by something else) becomes an event with only
// its cursor and flow, which the checkers report rather than hide.
func parseEntry(flow string, x redis.XMessage) item {
	var it item
	if s, ok := x.Values["event"].(string); ok {
		it.e, _ = decodeEvent(s)
	}
	it.e.FlowID, it.e.Cursor = flow, x.ID
	fill(&it.e)
	if s, ok := x.Values["mem"].(string); ok {
		it.tag, _ = parseTag(s)
	}
	if s, ok := x.Values["was"].(string); ok {
		if _, _, valid := parseCursor(s); valid {
			it.was = s
		}
	}
	if s, ok := x.Values["o"].(string); ok && validOrigin(s) {
		it.writer = s
	}
	return it
}

// kick wakes the replayer.
func (b *Bus) kick() {
	select {
	case b.wakeReplay <- struct{}{}:
	default:
	}
}

// replayLoop writes the outbox back to Redis in order whenever it is
// reachable: when woken, and every ProbeInterval (a replay that failed
// while the breaker stayed closed is retried). Publish never waits for it.
func (b *Bus) replayLoop() {
	t := time.NewTicker(b.m.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-b.m.stop:
			return
		case <-b.wakeReplay:
		case <-t.C:
		}
		for b.replayOnce() {
			select {
			case <-b.m.stop:
				return
			default:
			}
		}
	}
}

// replayOnce writes up to replayBatch events from the head of the outbox
// in one pipelined round trip, one replayScript call per flow. It reports
// whether to go on.
func (b *Bus) replayOnce() bool {
	if rdb, _ := b.m.client(); rdb == nil {
		return false
	}
	b.mu.Lock()
	// An event whose earlier attempt a flusher still has in hand could be
	// stored by it after the replay looked for it: the batch ends before
	// it (settle kicks the replay when it ended).
	n := batchLen(b.outbox)
	for i := range b.outbox[:n] {
		p := &b.outbox[i]
		if p.late != nil && !closed(p.late.settled) {
			n = i
			break
		}
		if p.late != nil && p.late.sid == "" && unsent(p.late.err) {
			// That attempt never left this instance: nothing to look
			// for, no fence to wait for.
			p.attempted, p.fence, p.late = 0, 0, nil
		}
	}
	batch := slices.Clone(b.outbox[:n])
	var flows []string
	groups := map[string][]int{} // outbox indexes per flow, in order
	ttls := map[string]bool{}
	for i, p := range batch {
		f := p.e.FlowID
		if _, ok := groups[f]; !ok {
			flows = append(flows, f)
			ttls[f] = b.ttlDue(f)
		}
		groups[f] = append(groups[f], i)
	}
	b.mu.Unlock()
	if len(batch) == 0 {
		return false
	}
	now := time.Now()
	sent, fence := now.UnixMilli(), b.m.clock.fence(now, b.m.io)
	cmds := make([]*redis.Cmd, len(flows))
	var w *redis.Cmd
	err := b.m.call(context.Background(), "replay", b.m.io, func(ctx context.Context, rdb redis.UniversalClient) error {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, f := range flows {
				ps := make([]pending, len(groups[f]))
				for j, k := range groups[f] {
					ps[j] = batch[k]
				}
				keys, args, err := b.replayArgs(ps, ttls[f], fence)
				if err != nil {
					return err
				}
				cmds[i] = replayScript.EvalSha(ctx, p, keys, args...)
			}
			b.m.ackMark(ctx, p, b.k.ackChannel())
			w = b.m.waitAcks(ctx, p)
			return nil
		})
		if werr := b.m.replicated(w); werr != nil {
			// Not confirmed (WAIT on a demoted primary is an error
			// itself): every event stays unknown.
			err = werr
		}
		return err
	})
	// Per event: written (or found there), refused by Redis with an error
	// that is not an outage (dropped, counted), unknown: an outage
	// stopped the call, which may or may not have run, so the event stays
	// and its next replay looks for it first; or held: the call wrote
	// nothing for it (it waits for an earlier attempt's fence, behind it
	// in the flow, or the call came past its own).
	const unknown, written, refused, held = 0, 1, 2, 3
	status := make([]int, len(batch))
	sids := make([]string, len(batch)) // entry written or found, when known
	noScript := false
	for i, f := range flows {
		c := cmds[i]
		if c != nil && isNoScript(c.Err()) {
			// The script did not run (the script cache was flushed,
			// or a primary promoted after the scripts were loaded):
			// nothing written, nothing that may land later.
			noScript = true
			for _, k := range groups[f] {
				status[k] = held
			}
			continue
		}
		unconfirmed := errors.Is(err, errNotReplicated)
		if c != nil && unsent(c.Err()) {
			// Never left this instance: nothing that may land later,
			// no fence to wait for.
			for _, k := range groups[f] {
				status[k] = held
			}
			continue
		}
		if c == nil || (c.Err() != nil && outage(c.Err())) || unconfirmed {
			// Not confirmed on a replica, or the connection broke: the
			// next replay finds it (or not) wherever the primary is
			// then. What the call wrote, subscribers may have had (see
			// unseen).
			var res []any
			ran := false
			if c != nil && c.Err() == nil {
				res, ran = c.Val().([]any)
			}
			if ran {
				// The script's reply was read whole (the connection
				// may have broken before the WAIT's: a failover drops
				// the demoted primary's clients): it wrote the events
				// it returned an entry for, and none after them. A
				// reply cut short is no answer (go-redis then holds a
				// typed nil array): explore's duplicated-38222286, a
				// batch read as "none written" and written again by
				// every replay, 21 times.
				for j, k := range groups[f] {
					if j < len(res) {
						sids[k], _ = replayEntry(res[j])
					} else {
						status[k] = held
					}
				}
			}
			continue
		}
		if ms, ok := c.Val().(int64); ok && c.Err() == nil {
			b.m.clock.sample(ms, time.Now())
			for _, k := range groups[f] {
				status[k] = held
			}
			continue
		}
		res, _ := c.Val().([]any)
		for j, k := range groups[f] {
			if c.Err() == nil && j >= len(res) {
				status[k] = held // behind an event whose earlier attempt may still land
				continue
			}
			status[k] = refused // an error answer for the whole call refuses its events
			if c.Err() != nil && full(c.Err().Error()) {
				status[k] = held
			}
			if c.Err() == nil && j < len(res) {
				r, _ := res[j].(string)
				if id, ok := replayEntry(r); ok {
					status[k], sids[k] = written, id
				} else if outageReply(r[1:]) {
					// Caught in the script, but an outage all the
					// same: READONLY from a primary a failover
					// demoted. The next replay tries again.
					status[k] = unknown
				} else if full(r[1:]) {
					status[k] = held
				}
			}
		}
	}
	b.mu.Lock()
	keep := b.outbox[:0:0]
	replayed, dropped := 0, 0
	for i, p := range b.outbox[:len(batch)] {
		if status[i] == unknown {
			if p.attempted == 0 {
				p.attempted = sent
			}
			if sids[i] != "" {
				// Written by a call that returned: no fence to wait
				// for (explore's and sentinel_fanout_failover's late
				// deliveries: after a switch the replay held every
				// later event of the flow until the fence of writes
				// the demoted primary had taken, about a second).
				b.landedAs(&p, sids[i])
			} else {
				p.fence = max(p.fence, fence)
			}
			keep = append(keep, p)
			continue
		}
		if status[i] == held {
			keep = append(keep, p)
			continue
		}
		if status[i] == written {
			replayed++
			if sid := sids[i]; p.tag.origin != "" && sid != "" {
				b.stored(p.e.FlowID, p.tag, sid, p.landed)
			}
		} else {
			dropped++
		}
		if p.maybe && p.landed == "" {
			b.unresolved.Add(-1)
		}
		if b.pending[p.e.FlowID]--; b.pending[p.e.FlowID] <= 0 {
			delete(b.pending, p.e.FlowID)
		}
		if p.written != nil {
			close(p.written)
		}
	}
	if len(keep) == 0 {
		b.outbox = b.outbox[len(batch):]
	} else {
		b.outbox = append(keep, b.outbox[len(batch):]...)
	}
	b.queued.Store(int64(len(b.outbox)))
	if len(b.outbox) == 0 && b.jr != nil {
		b.jr.emptied()
	}
	b.stats.Replayed += int64(replayed)
	b.stats.Dropped += int64(dropped)
	b.mu.Unlock()
	if noScript {
		// Load the scripts, then retry at once.
		return b.m.call(context.Background(), "replay", b.m.io, func(ctx context.Context, rdb redis.UniversalClient) error {
			return loadScripts(ctx, rdb)
		}) == nil
	}
	return replayed+dropped > 0 && len(keep) == 0
}

// unsent tells whether a call's error says it never left this instance:
// the breaker was open (errOffline), no connection could be dialled
// (refused, no route, a TLS handshake that failed) or taken from the pool
// (none free, or the pool closed: the breaker closed the client the call
// had). Such a publish or replay is no attempt that may land later, and
// sets no fence: a graceful stop's drain that met Redis down, then back,
// waited past its deadline for the 5 s fence of a publish that had met a
// closed pool (explore seed 12121, session_chain-f38021e2: 36 events kept
// in the journal of an instance stopped during a failover).
func unsent(err error) bool {
	var op *net.OpError
	return errors.Is(err, errOffline) || errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed) ||
		(errors.As(err, &op) && op.Op == "dial")
}

// full tells whether an error reply from Redis is its refusal of a write
// over maxmemory (policy noeviction, or nothing left to evict): the write
// would have stored nothing, and may succeed once memory is freed, so a
// replay keeps the event rather than drop it (explore's lost-b6e3287d: a
// 1 MB maxmemory for a second dropped two acknowledged events).
func full(msg string) bool { return strings.HasPrefix(msg, "OOM ") }

// replayEntry reads replayScript's reply for one event: the ID of the
// entry that holds it (written now, or "=" and an earlier attempt's
// entry, found), and false for "!" and an error.
func replayEntry(v any) (string, bool) {
	r, _ := v.(string)
	if strings.HasPrefix(r, "!") {
		return "", false
	}
	return strings.TrimPrefix(r, "="), true
}

// closed reports whether ch is closed.
func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func isNoScript(err error) bool { return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") }

// History returns up to count of the flow's latest events with Timestamp >=
// since, oldest first: the stream (one XREVRANGE) merged with the flow's
// events still in the outbox; from memory while Redis is unreachable.
func (b *Bus) History(ctx context.Context, flowID string, count int, since time.Time) ([]impl.Event, error) {
	if count <= 0 {
		return []impl.Event{}, nil
	}
	var stored []impl.Event
	err := errOffline
	if b.redis {
		err = b.m.call(ctx, "history", b.m.io, func(ctx context.Context, rdb redis.UniversalClient) error {
			xs, err := rdb.XRevRangeN(ctx, b.k.events(flowID), "+", "-", int64(count)).Result()
			for i := len(xs) - 1; i >= 0; i-- {
				e := parseEntry(flowID, xs[i]).e
				stored = append(stored, e)
			}
			return err
		})
	}
	b.mu.Lock()
	var extra []impl.Event
	if err != nil {
		for _, me := range b.recent(flowID) {
			extra = append(extra, me.e)
		}
	} else if b.pending[flowID] > 0 {
		for _, p := range b.outbox {
			if p.e.FlowID == flowID {
				extra = append(extra, p.e)
			}
		}
	}
	b.mu.Unlock()
	if err != nil && !errors.Is(err, errOffline) && !outage(err) {
		return nil, fmt.Errorf("hardened: history of %s: %w", flowID, err)
	}
	seen := make(map[string]bool, len(stored))
	out := []impl.Event{}
	for _, e := range stored {
		seen[e.ID] = true
		if !e.Timestamp.Before(since) {
			out = append(out, e)
		}
	}
	// An event still in memory may already be in the stream (its write
	// landed but the reply did not, or the replay is in flight): the
	// stream's copy is the one to show, once.
	for _, e := range extra {
		if !seen[e.ID] && !e.Timestamp.Before(since) {
			out = append(out, e)
		}
	}
	if len(out) > count {
		out = out[len(out)-count:]
	}
	return out, nil
}

// newID returns a random event ID.
func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
