package hardened

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/redis/go-redis/v9"
)

// catchUpPage is how many stream entries one catch-up XRANGE reads.
const catchUpPage = 500

// maxOwnCheck bounds the pages checkOwn reads.
const maxOwnCheck = 4

// hub multiplexes every flow a layer's subscribers follow onto one Redis
// Pub/Sub connection, and fans out events acknowledged from memory to local
// subscribers. On a Redis Cluster it stays classic SUBSCRIBE, not sharded
// Pub/Sub: the cluster carries every PUBLISH to every node, so one
// connection to any node serves every flow, through a failover (the
// demoted primary still gets the messages) and a slot migration, without
// resubscribing. The cost: while a flow's slot moves its messages come
// from two nodes and may arrive out of stream order, and the later one
// delivered first would make the earlier one look had
// (scenarios/findings/delivery-320efbad.yaml: 1-2 of ~600 events never
// delivered live). So on a cluster every message names the entry before
// its own (gap marks, see publishScript): a subscriber that has not
// delivered that entry catches up from the stream, which gives both in
// order, and the late message is then behind it.
type hub struct {
	b *Bus

	mu     sync.Mutex
	subs   map[string]map[*sub]struct{} // by flow
	ps     *redis.PubSub                // nil while Redis is unreachable
	closed bool
	// attached is ps != nil, readable without mu: every publish asks it
	// (wrote, local), and almost always the hub is attached.
	attached atomic.Bool
	// doubt is set when Redis dropped the Pub/Sub connection: the breaker
	// opened on that alone, and Redis may well be there with writes this
	// layer never heard (a failover's sentinels kill the clients of the
	// primary they demote; the new primary has the writes made since).
	// Subscribers that cannot catch up hold what they are handed until
	// the hub is up again, or a probe finds Redis unreachable (an outage:
	// local delivery goes on, guarantee 4). Explore's reordered-129e46fb:
	// an instance frozen through a failover thawed to a killed
	// connection and delivered a moved publisher's next event, from
	// memory, ahead of the 40 it had written through another instance.
	doubt atomic.Bool
	// tails is, per followed flow, the stream ID of the latest live
	// message heard of another layer's write (see behind).
	tails map[string]string
	// heard holds the messages of the last sentWindow on the followed
	// flows, any layer's, as stream entries; since is, per flow
	// subscribed on the current connection, the stream ID of the first
	// message heard after the subscription was confirmed ("" none yet):
	// Redis sends a connection every message published on its channels
	// after that, in order, so the entries after it up to the last
	// message heard are all in heard (see heardAfter).
	heard sentRing
	since map[string]string
	// follows serializes the SUBSCRIBE and UNSUBSCRIBE a flow's first
	// and last subscribers send (see follow).
	follows sync.Mutex
	// idle is, per followed flow without subscribers, when its last one
	// left: the hub follows it followLinger longer (see remove).
	idle map[string]time.Time
	// page is how many entries a catch-up's next XRANGE reads (0:
	// catchUpPage), for every subscriber of the layer: a client that
	// reconnects keeps what the link taught the last one (nextPage): on
	// a slow link a page must arrive within one deadline (explore seed
	// 14141, session_chain-abe67e71: 500 entries at 8 KB/s never did,
	// and clients reconnecting every 500 ms got nothing while the link
	// stayed slow; a quarter as many after each miss, 500, 125, 31, 7,
	// took four deadlines to reach a page that fits).
	page atomic.Int64
	// ticked is when watchClock last ran and thawed when it last found
	// that it had not run for frozenAfter (the process was frozen: a
	// SIGSTOP, a VM stall), both as time since base (monotonic).
	base           time.Time
	ticked, thawed atomic.Int64
}

// Clock watch: watchClock runs every clockTick; a gap past frozenAfter
// means the process was frozen, and for thawSettle after it (or while
// watchClock has not run since) the hub's view is stale (see frozen).
const (
	clockTick   = 50 * time.Millisecond
	frozenAfter = 500 * time.Millisecond
	thawSettle  = time.Second
)

// watchClock notes each tick; on a gap it holds every subscriber for a
// catch-up (see frozen). It runs until the layer closes.
func (h *hub) watchClock() {
	t := time.NewTicker(clockTick)
	defer t.Stop()
	for {
		select {
		case <-h.b.m.stop:
			return
		case <-t.C:
		}
		now := int64(time.Since(h.base))
		if last := h.ticked.Swap(now); now-last > int64(frozenAfter) {
			h.thawed.Store(now)
			if h.attached.Load() {
				h.mu.Lock()
				for _, set := range h.subs {
					for s := range set {
						s.holdForCatchUp()
					}
				}
				h.mu.Unlock()
			}
		}
	}
}

// frozen reports whether this process was frozen just now (see
// watchClock): what the hub heard may miss what Redis sent meanwhile,
// still unread in its socket or lost with a connection Redis dropped
// (explore seed 12121, reordered-129e46fb: an instance frozen through a
// failover delivered its memory events ahead of 40 writes of another
// instance it never heard).
func (h *hub) frozen() bool {
	ticked := h.ticked.Load()
	if ticked == 0 {
		return false // not watching (no Redis event bus)
	}
	now := int64(time.Since(h.base))
	return now-ticked > int64(frozenAfter) || (h.thawed.Load() > 0 && now-h.thawed.Load() < int64(thawSettle))
}

// followLinger is how long the hub keeps following a flow after its last
// subscriber left: a client that reconnects meanwhile, while Redis is
// unreachable, is held for the catch-up when another layer wrote past its
// cursor (behind) rather than handed this layer's later writes and memory
// events ahead of that write (explore's session_chain-30340d92: the
// instance had stopped following the flow between two connections of one
// client and knew nothing of the other layer's write). As long as the
// layer's own ring of writes (sentWindow).
const followLinger = sentWindow

func newHub(b *Bus) *hub {
	return &hub{b: b, subs: map[string]map[*sub]struct{}{}, tails: map[string]string{}, since: map[string]string{}, idle: map[string]time.Time{},
		base: time.Now()}
}

