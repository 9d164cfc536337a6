package hardened

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/target"
)

// TestMemoryAfterSlowMessages: this layer's writes were acknowledged from
// Redis but their Pub/Sub messages have not come (a slow link: explore
// seed 5050, reordered-e9a58bf1, 8 B/s downstream under a quota), and the
// next publish falls back to memory while the breaker stays closed and the
// hub attached. The subscriber must get those writes first, then the
// memory event: a publisher's order (guarantee 3). It got the memory event
// first, and the writes when the breaker opened later.
func TestMemoryAfterSlowMessages(t *testing.T) {
	ctx := bgCtx(t)
	p, b, ch, _ := attached(ctx, t)
	require.True(t, b.hub.attached.Load(), "hub on its Pub/Sub connection")

	// e1 and e2 are in the stream and acknowledged to their publisher
	// (the sent ring has them) but no message for them came.
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer rdb.Close()
	stored(ctx, t, rdb, b, "e1", "")
	stored(ctx, t, rdb, b, "e2", "")
	// e3 falls back to memory with the breaker closed.
	remembered(t, b, "e3")
	var ids []string
	for range 3 {
		ids = append(ids, conformance.Receive(t, ch, 5*time.Second).ID)
	}
	assert.Equal(t, []string{"e1", "e2", "e3"}, ids)
}

// TestResumeBehindOtherWrite: a client resumes, with the cursor of e0,
// while its catch-up cannot read Redis (paused); the hub heard another
// layer's write o1 after e0, and this layer's own write e2 came after it
// (no message yet). When the next publish falls back to memory with the
// hub attached, the resumed client must not be handed e2 and the memory
// event ahead of o1: it stays held for the catch-up and gets o1, e2, e3
// (the path explore's session_chain-30340d92 did not take, next to the one
// it did: see TestResumeAfterLastSubscriberLeft).
func TestResumeBehindOtherWrite(t *testing.T) {
	ctx := bgCtx(t)
	p, b, live, cursor := attached(ctx, t)

	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer rdb.Close()
	// Another layer's write, heard.
	stored(ctx, t, rdb, b, "o1", other)
	require.Equal(t, "o1", conformance.Receive(t, live, 5*time.Second).ID)
	// This layer's own write, acknowledged, its message not come.
	stored(ctx, t, rdb, b, "e2", b.origin)

	resume := conformance.Pause(t, p)
	ch, err := b.Subscribe(ctx, "f", cursor)
	require.NoError(t, err)
	require.True(t, b.hub.attached.Load(), "hub on its Pub/Sub connection")
	remembered(t, b, "e3")
	ids := conformance.IDsAcross(t, ch, 300*time.Millisecond, resume, 3)
	assert.Equal(t, []string{"o1", "e2", "e3"}, ids, "resumed after e0")
}

// stored writes event id to flow f's stream as the layer origin would
// ("" writes no writer field). Another layer's write is announced on the
// flow's channel, as its publish would; this layer's is acknowledged (the
// sent ring has it) and its message never comes.
func stored(ctx context.Context, t *testing.T, rdb *redis.Client, b *Bus, id, origin string) {
	t.Helper()
	e := conformance.Event("f", id, 0, time.Now().UTC())
	js, err := appendEvent(nil, e)
	require.NoError(t, err)
	fields := []any{"event", string(js)}
	if origin != "" {
		fields = append(fields, "o", origin)
	}
	sid, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: b.k.events("f"), Values: fields}).Result()
	require.NoError(t, err)
	if origin != "" && origin != b.origin {
		require.NoError(t, rdb.Publish(ctx, b.k.channel("f"), sid+" @"+origin+"\n"+string(js)).Err())
		return
	}
	b.sent.add(e, sid, b.acked())
}

// remembered acknowledges event id of flow f from memory.
func remembered(t *testing.T, b *Bus, id string) {
	t.Helper()
	_, err := b.remember(pending{memEvent: memEvent{e: conformance.Event("f", id, 0, time.Now().UTC())}}, nil)
	require.NoError(t, err)
}

// other is the origin of another layer's writes in these tests.
const other = "zzzzzzzz"

// bgCtx is a context for one test, cancelled at its end.
func bgCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// attached starts Redis and a layer on it (probing every 50 ms), subscribes
// to flow f there and publishes e0, received: it returns the server, the
// bus, the subscription and e0's cursor.
func attached(ctx context.Context, t *testing.T) (*target.Process, *Bus, <-chan impl.Event, string) {
	t.Helper()
	p := conformance.StartRedis(t, target.ProcessOptions{})
	cfg := conformance.Config(p, "A")
	cfg.ProbeInterval = 50 * time.Millisecond
	l, err := New(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	b := l.Bus.(*Bus)
	ch, err := b.Subscribe(ctx, "f", "")
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, conformance.Event("f", "e0", 0, time.Now().UTC())))
	e := conformance.Receive(t, ch, 5*time.Second)
	require.Equal(t, "e0", e.ID)
	return p, b, ch, e.Cursor
}