// heardAfter returns the stream entries of flow after stream ID sid that
// this layer heard live, in stream order, when it heard every entry there
// up to its last message of the flow (complete): the flow was subscribed
// on the connection before sid was written, and the ring still holds
// them all. Without Redis a client resuming at sid gets them from here:
// they are what the catch-up would give it up to where this layer's view
// of the stream ends (explore's session_chain-65a6b11d: a client whose
// session ended before the outage did never got another instance's write
// this one had heard).
func (h *hub) heardAfter(flow, sid string) (its []item, complete bool) {
	h.mu.Lock()
	since := h.since[flow]
	h.mu.Unlock()
	if since == "" || cursorAfter(since, sid) {
		return nil, false
	}
	es, complete := h.heard.after(flow, sid)
	if !complete {
		return nil, false
	}
	for _, e := range es {
		it := e.item
		it.heard = true
		if it.writer == h.b.origin {
			// Its memory events acknowledged before it go first.
			it.ack, _ = h.b.sent.ackOf(flow, it.e.Cursor)
		}
		its = append(its, it)
	}
	return its, true
}

// behind reports whether the latest write of another layer to flow that
// this layer heard live lies after stream ID sid: a client at sid then has
// a backlog that only Redis holds. (A message names its writer; one that
// does not, an older layer's, is told apart from this layer's own writes
// by its ring. The latest write heard used to be taken, own or not: an own
// write after another layer's hid it, and the own write was handed ahead
// of it, explore's session_chain-30340d92.)
func (h *hub) behind(flow, sid string) bool {
	h.mu.Lock()
	t, ok := h.tails[flow]
	h.mu.Unlock()
	return ok && cursorAfter(t, sid) && !h.b.sent.has(flow, t)
}

// deafAfter is how long Redis may go on acknowledging this layer's writes
// after one whose message the hub did not hear (Redis sends a write's
// reply and its message at once): past it, the Pub/Sub connection had
// stopped carrying messages (see deaf).
const deafAfter = 100 * time.Millisecond

// deaf reports whether this layer's writes to flow after stream ID sid
// show the hub deaf: Redis acknowledged one deafAfter or more after
// another whose message the hub never heard. Its connection had stalled
// while the writes went through (a link that stops carrying data before
// it breaks), and it cannot know what other layers wrote meanwhile: a
// client at sid may have a backlog only Redis holds (explore's
// reordered-da4c267d: a hub deaf for 250 ms before its connection
// dropped handed its writes and memory events ahead of another
// instance's writes it never heard). The message of a write made just
// before an outage, lost with the connection, is not deafness: no write
// is acknowledged long after it.
func (h *hub) deaf(flow, sid string) bool {
	own, _ := h.b.sent.after(flow, sid)
	var unheard, last time.Time
	for _, e := range own {
		if e.at.After(last) {
			last = e.at
		}
		if (unheard.IsZero() || e.at.Before(unheard)) && !h.heard.has(flow, e.e.Cursor) {
			unheard = e.at
		}
	}
	return !unheard.IsZero() && last.Sub(unheard) >= deafAfter
}

// deafBehind reports whether the hub is deaf (see hub.deaf) to writes
// after the subscriber's position.
func (s *sub) deafBehind() bool {
	s.mu.Lock()
	sid := s.pos.sid
	s.mu.Unlock()
	return s.b.hub.deaf(s.flow, sid)
}

// up opens the Pub/Sub connection on a new client, subscribes every
// followed flow, and has every subscriber catch up from the stream.
func (h *hub) up(rdb redis.UniversalClient) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	ps := rdb.Subscribe(counter.WithOp(context.Background(), "subscribe"))
	h.ps = ps
	// Not subscribed on this connection yet: what was heard on the last
	// one does not join what this one hears.
	clear(h.since)
	h.attached.Store(true)
	h.doubt.Store(false)
	var chans []string
	for flow := range h.subs {
		chans = append(chans, h.b.k.channel(flow))
	}
	h.mu.Unlock()
	h.b.m.goroutine(func() { h.read(rdb, ps) })
	if len(chans) > 0 {
		h.subscribe(rdb, ps, chans...)
	}
}

// dropped tells whether err, the read error of the Pub/Sub connection of
// client rdb, is Redis dropping it (see hub.doubt), not this layer closing
// it: the breaker, opened on other evidence, closes the client it left
// (with a sentinel client, its Pub/Sub connection too) before the hub is
// taken off (catalogue sentinel_pause_handed_writes: memory events held
// 250 ms, past a client's connection, once that was taken for doubt).
func (h *hub) dropped(rdb redis.UniversalClient, err error) bool {
	return h.b.m.rdb() == rdb && !errors.Is(err, net.ErrClosed) && !errors.Is(err, redis.ErrClosed)
}

// unreachable ends a doubt (see hub.doubt): Redis is out, and the
// subscribers that held for a catch-up get what they were handed.
func (h *hub) unreachable() {
	if !h.doubt.Swap(false) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.subs {
		for s := range set {
			s.poke()
		}
	}
}

// subscribe sends SUBSCRIBE; the confirmation, read by read, makes the
// flow's subscribers catch up.
func (h *hub) subscribe(rdb redis.UniversalClient, ps *redis.PubSub, chans ...string) {
	ctx, cancel := context.WithTimeout(counter.WithOp(context.Background(), "subscribe"), h.b.m.io)
	defer cancel()
	if err := ps.Subscribe(ctx, chans...); err != nil && outage(err) {
		h.b.m.fail(rdb, err)
	}
}

// down drops the Pub/Sub connection; subscribers keep getting local events
// and catch up from the stream when Redis is back.
func (h *hub) down() {
	if ps := h.detach(); ps != nil {
		ps.Close()
	}
}

// detach takes the hub off its Pub/Sub connection and puts every
// subscriber in fallback; it returns the connection, for the caller to
// close (nil when there was none). Closing can wait for the connection's
// reader, which may be dialling (up to ConnectTimeout: a TLS handshake
// that gets no answer), so a publish does not close it itself.
func (h *hub) detach() *redis.PubSub {
	h.mu.Lock()
	ps := h.ps
	h.ps = nil
	h.attached.Store(false)
	var subs []*sub
	for _, set := range h.subs {
		for s := range set {
			subs = append(subs, s)
		}
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.fallback()
		s.resync()
	}
	return ps
}

// wrote hands this layer's write e (stream entry sid), acknowledged from
// Redis, to the flow's subscribers when the Pub/Sub connection is down:
// its message may have been lost with the connection, and a subscriber
// that went to fallback before the write's reply came did not get it from
// handOwn, so the memory events acknowledged next came first (explore's
// session_chain-7fa019ca: a proxy closing every connection after 16 KB,
// one event in four delivered after the next two). A subscriber that got
// it another way skips it (see fresh).
func (h *hub) wrote(e impl.Event, sid string, ack uint64) {
	if h.attached.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ps != nil || h.closed {
		return
	}
	e.Cursor = sid
	for s := range h.subs[e.FlowID] {
		s.push(item{e: e, own: true, ack: ack})
	}
}

// close is run when the layer closes: it unblocks the reader.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	ps := h.ps
	h.ps = nil
	h.attached.Store(false)
	h.mu.Unlock()
	if ps != nil {
		ps.Close()
	}
}

// read receives from ps until it fails or is closed. A failure of the
// current connection opens the breaker (the probe reconnects, and the
// subscribers catch up from the stream).
func (h *hub) read(rdb redis.UniversalClient, ps *redis.PubSub) {
	for {
		msg, err := ps.Receive(context.Background())
		if err != nil {
			h.mu.Lock()
			current := h.ps == ps
			h.mu.Unlock()
			if current {
				if h.dropped(rdb, err) {
					h.doubt.Store(true)
				}
				h.b.m.fail(rdb, fmt.Errorf("pubsub: %w", err))
			}
			return
		}
		switch v := msg.(type) {
		case *redis.Subscription:
			flow := h.flowOf(v.Channel)
			h.mu.Lock()
			if h.ps == ps {
				if v.Kind == "subscribe" {
					h.since[flow] = ""
				} else {
					delete(h.since, flow)
				}
			}
			h.mu.Unlock()
			if v.Kind == "subscribe" {
				h.each(flow, func(s *sub) { s.resync() })
			}
		case *redis.Message:
			head, js, ok := strings.Cut(v.Payload, "\n")
			if !ok {
				continue
			}
			e, err := decodeEvent(js)
			if err != nil {
				continue
			}
			sid, marks, _ := strings.Cut(head, " ")
			var tag memTag
			var prev, was, writer string
			for _, f := range strings.Fields(marks) {
				if p, ok := strings.CutPrefix(f, "^"); ok {
					prev = strings.Clone(p)
				} else if w, ok := strings.CutPrefix(f, "~"); ok {
					was = strings.Clone(w)
				} else if o, ok := strings.CutPrefix(f, "@"); ok {
					writer = o
				} else {
					tag, _ = parseTag(f)
				}
			}
			// Queued events must not keep the whole message (payload
			// included, which e holds a copy of) through their IDs.
			e.ID, e.FlowID, e.Type = strings.Clone(e.ID), strings.Clone(e.FlowID), strings.Clone(e.Type)
			e.Source, e.CorrelationID = strings.Clone(e.Source), strings.Clone(e.CorrelationID)
			e.Cursor = strings.Clone(sid)
			switch tag.origin {
			case "":
				h.b.resolve(e.FlowID, e.ID, e.Cursor)
			case h.b.origin:
				h.b.landedAt(e.FlowID, tag, e.Cursor)
			}
			it := item{e: e, tag: tag, prev: prev, was: was}
			h.mu.Lock()
			if _, followed := h.subs[e.FlowID]; followed && tag.origin != h.b.origin && writer != h.b.origin && cursorAfter(e.Cursor, h.tails[e.FlowID]) {
				h.tails[e.FlowID] = e.Cursor
			}
			if since, ok := h.since[e.FlowID]; ok && h.ps == ps {
				if since == "" {
					h.since[e.FlowID] = e.Cursor
				}
				heard := it
				heard.writer = strings.Clone(writer)
				h.heard.put(heard)
			}
			h.mu.Unlock()
			h.each(e.FlowID, func(s *sub) { s.push(it) })
		}
	}
}

// flowOf inverts keys.channel.
func (h *hub) flowOf(channel string) string {
	s := strings.TrimPrefix(channel, h.b.k.prefix+"{flow:")
	return strings.TrimSuffix(s, "}:updates")
}

func (h *hub) each(flow string, f func(*sub)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[flow] {
		f(s)
	}
}

// local delivers an event acknowledged from memory to local subscribers.
// When the breaker opened before the Pub/Sub reader noticed the outage,
// the subscribers go to fallback first: this layer's last writes, whose
// messages may be lost with the connection, come before this event
// (explore's session_chain-7fa019ca).
//
// With the breaker closed and the hub attached (a publish fell back past
// its budget on a slow link, or under a provider's limit) the Pub/Sub
// connection stays, but this layer's writes whose messages have not come
// yet still go first (handOwn; their messages are skipped when they come):
// explore's reordered-e9a58bf1, 8 B/s downstream under a quota, got the
// memory event ahead of three earlier writes of its publisher.
//
// A publish that fell back because its connection broke (EOF, reset: not a
// timeout) while the hub looks attached holds the subscribers for a
// catch-up instead (hold): Redis dropped this layer's connections (a failover's
// sentinels kill the clients of the primary they demote), the Pub/Sub one
// most likely with them, its reader not at the EOF yet, and the stream may
// hold other layers' writes this one never heard (catalogue
// sentinel_thaw_moved_publisher: a thawed instance's first publish met its
// killed connection 4 ms before its reader did). With the breaker closed
// the catch-up reads them; if Redis is out the breaker opens and fallback
// decides again. So does a memory event acknowledged right after this
// process was frozen (frozen), or while the hub is deaf (deaf): its
// connections may be as stale. So does one acknowledged behind the
// flow's outbox while Redis answers (hold: the publish waits for the
// replay to write it): other layers' writes just before it may have
// messages the reader has not taken yet, and the catch-up, which Redis
// can serve, gives the stream's order (explore's reordered-4fa47489: a
// memory event acknowledged 0.4 ms after another instance's write, whose
// message the reader took after it, came first). And one acknowledged
// while Redis answers but the hub does not follow the flow on its
// connection (it is coming up, its SUBSCRIBE not confirmed): what other
// layers wrote meanwhile reaches the subscriber only through the
// catch-up.
func (h *hub) local(me memEvent, hold bool) {
	rdb, _ := h.b.m.client()
	if rdb == nil && h.attached.Load() {
		// The publish must not wait for the close (tls_mismatch: 985 ms
		// publishes while the reader dialled a server that no longer
		// spoke TLS).
		if ps := h.detach(); ps != nil {
			h.b.m.goroutine(func() { ps.Close() })
		}
	}
	attached := h.attached.Load()
	h.mu.Lock()
	_, following := h.since[me.e.FlowID]
	h.mu.Unlock()
	unheard := rdb != nil && !following
	h.each(me.e.FlowID, func(s *sub) {
		if unheard || attached && (hold || h.frozen() || s.deafBehind()) {
			s.holdForCatchUp()
		} else if attached && s.handOwn() {
			// The ring no longer covers the position: the catch-up
			// delivers those writes, and the memory events after.
			s.resync()
		}
		s.push(memItem(me))
	})
}