// TestSlowConsumerOwnAfterMemory: a consumer that reads slowly still has
// queued another layer's write o1 and memory event m2 when this layer's
// write e3, acknowledged from Redis after them, is handed ahead of the
// stream (its message never came, and the next publish, m4, falls back to
// memory). e3 must come after o1 and m2: it was handed ahead of everything
// queued (explore seed 8080, reordered-cef7265f: a slow consumer got two
// publishers' seq 82 before their seq 80 and 81; the catalogue's
// slow_consumer_outage_order then, a write handed ahead of the messages of
// replayed memory events and the memory event behind them).
func TestSlowConsumerOwnAfterMemory(t *testing.T) {
	ctx, _, rdb, b, ch := slowAfterM1(t)
	stored(ctx, t, rdb, b, "o1", other)
	queued(t, b, "o1", true)
	remembered(t, b, "m2")
	stored(ctx, t, rdb, b, "e3", b.origin)
	remembered(t, b, "m4")
	var ids []string
	for range 5 {
		ids = append(ids, conformance.Receive(t, ch, 5*time.Second).ID)
	}
	assert.Equal(t, []string{"m1", "o1", "m2", "e3", "m4"}, ids, "acknowledgement order")
}

// TestCatchUpOwnAfterMemory: a catch-up that runs while memory event m2
// waits in a slow consumer's queue must not deliver this layer's write e3
// from the stream ahead of it: e3 was acknowledged after m2 (1 run in 40
// of TestSlowConsumerOwnAfterMemory before it waited for the subscriber to
// be in sync, and under load when the probe timed out and the hub
// resynced: the catch-up delivered the stream first, then the queue).
func TestCatchUpOwnAfterMemory(t *testing.T) {
	ctx, _, rdb, b, ch := slowAfterM1(t)
	remembered(t, b, "m2")
	stored(ctx, t, rdb, b, "e3", b.origin)
	b.hub.each("f", func(s *sub) { s.resync() })
	var ids []string
	for range 3 {
		ids = append(ids, conformance.Receive(t, ch, 5*time.Second).ID)
	}
	assert.Equal(t, []string{"m1", "m2", "e3"}, ids, "acknowledgement order")
	conformance.NoMore(t, ch, 200*time.Millisecond)
}

// TestHeardOwnAfterMemory: a slow consumer still has memory event m2,
// this layer's write e3 and another layer's write o4 queued when the
// Pub/Sub connection drops with Redis paused, behind o4. The hub heard
// every entry after its position (the replays of m1 and m2 among them),
// so the consumer gets them without Redis, as the catch-up would give
// them, and e3 after m2 (hub.heardAfter; it used to wait for Redis).
func TestHeardAfterDrop(t *testing.T) {
	ctx, p, rdb, b, ch := slowAfterM1(t)
	remembered(t, b, "m2")
	require.NoError(t, b.Publish(ctx, conformance.Event("f", "e3", 0, time.Now().UTC())))
	queued(t, b, "e3", true)
	stored(ctx, t, rdb, b, "o4", other)
	queued(t, b, "o4", true)
	// Redis unreachable, and the connection gone: the catch-up cannot run.
	conformance.Pause(t, p)
	if ps := b.hub.detach(); ps != nil {
		ps.Close()
	}
	var ids []string
	for range 4 {
		ids = append(ids, conformance.Receive(t, ch, 5*time.Second).ID)
	}
	assert.Equal(t, []string{"m1", "m2", "e3", "o4"}, ids, "acknowledgement order, then the stream's")
	conformance.NoMore(t, ch, 200*time.Millisecond)
}

// slowAfterM1 starts a layer with a subscriber to flow f (attached) that
// reads nothing more once memory event m1 is in the pump's hands; it
// returns its Redis and a plain client to it too.
func slowAfterM1(t *testing.T) (context.Context, *target.Process, *redis.Client, *Bus, <-chan impl.Event) {
	t.Helper()
	ctx := bgCtx(t)
	p, b, ch, _ := attached(ctx, t)
	rdb := conformance.Client(t, p)
	// Settled: a catch-up still due (the subscription's confirmation
	// after e0) would take another path (TestCatchUpOwnAfterMemory).
	inSync(t, b)
	remembered(t, b, "m1")
	queued(t, b, "m1", false) // the pump has m1 in hand, waiting for the consumer
	return ctx, p, rdb, b, ch
}