// register adds s; it reports whether s is its flow's first subscriber,
// for follow.
func (h *hub) register(s *sub) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, followed := h.subs[s.flow]
	if !followed {
		h.subs[s.flow] = map[*sub]struct{}{}
	}
	delete(h.idle, s.flow)
	h.subs[s.flow][s] = struct{}{}
	return !followed
}

// follow brings the flow's channel subscription in line with its
// subscribers, after its first one came or its last one went (changed): a
// SUBSCRIBE while it has any, else an UNSUBSCRIBE. Calls are serialized
// and each reads the state afresh: the UNSUBSCRIBE of a leaving last
// subscriber could otherwise reach Redis after the SUBSCRIBE of the next
// one, which would then never get a live message.
func (h *hub) follow(changed bool, flow string) {
	if !changed {
		return
	}
	h.follows.Lock()
	defer h.follows.Unlock()
	h.mu.Lock()
	_, want := h.subs[flow]
	ps := h.ps
	h.mu.Unlock()
	rdb, _ := h.b.m.client()
	switch {
	case ps == nil || rdb == nil:
	case want:
		h.subscribe(rdb, ps, h.b.k.channel(flow))
	default:
		ctx, cancel := context.WithTimeout(counter.WithOp(context.Background(), "subscribe"), h.b.m.io)
		ps.Unsubscribe(ctx, h.b.k.channel(flow))
		cancel()
	}
}

// remove unregisters s; followLinger after the last subscriber of a flow
// left, unless another came, the flow is unsubscribed (unfollow).
func (h *hub) remove(s *sub) {
	h.mu.Lock()
	delete(h.subs[s.flow], s)
	last := len(h.subs[s.flow]) == 0
	if last {
		h.idle[s.flow] = time.Now()
	}
	h.mu.Unlock()
	if last {
		time.AfterFunc(followLinger, func() { h.unfollow(s.flow) })
	}
}

// unfollow stops following flow if it has been without subscribers for
// followLinger.
func (h *hub) unfollow(flow string) {
	h.mu.Lock()
	since, idle := h.idle[flow]
	gone := idle && !h.closed && len(h.subs[flow]) == 0 && time.Since(since) >= followLinger
	if gone {
		delete(h.subs, flow)
		delete(h.tails, flow)
		delete(h.idle, flow)
		delete(h.since, flow)
	}
	h.mu.Unlock()
	if gone {
		h.heard.forget(flow)
	}
	h.follow(gone, flow)
}

// item is one event on its way to a subscriber: from the stream (cursor
// is its stream ID; tag set if it was acknowledged from memory and
// replayed) or acknowledged from memory by this layer (mem, and its tag).
type item struct {
	e   impl.Event
	mem bool
	tag memTag
	// maybe: a memory item whose publish may have reached the stream
	// untagged (see cursor.go).
	maybe bool
	// ack is, for a memory item or an own write, its acknowledgement's
	// number (see Bus.acked).
	ack uint64
	// own: a write of this layer (stream ID as cursor) handed over when
	// its Pub/Sub message may be lost (see sentRing); delivered even while
	// the subscriber catches up.
	own bool
	// heard: a stream entry handed from what the hub heard while the
	// subscriber cannot catch up (see hub.heardAfter); delivered even
	// while it catches up.
	heard bool
	// prev is, for a live message with a gap mark, the stream ID of the
	// entry before it.
	prev string
	// was is, for a replay written at a new ID, the ID of its earlier
	// attempt's entry, which a failover discarded (see replayScript).
	was string
	// writer is, for a stream entry a publish wrote, the origin of the
	// layer that wrote it (see publishScript).
	writer string
}

// memItem is the queue item of memory event me.
func memItem(me memEvent) item {
	return item{e: me.e, mem: true, tag: me.tag, maybe: me.maybe, ack: me.ack}
}

// sub is one subscriber. Its pump goroutine delivers, in order and once
// each: the backlog, then live items, catching up from the stream (XRANGE
// after the last stream ID it delivered) whenever its Pub/Sub view may have
// a gap (first subscription, reconnect). Its position (see cursor.go) says
// what it delivered, so that the later replay of an event it delivered
// from memory is not delivered again; every event goes out with the
// position after it as cursor.
type sub struct {
	b    *Bus
	flow string
	out  chan impl.Event
	wake chan struct{}

	mu       sync.Mutex
	queue    []item
	needSync bool
	// syncGen counts resyncs: a catch-up whose read began before one (a
	// subscription confirmed meanwhile) reads again.
	syncGen uint64
	pos     position // what it delivered
	// held and heldBytes count the items queued or in the pump's hands
	// (payload bytes); over is set, and overflow closed, once they passed
	// the bound.
	held      int
	heldBytes int64
	over      bool
	overflow  chan struct{}
	// hold keeps the queue undelivered until the first catch-up: the
	// subscriber resumed without Redis behind other layers' writes (see
	// Subscribe).
	hold bool
	// seen holds the IDs of events delivered once through one path (from
	// memory, or from the stream while a memory copy waits in the queue)
	// whose other copy has not come by yet; memQueued counts queued
	// memory copies per ID. (Tags find a replayed copy too; IDs also
	// find the copies of a publish that timed out after Redis ran it,
	// which the stream holds untagged.)
	seen      map[string]struct{}
	memQueued map[string]int
	// streamed remembers the IDs of the last streamedCap events delivered
	// (from the stream or from memory): a publish that timed out after
	// Redis ran it is acknowledged from memory too, and that copy may come
	// after; after a failover the replay may write it to the new primary's
	// stream again.
	streamed recentIDs
	// ownTried and ownOK: the own mark (origin and stream ID) checkOwn
	// read the stream for, and the one it found to be the writes handed
	// (ownOK under mu; ownTried the pump's own).
	ownTried, ownOK string
}

// streamedCap bounds sub.streamed.
const streamedCap = 1024

// recentIDs is a set of the last streamedCap IDs added.
type recentIDs struct {
	set  map[string]struct{}
	ring [streamedCap]string
	next int
}

// add remembers id. It keeps a copy: an ID decoded from a message is a
// slice of the whole message, which would stay in memory with it (1024
// events of 16 KB are 16 MB per subscriber).
func (r *recentIDs) add(id string) {
	id = strings.Clone(id)
	if r.set == nil {
		r.set = make(map[string]struct{}, streamedCap)
	}
	delete(r.set, r.ring[r.next])
	r.ring[r.next] = id
	r.next = (r.next + 1) % streamedCap
	r.set[id] = struct{}{}
}

// has reports whether id is in the set.
func (r *recentIDs) has(id string) bool {
	_, ok := r.set[id]
	return ok
}

func (s *sub) push(it item) {
	s.mu.Lock()
	s.enqueue(it)
	s.mu.Unlock()
	s.poke()
}

// enqueue appends it; callers hold s.mu. Past the subscriber's bound
// (Config.SubscriberQueue, SubscriberQueueBytes: a consumer that stopped
// reading) it ends the subscription instead: the consumer resumes with
// the last cursor it got.
func (s *sub) enqueue(it item) {
	if s.over {
		return
	}
	s.held++
	s.heldBytes += int64(len(it.e.Payload))
	cfg := &s.b.m.cfg
	if (cfg.SubscriberQueue > 0 && s.held > cfg.SubscriberQueue) || (cfg.SubscriberQueueBytes > 0 && s.heldBytes > cfg.SubscriberQueueBytes) {
		s.over = true
		close(s.overflow)
		s.queue = nil
		return
	}
	s.queue = append(s.queue, it)
	if it.mem {
		s.memQueued[it.e.ID]++
	}
}

// release counts an item as no longer held (delivered or skipped).
func (s *sub) release(it item) {
	s.mu.Lock()
	s.held--
	s.heldBytes -= int64(len(it.e.Payload))
	s.mu.Unlock()
}

// handOwn puts this layer's recent writes after the subscriber's stream
// position (see sentRing) in the queue: they were acknowledged before any
// event the layer acknowledges from memory from now on, so they go ahead
// of everything queued but the memory events acknowledged before them,
// which a slow consumer may not have taken yet (explore's
// reordered-cef7265f: a write handed ahead of two such events). When the
// ring no longer holds all of them, it holds the queue for the catch-up
// instead (held): handing the rest would skip the dropped ones.
func (s *sub) handOwn() (held bool) {
	s.mu.Lock()
	var es []sentEvent
	if !s.over {
		var complete bool
		if es, complete = s.b.sent.after(s.flow, s.pos.sid); !complete {
			es, s.hold, held = nil, true, true
		}
	}
	handing := len(es) > 0
	if handing {
		own := make([]item, len(es))
		for i, e := range es {
			own[i] = item{e: e.e, own: true, ack: e.ack}
		}
		s.merge(own)
	}
	s.mu.Unlock()
	if handing {
		s.poke()
	}
	return held
}

// merge puts handed items hs (in stream order) in the queue, each ahead
// of the first queued item it goes before (handFirst). Callers hold s.mu.
func (s *sub) merge(hs []item) {
	q := make([]item, 0, len(hs)+len(s.queue))
	for _, it := range s.queue {
		for len(hs) > 0 && handFirst(hs[0], it) {
			q = append(q, s.counted(hs[0]))
			hs = hs[1:]
		}
		q = append(q, it)
	}
	for _, h := range hs {
		q = append(q, s.counted(h))
	}
	s.queue = q
}

// handFirst reports whether handed item h, an own write or a stream entry
// heard (see hub.heardAfter), goes ahead of queued item it: a memory event
// acknowledged after it (a heard entry of another layer has no
// acknowledgement here: ahead of every one, as the catch-up would put it),
// an own write acknowledged after an own write, or a stream entry written
// after it. (An own write delivered ahead of an earlier entry leaves the
// stream position where it was: the entry is still delivered.)
func handFirst(h, it item) bool {
	if it.mem || (it.own && h.own) {
		return it.ack > h.ack
	}
	return cursorAfter(it.e.Cursor, h.e.Cursor)
}

// counted counts it, handed to the queue, as held and returns it.
// Callers hold s.mu.
func (s *sub) counted(it item) item {
	s.held++
	s.heldBytes += int64(len(it.e.Payload))
	return it
}

// fallback sets what the subscriber gets while Redis is unreachable: when
// this layer heard another layer's write past its position, the entries
// up to its last message heard first, ahead of the queue as the catch-up
// would deliver them (but for this layer's writes, see handFirst), if it
// heard them all (hub.heardAfter);
// else nothing until the catch-up (only Redis holds those writes,
// acknowledged before what this layer acknowledges from memory now).
// Then this layer's own last writes past its position (handOwn), then its
// memory events live.
func (s *sub) fallback() {
	s.mu.Lock()
	sid := s.pos.sid
	s.mu.Unlock()
	deaf := s.b.hub.deaf(s.flow, sid)
	behind := deaf || s.b.hub.behind(s.flow, sid)
	var heard []item
	if behind && !deaf {
		var complete bool
		heard, complete = s.b.hub.heardAfter(s.flow, sid)
		behind = !complete || !s.ownHeard(heard)
		if behind {
			heard = nil
		}
	}
	s.mu.Lock()
	s.hold = behind
	if len(heard) > 0 && !s.over {
		s.merge(heard)
	}
	s.mu.Unlock()
	if !behind {
		s.handOwn()
	}
}

// ownHeard checks the position's own mark against heard entries, as
// checkOwn does against the stream: when the marking layer's entries among
// them up to the mark are the writes it handed (their checksum), they are
// skipped (handedAhead). It reports false when the entries do not reach
// the mark: the catch-up must read the rest (explore's
// duplicated-186a2286: another instance's handed writes, more than the
// cursor names by hash, delivered again from what this one heard).
func (s *sub) ownHeard(heard []item) bool {
	s.mu.Lock()
	p := s.pos
	s.mu.Unlock()
	if p.ownTo == "" || p.ownOrigin == s.b.origin {
		return true // none, or this layer's own (its ring knows them)
	}
	if len(heard) == 0 || cursorAfter(p.ownTo, heard[len(heard)-1].e.Cursor) {
		return false
	}
	var sum uint64
	for _, it := range heard {
		if cursorAfter(it.e.Cursor, p.ownTo) {
			break
		}
		if it.writer == p.ownOrigin {
			sum ^= idSum(it.e.ID)
		}
	}
	if sum == p.ownSum {
		s.mu.Lock()
		s.ownOK = p.ownOrigin + p.ownTo
		s.mu.Unlock()
	}
	return true
}