// inSync waits until flow f's subscribers on b have no catch-up due.
func inSync(t *testing.T, b *Bus) {
	t.Helper()
	require.Eventually(t, func() bool {
		settled := true
		b.hub.each("f", func(s *sub) {
			s.mu.Lock()
			settled = settled && !s.needSync
			s.mu.Unlock()
		})
		return settled
	}, 5*time.Second, time.Millisecond, "subscriber in sync")
}

// queued waits until event id is in the queue of flow f's subscriber on
// b, or not. (Other items may be: a copy of e0 that came both ways.)
func queued(t *testing.T, b *Bus, id string, want bool) {
	t.Helper()
	require.Eventually(t, func() bool {
		in := false
		b.hub.each("f", func(s *sub) {
			s.mu.Lock()
			for _, it := range s.queue {
				in = in || it.e.ID == id
			}
			s.mu.Unlock()
		})
		return in == want
	}, 5*time.Second, time.Millisecond, "%s queued: %v", id, want)
}

// TestResumeOwnAfterMemory: a client resumes while Redis is unreachable
// with a cursor before memory events m1 and m2 and this layer's write e3,
// acknowledged from Redis after them. It must get m1, m2, e3 in that
// order: the writes were handed ahead of the memory backlog (explore seed
// 8080, reordered-cef7265f once the queue kept that order: a slow consumer
// reconnecting got seq 82 before seq 80).
func TestResumeOwnAfterMemory(t *testing.T) {
	ctx := bgCtx(t)
	p, b, _, cursor := attached(ctx, t)
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer rdb.Close()
	remembered(t, b, "m1")
	remembered(t, b, "m2")
	stored(ctx, t, rdb, b, "e3", b.origin)

	resume := conformance.Pause(t, p)
	require.Eventually(t, func() bool {
		rdb, _ := b.m.client()
		return rdb == nil
	}, 10*time.Second, 10*time.Millisecond, "the layer saw Redis paused")
	ch, err := b.Subscribe(ctx, "f", cursor)
	require.NoError(t, err)
	var ids []string
	for range 3 {
		ids = append(ids, conformance.Receive(t, ch, 5*time.Second).ID)
	}
	resume()
	assert.Equal(t, []string{"m1", "m2", "e3"}, ids, "resumed after e0 during the pause")
	select {
	case e := <-ch:
		t.Errorf("%s delivered again after the pause", e.ID)
	case <-time.After(500 * time.Millisecond):
	}
}

// TestCatchUpOwnAckOrder: two of this layer's writes, e1 before e2 in the
// stream but e2 acknowledged first (two publishers at once), handed to a
// client that resumed behind them while the breaker was open, then read by
// the catch-up once Redis answers. The catch-up hands queued writes
// acknowledged before an entry ahead of it (ackedBefore), so e2 goes
// first; its hand moved the position's own mark past e1, which the mark
// then claimed was handed too: e1 was skipped from the stream and from the
// queue (explore seed 17171, session_chain-db01bb1d: a slow consumer
// resuming just after a failover missed 2 of 16 such writes). Both must
// come, once each.
func TestCatchUpOwnAckOrder(t *testing.T) {
	ctx := bgCtx(t)
	p, b, _, cursor := attached(ctx, t)
	rdb := conformance.Client(t, p)
	add := func(id string) (impl.Event, string) {
		e := conformance.Event("f", id, 0, time.Now().UTC())
		js, err := appendEvent(nil, e)
		require.NoError(t, err)
		sid, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: b.k.events("f"), Values: []any{"event", string(js), "o", b.origin}}).Result()
		require.NoError(t, err)
		return e, sid
	}
	e1, sid1 := add("e1")
	e2, sid2 := add("e2")
	ack2 := b.acked()
	b.sent.add(e2, sid2, ack2)
	b.sent.add(e1, sid1, b.acked())

	s := b.newSub("f")
	pos, ok := parsePosition(cursor)
	require.True(t, ok)
	s.pos = pos
	s.handOwn() // as a resume does while the breaker is open
	got := make(chan []string)
	go func() {
		var ids []string
		for e := range s.out {
			ids = append(ids, e.ID)
		}
		got <- ids
	}()
	require.True(t, s.catchUp(ctx), "in sync")
	s.mu.Lock()
	rest := s.queue
	s.queue = nil
	s.mu.Unlock()
	require.True(t, s.deliverAll(ctx, rest, false))
	close(s.out)
	assert.ElementsMatch(t, []string{"e1", "e2"}, <-got, "each write once")
}