// holdForCatchUp keeps the queue undelivered until the next catch-up.
func (s *sub) holdForCatchUp() {
	s.mu.Lock()
	s.hold = true
	s.mu.Unlock()
	s.resync()
}

func (s *sub) resync() {
	s.mu.Lock()
	s.needSync = true
	s.syncGen++
	s.mu.Unlock()
	s.poke()
}

func (s *sub) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Position is where the flow stands now, as a cursor (see cursor.go): a
// subscription after it delivers every event published from now on, on
// this instance or another.
func (b *Bus) Position(ctx context.Context, flowID string) (string, error) {
	if flowID == "" {
		return "", fmt.Errorf("hardened: position without flow id")
	}
	return b.now(ctx, flowID).String(), nil
}

// Resumable reports whether cursor is one a subscription resumes after
// (see cursor.go); after any other it starts from now.
func (b *Bus) Resumable(cursor string) bool {
	_, ok := parsePosition(cursor)
	return ok
}

// now is where the flow stands: the last entry of its stream (without
// Redis, the local clock stands in) and every event this layer has
// acknowledged from memory so far.
func (b *Bus) now(ctx context.Context, flowID string) position {
	var p position
	p.sid = fmt.Sprintf("%d-0", time.Now().UnixMilli())
	if b.redis {
		b.m.call(ctx, "subscribe", b.m.io, func(ctx context.Context, rdb redis.UniversalClient) error {
			xs, err := rdb.XRevRangeN(ctx, b.k.events(flowID), "+", "-", 1).Result()
			if err == nil {
				p.sid = "0-0"
				if len(xs) > 0 {
					p.sid = xs[0].ID
				}
			}
			return err
		})
	}
	b.mu.Lock()
	if b.memN > 0 {
		p.see(memTag{b.origin, b.memN})
	}
	b.mu.Unlock()
	return p
}

// Subscribe delivers the flow's events from now on (after == "") or after
// the given cursor (a stream ID or a memory cursor, see Bus), each once and
// in order. The channel is closed when ctx ends or the layer closes.
func (b *Bus) Subscribe(ctx context.Context, flowID, after string) (<-chan impl.Event, error) {
	if flowID == "" {
		return nil, fmt.Errorf("hardened: subscribe without flow id")
	}
	s := b.newSub(flowID)
	// Resuming: the events this layer holds in memory that the position
	// does not cover come first (then the stream after its stream ID).
	pos, resume := parsePosition(after)
	if resume {
		s.pos = pos
	} else {
		s.pos = b.now(ctx, flowID)
	}
	// The backlog and the registration are one step under b.mu, which
	// every memory acknowledgement holds while it pushes to the local
	// subscribers: each memory event is in the backlog or pushed, in order.
	b.mu.Lock()
	if resume {
		for _, me := range b.unseen(flowID, pos) {
			s.enqueue(memItem(me))
		}
		if rdb, _ := b.m.client(); b.redis && rdb != nil {
			// The stream gives the order: what this layer holds in
			// memory for the client comes after the catch-up. So do
			// its own writes after the position, in acknowledgement
			// order among the memory events: those the catch-up
			// delivers are skipped then, and one that a restart
			// without persistence or a failover took from the stream
			// still goes ahead of the memory events acknowledged after
			// it (explore's reordered-8d55309d: handed with the next
			// memory event, after eight).
			s.hold = true
			s.handOwn()
		} else if b.redis {
			// After the backlog: this layer's writes go among its
			// memory events in acknowledgement order (see handOwn).
			s.fallback()
		}
		// A publish that timed out after Redis ran it is in the stream
		// untagged and was acknowledged from memory too: the client got
		// it if the position covers its tag, so its stream copy is not
		// delivered again (this layer's own memory events only).
		for _, me := range b.recent(flowID) {
			if pos.covers(me.tag) {
				s.seen[me.e.ID] = struct{}{}
			}
		}
	}
	first := b.hub.register(s)
	b.mu.Unlock()
	b.hub.follow(first, flowID)
	s.poke()
	b.m.goroutine(func() { s.pump(ctx) })
	return s.out, nil
}

// newSub is a subscriber of flow, not registered yet.
func (b *Bus) newSub(flow string) *sub {
	return &sub{b: b, flow: flow, out: make(chan impl.Event), wake: make(chan struct{}, 1), overflow: make(chan struct{}),
		seen: map[string]struct{}{}, memQueued: map[string]int{}, needSync: b.redis}
}

// pump is the subscriber's goroutine. A catch-up that failed is tried
// again every ProbeInterval, not only when an event comes: a quiet flow's
// subscriber would otherwise wait for the next one.
func (s *sub) pump(ctx context.Context) {
	defer close(s.out)
	defer s.b.hub.remove(s)
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.b.m.stop:
			return
		case <-s.overflow:
			return
		case <-s.wake:
		case <-retry:
		}
		retry = nil
		s.mu.Lock()
		syncing := s.needSync
		s.mu.Unlock()
		if syncing {
			syncing = !s.catchUp(ctx)
		}
		if syncing {
			retry = time.After(s.b.m.cfg.ProbeInterval)
		}
		s.mu.Lock()
		if syncing && (s.hold || s.b.hub.doubt.Load()) {
			s.mu.Unlock()
			continue
		}
		s.hold = false
		items := s.queue
		s.queue = nil
		s.mu.Unlock()
		if !s.deliverAll(ctx, items, syncing) {
			return
		}
	}
}

// deliverAll delivers items taken from the queue, in order; it reports
// false when the subscription ended.
func (s *sub) deliverAll(ctx context.Context, items []item, syncing bool) bool {
	for _, it := range items {
		ok := s.deliver(ctx, it, syncing)
		s.release(it)
		if !ok {
			return false
		}
	}
	return true
}

// catchUp reads the stream after its stream position and delivers it; it reports
// whether the subscriber is now in sync.
func (s *sub) catchUp(ctx context.Context) bool {
	// read is the last entry this catch-up read: a page that starts there
	// does not read it again (on a slow link, pages of two entries).
	var read string
	for {
		s.mu.Lock()
		from := s.pos.sid
		gen := s.syncGen
		s.mu.Unlock()
		// The read includes the entry at the position (none for a
		// subscriber that had no entry): if the stream no longer holds
		// it, a failover discarded it (or a wipe, or the key expired) and
		// the subscriber had that timeline up to there (position.lost).
		start := from
		if from == "0-0" || from == read {
			start = "(" + from
		}
		s.checkOwn(ctx)
		n := cmp.Or(int(s.b.hub.page.Load()), catchUpPage)
		began := time.Now()
		var xs []redis.XMessage
		err := s.b.m.call(ctx, "subscribe", s.b.m.io, func(ctx context.Context, rdb redis.UniversalClient) error {
			var err error
			xs, err = rdb.XRangeN(ctx, s.b.k.events(s.flow), start, "+", int64(n)).Result()
			return err
		})
		if m := nextPage(n, time.Since(began), s.b.m.io, err); m != n {
			s.b.hub.page.Store(int64(m))
		}
		if err != nil {
			return false
		}
		full := len(xs) == n
		if len(xs) > 0 {
			read = xs[len(xs)-1].ID
		}
		if start == from {
			if len(xs) > 0 && xs[0].ID == from {
				xs = xs[1:]
			} else {
				s.mu.Lock()
				lost := s.pos.sid == from
				if lost {
					s.pos.lose(from)
				}
				s.mu.Unlock()
				if lost {
					s.discarded(ctx, from)
				}
			}
		}
		for _, x := range xs {
			it := parseEntry(s.flow, x)
			if !s.ackedBefore(ctx, it) || !s.deliver(ctx, it, false) {
				return false
			}
		}
		if !full {
			// A resync since this read began (the confirmation of a
			// subscription that was not active when it read) means events
			// written after the read may have reached neither it nor the
			// live path: read again.
			s.mu.Lock()
			done := s.syncGen == gen
			if done {
				s.needSync = false
			}
			s.mu.Unlock()
			if done {
				return true
			}
		}
	}
}

// maxDiscarded bounds the events discarded names in a position, newest
// first: a publish whose reply was lost wrote one of the last entries
// before its connection dropped.
const maxDiscarded = maxMaybe / 2

// discarded names in the position (as maybe events) the events of the
// entries up to stream ID from, which the stream no longer holds, that
// this layer heard live: the subscriber had them, on the timeline a
// failover (or a wipe) discarded. A publish among them whose reply was
// lost was acknowledged from memory, and its layer, which never learned
// where the attempt landed, replays it at a new ID naming no lost entry
// (explore's duplicated-707ec9a3: a client that had the entry live
// resumed and got the replay too). A layer that did not follow the flow
// then cannot name them.
func (s *sub) discarded(ctx context.Context, from string) {
	var xs []redis.XMessage
	err := s.b.m.call(ctx, "subscribe", s.b.m.io, func(ctx context.Context, rdb redis.UniversalClient) error {
		var err error
		xs, err = rdb.XRevRangeN(ctx, s.b.k.events(s.flow), from, "-", 1).Result()
		return err
	})
	if err != nil {
		return
	}
	kept := "0-0"
	if len(xs) > 0 {
		kept = xs[0].ID
	}
	es, _ := s.b.hub.heard.after(s.flow, kept)
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, e := range es {
		if cursorAfter(e.e.Cursor, from) {
			break
		}
		if e.tag.origin == "" || !s.pos.covers(e.tag) {
			names = append(names, idHash(e.e.ID))
		}
	}
	for _, h := range names[max(0, len(names)-maxDiscarded):] {
		s.pos.expect(h)
	}
}

// nextPage is the catch-up page after a read of n entries that took took
// against socket deadline io and failed with err (nil: read): two after a
// missed deadline (the entry at the position, and one more), twice as
// many after a read within a quarter of the deadline (see hub.page).
func nextPage(n int, took, io time.Duration, err error) int {
	switch {
	case err != nil && timeout(err):
		return 2
	case err == nil && took < io/4:
		return min(catchUpPage, 2*n)
	}
	return n
}

// ackedBefore delivers, ahead of stream entry it that is this layer's
// write, the memory events and handed writes queued that were
// acknowledged before it: the catch-up delivers the stream ahead of the
// queue, and a slow consumer may not have taken them yet (see
// TestCatchUpOwnAfterMemory). It reports false when the subscription
// ended.
func (s *sub) ackedBefore(ctx context.Context, it item) bool {
	if it.writer != s.b.origin {
		return true
	}
	ack, ok := s.b.sent.ackOf(s.flow, it.e.Cursor)
	if !ok {
		return true
	}
	s.mu.Lock()
	var first []item
	rest := s.queue[:0:0]
	for _, q := range s.queue {
		if (q.mem || q.own) && q.ack < ack {
			first = append(first, q)
		} else {
			rest = append(rest, q)
		}
	}
	if len(first) > 0 {
		s.queue = rest
	}
	s.mu.Unlock()
	return s.deliverAll(ctx, first, true)
}

// handedAhead reports whether stream item it is a write the position's
// own mark names (see position.ownTo): known to this layer's ring when
// the mark is this layer's, or a write of the marking layer whose
// entries the catch-up found to be the ones handed (checkOwn).
func (s *sub) handedAhead(it item) bool {
	p := &s.pos
	if !p.handedBy(p.ownOrigin, it.e.Cursor) {
		return false
	}
	if p.ownOrigin == s.b.origin && s.b.sent.has(s.flow, it.e.Cursor) && s.ownHanded(it.e.Cursor) {
		return true
	}
	return it.writer == p.ownOrigin && s.ownOK == p.ownOrigin+p.ownTo
}

// ownHanded reports whether this layer's write at stream ID sid is one the
// position's own mark names as handed: the mark is this layer's, reaches
// sid, and sums to this layer's writes in its ring after the stream
// position up to the mark. Writes are handed in acknowledgement order,
// which two publishes at once can invert against stream order: a mark
// past a write not handed yet must not name it (explore seed 17171,
// session_chain-db01bb1d: a write skipped from the stream and the queue,
// TestCatchUpOwnAckOrder). Callers hold s.mu.
func (s *sub) ownHanded(sid string) bool {
	p := &s.pos
	if !p.handedBy(s.b.origin, sid) {
		return false
	}
	sum, complete := s.b.sent.sum(s.flow, p.sid, p.ownTo)
	return complete && sum == p.ownSum
}

// checkOwn reads the stream after the position up to its own mark, once
// per mark, and records whether the marking layer's entries there are
// the writes it handed (their idSums XOR to the mark's sum): only then
// are they skipped (handedAhead). Past maxOwnCheck pages it gives up:
// the hashes alone then say which were handed.
func (s *sub) checkOwn(ctx context.Context) {
	s.mu.Lock()
	p := s.pos
	s.mu.Unlock()
	mark := p.ownOrigin + p.ownTo
	if p.ownTo == "" || s.ownTried == mark {
		return
	}
	s.ownTried = mark
	from := "(" + p.sid
	var sum uint64
	for range maxOwnCheck {
		var xs []redis.XMessage
		err := s.b.m.call(ctx, "subscribe", s.b.m.io, func(ctx context.Context, rdb redis.UniversalClient) error {
			var err error
			xs, err = rdb.XRangeN(ctx, s.b.k.events(s.flow), from, p.ownTo, catchUpPage).Result()
			return err
		})
		if err != nil {
			s.ownTried = ""
			return
		}
		for _, x := range xs {
			if it := parseEntry(s.flow, x); it.writer == p.ownOrigin {
				sum ^= idSum(it.e.ID)
			}
		}
		if len(xs) < catchUpPage {
			if sum == p.ownSum {
				s.mu.Lock()
				s.ownOK = mark
				s.mu.Unlock()
			}
			return
		}
		from = "(" + xs[len(xs)-1].ID
	}
}

// deliver sends one item unless it was delivered already. Stream items are
// skipped while the subscriber is out of sync (the catch-up reads them).
func (s *sub) deliver(ctx context.Context, it item, syncing bool) bool {
	e, ok := s.fresh(it, syncing)
	if !ok {
		return true
	}
	select {
	case s.out <- e:
		return true
	case <-ctx.Done():
		return false
	case <-s.b.m.stop:
		return false
	case <-s.overflow:
		return false
	}
}

// fresh decides whether it is to be delivered and records it; it returns
// the event with the subscriber's position after it as cursor.
func (s *sub) fresh(it item, syncing bool) (impl.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := it.e.ID
	if it.mem {
		if s.memQueued[id]--; s.memQueued[id] <= 0 {
			delete(s.memQueued, id)
		}
		if s.pos.covers(it.tag) {
			delete(s.seen, id)
			return it.e, false
		}
	} else if it.own {
		// An own write handed ahead of the stream (handOwn): the stream
		// position stays where the subscriber had every entry, since
		// other layers' entries before this one may be missing; the
		// position names the event instead (as a maybe event's), so that
		// a catch-up from there, on this instance or any other the
		// client resumes on, skips its stream copy and delivers the rest.
		if !cursorAfter(it.e.Cursor, s.pos.sid) || s.streamed.has(id) || s.pos.expects(id) || s.ownHanded(it.e.Cursor) {
			return it.e, false
		}
		s.pos.expect(idHash(id))
		s.pos.handed(s.b.origin, it.e.Cursor, id)
	} else {
		switch {
		case syncing && !it.heard:
			return it.e, false
		case it.prev != "" && cursorAfter(it.prev, s.pos.sid):
			// The entry before it did not come (a message arrived out
			// of stream order): the catch-up reads both, in order (and
			// the messages after this one find the same gap until then).
			s.needSync = true
			s.syncGen++
			s.poke()
			return it.e, false
		case s.handedAhead(it):
			// The stream copy of an own write handed ahead (its hash may
			// have left the position).
			s.pos.settle(id)
			s.pos.passedOwn(id)
			s.pos.advance(it.e.Cursor)
			delete(s.seen, id)
			return it.e, false
		case cursorAfter(it.e.Cursor, s.pos.sid):
			s.pos.advance(it.e.Cursor)
		default:
			// Delivered: behind what the subscriber had.
			return it.e, false
		}
		if it.was != "" && s.pos.lostPast(it.was) {
			// The replay, at a new ID, of an entry a failover discarded
			// that the subscriber had on that timeline.
			s.pos.settle(id)
			delete(s.seen, id)
			return it.e, false
		}
		if it.tag.origin != "" && s.pos.covers(it.tag) {
			// The replay of an event delivered from memory (here or
			// before the client resumed). The tag stays: a failover
			// may discard this entry, and the origin replay the event
			// again at a new ID without naming it (explore's
			// duplicated-f1f117e5: killed before it learned where this
			// replay landed, it replayed from its journal).
			s.pos.settle(id)
			delete(s.seen, id)
			return it.e, false
		}
		if s.pos.settle(id) {
			// The untagged write of a maybe event delivered from memory,
			// or an own write handed ahead.
			delete(s.seen, id)
			return it.e, false
		}
		if s.streamed.has(id) {
			// An own write handed ahead whose name the position dropped
			// (past maxMaybe), or a second write of one event.
			return it.e, false
		}
	}
	if _, dup := s.seen[id]; dup {
		delete(s.seen, id)
		return it.e, false
	}
	if s.streamed.has(id) {
		// Delivered already. After a failover an event can reach the
		// subscriber three ways: from the primary the failover demoted
		// (whose stream then loses it), from memory (the publish was
		// not confirmed on a replica), and from the new primary's
		// stream, where the replay wrote it again; none of the
		// positions above relates copies on two primaries' streams.
		return it.e, false
	}
	s.streamed.add(id)
	if it.mem || s.memQueued[id] > 0 {
		s.seen[strings.Clone(id)] = struct{}{} // not the message it was sliced from (see recentIDs.add)
	}
	if it.tag.origin != "" {
		// A replayed entry's tag stays in the position too: a failover
		// may discard the entry and the replay write the event again
		// where its instance does not know the entry (the reply was
		// lost), or that instance hand its memory copy to a client
		// resuming there meanwhile; the tag says the client had it.
		s.pos.see(it.tag)
	}
	if it.mem {
		if it.maybe {
			s.pos.expect(idHash(id))
		}
	}
	e := it.e
	e.Cursor = s.pos.String()
	return e, true
}
