package hardened_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/gonogo/harness/target"
)

// TestDurableAck: with AckReplicas 1 a publish is acknowledged from Redis
// only once a replica has it. Without a replica every publish goes to the
// outbox (acknowledged from memory) and stays there, its replay
// unconfirmed too; once a replica follows the server the outbox drains
// and the stream holds each event once. The WAIT rides in the publish's
// own pipeline: one round trip, two commands.
func TestDurableAck(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	l, hook, cfg := layer(t, p, "A", func(c *impl.Config) {
		// A replica that is there confirms well within 200 ms even on
		// a loaded machine.
		c.AckReplicas, c.AckTimeout = 1, 200*time.Millisecond
		c.PublishBudget = time.Second
	})
	require.Equal(t, 1, cfg.Acks())
	bus := l.Bus.(*hardened.Bus)
	ctx := bg(t)
	hook.Reset()
	for i := range 5 {
		require.NoError(t, bus.Publish(ctx, ev("f", i)))
	}
	got := hook.Snapshot()["publish"]
	t.Logf("publish without a replica: %d round trips, %v", got.RoundTrips, got.ByCommand)
	assert.Positive(t, got.ByCommand["wait"], "WAIT sent with the publishes")
	time.Sleep(500 * time.Millisecond) // replays come and fail to be confirmed
	assert.Equal(t, 5, bus.Outbox().Pending, "events no replica confirmed wait in the outbox")

	replica := startReplica(ctx, t, p)
	t0 := time.Now()
	require.Eventually(t, func() bool { return bus.Outbox().Pending == 0 }, 10*time.Second, 20*time.Millisecond,
		"outbox drained once a replica confirms")
	t.Logf("outbox drained %s after the replica started", time.Since(t0).Round(time.Millisecond))
	rdb := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	defer rdb.Close()
	xs, err := rdb.XRange(ctx, bus.StreamKey("f"), "-", "+").Result()
	require.NoError(t, err)
	assert.Len(t, xs, 5, "each event once, on the replica")

	// Unconfirmed writes counted as failures may have opened the
	// breaker: the layer serves from Redis again once it reconnected.
	waitMode(t, l, impl.ModeRedis, 5*time.Second)
	hook.Reset()
	for i := 5; i < 25; i++ {
		require.NoError(t, bus.Publish(ctx, ev("f", i)))
	}
	got = hook.Snapshot()["publish"]
	t.Logf("publish with a replica: %d round trips, %d commands %v", got.RoundTrips, got.Commands, got.ByCommand)
	// A publish that meets the breaker still half-open after the
	// failures above goes to the outbox instead (no round trip of its
	// own): most go to Redis, each in one round trip carrying EVALSHA and
	// WAIT.
	assert.GreaterOrEqual(t, got.RoundTrips, int64(15), "publishes served from Redis")
	assert.Equal(t, 2*got.RoundTrips, got.Commands, "EVALSHA and WAIT in each publish's round trip")
	require.Eventually(t, func() bool { return bus.Outbox().Pending == 0 }, 5*time.Second, 20*time.Millisecond,
		"nothing left for the replay")
}

// TestAcksDefault: durable acknowledgement is on by default (auto) only
// where the URL names sentinels; -1 turns it off, n asks for n replicas.
func TestAcksDefault(t *testing.T) {
	const single, sentinels = "redis://127.0.0.1:1/0", "redis://127.0.0.1:1/0?master_name=m&addr=127.0.0.1:2"
	for _, c := range []struct {
		url  string
		set  int
		want int
	}{{single, 0, 0}, {sentinels, 0, 1}, {sentinels, -1, 0}, {single, 2, 2}} {
		if got := (impl.Config{URL: c.url, AckReplicas: c.set}).Acks(); got != c.want {
			t.Errorf("Acks(%s, AckReplicas %d) = %d; want %d", c.url, c.set, got, c.want)
		}
	}
}

// startReplica starts a replica of p, closed at cleanup; its full sync
// starts at once, not after Redis's default 5 s.
func startReplica(ctx context.Context, t *testing.T, p *target.Process) *target.Process {
	t.Helper()
	require.NoError(t, p.ConfigSet(ctx, "repl-diskless-sync-delay", "0"))
	host, port, _ := net.SplitHostPort(p.Addr())
	replica, err := target.StartProcess(ctx, target.ProcessOptions{Directives: [][]string{
		{"replicaof", host, port}}})
	require.NoError(t, err)
	t.Cleanup(func() { replica.Close() })
	return replica
}

// TestDurableInvalidate: with AckReplicas 1 a cache invalidation is
// complete only once a replica has it, as a publish is: a primary that a
// failover or a partition replaces takes an invalidation it alone had with
// it, and every instance would then read the state it invalidated from the
// new primary. Without a replica the invalidation is deferred (queued, and
// the flow not served from Redis meanwhile); once a replica follows the
// server the queued one is written again and confirmed. (Found by harness
// explore on the sentinel target: a stale read after partition_primary.)
func TestDurableInvalidate(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	l, _, cfg := layer(t, p, "A", func(c *impl.Config) {
		c.AckReplicas, c.AckTimeout = 1, 200*time.Millisecond
		c.CallBudget = time.Second
	})
	ctx := bg(t)
	require.NoError(t, l.Cache.Set(ctx, "f", map[string]any{"status": "active"}, "active", ""))
	require.ErrorIs(t, l.Cache.Invalidate(ctx, "f"), impl.ErrInvalidateDeferred, "an invalidation no replica confirmed")
	ent, err := l.Cache.Get(ctx, "f")
	require.NoError(t, err)
	assert.False(t, ent.Hit, "the flow is not served from Redis while its invalidation waits")

	replica := startReplica(ctx, t, p)
	// The queued invalidation is written again (the flow is served
	// from Redis once it is confirmed), then a new one completes: the
	// replica has the generation it wrote the moment it returns.
	require.Eventually(t, func() bool { return l.Cache.Invalidate(ctx, "f") == nil }, 10*time.Second, 20*time.Millisecond,
		"an invalidation the replica confirms")
	gen := cfg.KeyPrefix + "{flow:f}:gen"
	want, err := conformance.Client(t, p).Get(ctx, gen).Int()
	require.NoError(t, err)
	rdb := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	defer rdb.Close()
	got, err := rdb.Get(ctx, gen).Int()
	require.NoError(t, err)
	assert.Equal(t, want, got, "generation on the replica once the invalidation returned")
	assert.GreaterOrEqual(t, got, 3, "the deferred invalidation, its replay and the last one")
}

// TestResumeAfterUnconfirmed: a publish whose WAIT no replica answered
// (a lagging replica: explore's delivery-e0a2a808, sentinel, replica_lag)
// stored its entry on the primary, where another instance's subscriber
// got it live from the stream; the publishing instance acknowledged it
// from memory and keeps it in its outbox. A client that moves to the
// publishing instance with the cursor of that entry had it: the memory
// copy is not handed to it again (it was, three events twice).
func TestResumeAfterUnconfirmed(t *testing.T) {
	_, a, _, onB := unconfirmedPair(t, "")
	ctx := bg(t)
	var cursor string
	for i := 1; i <= 3; i++ {
		require.NoError(t, a.Bus.Publish(ctx, ev("f", i))) // no replica: acknowledged from memory
		e := conformance.Receive(t, onB, 5*time.Second)
		require.Equal(t, ev("f", i).ID, e.ID)
		cursor = e.Cursor
	}
	require.Equal(t, 3, a.Bus.(*hardened.Bus).Outbox().Pending, "unconfirmed: in A's outbox")
	onA, err := a.Bus.Subscribe(ctx, "f", cursor)
	require.NoError(t, err)
	require.NoError(t, a.Bus.Publish(ctx, ev("f", 4)))
	ids := collect(onA, 1)
	assert.Equal(t, []string{"f-004"}, ids, "moved to A after f-003 (had from the stream on B)")
}

// TestReplayAtLostID: a failover discards a write no replica had; a
// client had it live (cursor at its entry, L). The publishing instance
// replays the event to the new primary at L itself, which nothing on the
// new timeline passed, so the client resuming with that cursor does not
// get it again (explore's duplicated-dd7bba8d: events delivered twice
// across a SENTINEL FAILOVER to clients moving between instances). Here
// the new primary is the same server with the stream rewritten as the
// promoted replica would hold it.
//
// With others, the new primary took another layer's write (f-009) past the
// lost entry before the replay, so the replay writes f-001 at a new ID,
// past a cursor that had it on the discarded timeline. A client that
// resumes with that cursor, before the replay (it gets the replay live) or
// after it (its catch-up reads it), gets f-009 and not f-001 again: the
// entry names the ID its lost attempt had ("was"), and a position whose
// stream ID the stream no longer holds had every entry up to it.
//
// With restart, as with others, but the publishing instance stops before
// the failover and a new process on its outbox journal replays f-001: the
// journal kept where its write had landed (explore seed 3030,
// duplicated-d32356de: an instance stopped and started again across a
// failover wrote its unconfirmed events again under new IDs, and clients
// got them twice).
func TestReplayAtLostID(t *testing.T) {
	for _, v := range []string{"alone", "others", "restart"} {
		t.Run(v, func(t *testing.T) { replayAtLostID(t, v != "alone", v == "restart") })
	}
}

func replayAtLostID(t *testing.T, others, restart bool) {
	journal := ""
	if restart {
		journal = t.TempDir()
	}
	p, a, b, onB := unconfirmedPair(t, journal)
	ctx := bg(t)
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer rdb.Close()
	key := a.Bus.(*hardened.Bus).StreamKey("f")
	entry := func(n int) string {
		js, err := json.Marshal(ev("f", n))
		require.NoError(t, err)
		return string(js)
	}
	first, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"event", entry(0)}}).Result()
	require.NoError(t, err)
	require.NoError(t, a.Bus.Publish(ctx, ev("f", 1))) // no replica: acknowledged from memory
	var had impl.Event
	for had.ID != "f-001" {
		had = conformance.Receive(t, onB, 5*time.Second)
	}
	lost := had.Cursor
	if restart {
		// Close keeps the unconfirmed f-001 in the journal (and says so).
		var unsaved *impl.UnsavedError
		require.ErrorAs(t, a.Close(), &unsaved)
	}
	// The failover: the new primary has the stream up to what it had
	// (one transaction: the replay, which retries at once a write whose
	// call returned, must not write in between). A replay whose WAIT
	// began before it must end before a replica follows, or the replica
	// would confirm what the rewrite discarded. Only A's replays WAIT
	// here (none once A stopped), one after the other: two WAITs done
	// since the rewrite are the one under way then, if any, and one
	// begun after it.
	waits := conformance.Calls(t, rdb)["wait"]
	_, err = rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.Del(ctx, key)
		tx.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: first, Values: []any{"event", entry(0)}})
		if others {
			tx.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"event", entry(9)}})
		}
		return nil
	})
	require.NoError(t, err)
	var live <-chan impl.Event
	if others {
		live, err = b.Bus.Subscribe(ctx, "f", lost)
		require.NoError(t, err)
		assert.Equal(t, []string{"f-009"}, collect(live, 1), "resumed before the replay")
	}
	if !restart {
		require.Eventually(t, func() bool { return conformance.Calls(t, rdb)["wait"] >= waits+2 }, 10*time.Second, 5*time.Millisecond,
			"a replay's WAIT after the rewrite")
	}
	startReplica(ctx, t, p)
	if restart {
		a = journaledLayer(t, p, b, journal)
	}
	require.Eventually(t, func() bool { return a.Bus.(*hardened.Bus).Outbox().Pending == 0 }, 20*time.Second, 20*time.Millisecond,
		"the replay writes f-001 to the new primary once a replica confirms")
	xs, err := rdb.XRange(ctx, key, "-", "+").Result()
	require.NoError(t, err)
	want := []string{"f-002"}
	if others {
		require.Len(t, xs, 3)
		assert.Equal(t, lost, xs[2].Values["was"], "f-001's new entry names its lost one")
		want = []string{"f-009", "f-002"}
	} else {
		require.Len(t, xs, 2)
		assert.Equal(t, lost, xs[1].ID, "f-001 written again at the ID its lost entry had")
	}
	resumed, err := b.Bus.Subscribe(ctx, "f", lost)
	require.NoError(t, err)
	require.NoError(t, a.Bus.Publish(ctx, ev("f", 2)))
	if others {
		assert.Equal(t, []string{"f-002"}, collect(live, 1), "resumed before the replay, after it")
	}
	assert.Equal(t, want, collect(resumed, len(want)), "resumed after the replay")
}

// TestResumeDuringUnconfirmedReplay: a client that got an event from the
// stream, written by its instance's outbox replay, resumes on that
// instance while the replay still waits for a replica (WAIT): the instance
// hands it nothing again. The instance learns the entry from its own
// Pub/Sub message, before the replay's reply (explore seed 4040,
// duplicated-dd7bba8d: a client moved there during a failover got
// the event twice).
func TestResumeDuringUnconfirmedReplay(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	slowAck := func(c *impl.Config) {
		c.AckReplicas, c.AckTimeout, c.PublishBudget = 1, 800*time.Millisecond, 2*time.Second
	}
	a, _, cfg := layer(t, p, "A", slowAck)
	b, _, _ := layer(t, p, "B", shared(cfg.KeyPrefix, slowAck))
	ctx := bg(t)
	_, err := a.Bus.Subscribe(ctx, "f", "") // A follows the flow
	require.NoError(t, err)
	onB, err := b.Bus.Subscribe(ctx, "f", "")
	require.NoError(t, err)
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer rdb.Close()
	ch := hardened.Channel(b.Bus, "f")
	require.Eventually(t, func() bool {
		n, err := rdb.PubSubNumSub(ctx, ch).Result()
		return err == nil && n[ch] == 2
	}, 5*time.Second, 10*time.Millisecond, "A and B subscribed to %s", ch)
	// f-001 goes unconfirmed (no replica) and stays in A's outbox; f-002
	// queues behind it, so the replay is what writes it.
	require.NoError(t, a.Bus.Publish(ctx, ev("f", 1)))
	go a.Bus.Publish(ctx, ev("f", 2))
	until := func(ch <-chan impl.Event, id string) impl.Event {
		for {
			if e := conformance.Receive(t, ch, 5*time.Second); e.ID == id {
				return e
			}
		}
	}
	got := until(onB, "f-002")
	// A's hub reads its own message about when B's does (A's subscriber
	// got f-002 from memory before): the resume must come after that and
	// within the WAIT (800 ms: the reply, which also says where f-002
	// landed, comes no sooner, so half of it tells the two apart).
	sid, _, _ := strings.Cut(got.Cursor, ".")
	require.Eventually(t, func() bool { return hardened.Landed(a.Bus, "f", "f-002") == sid },
		400*time.Millisecond, time.Millisecond, "A learned where f-002 landed before the replay's reply")
	resumed, err := a.Bus.Subscribe(ctx, "f", got.Cursor)
	require.NoError(t, err)
	select {
	case e := <-resumed:
		t.Fatalf("resumed after f-002 (%s) during the replay's WAIT: got %s (cursor %s) again", got.Cursor, e.ID, e.Cursor)
	case <-time.After(300 * time.Millisecond): // the hand-off is made at Subscribe
	}
}

// durable asks for durable acknowledgement with a short WAIT.
func durable(c *impl.Config) {
	c.AckReplicas, c.AckTimeout, c.PublishBudget = 1, 50*time.Millisecond, time.Second
}

// journaledLayer starts A again on its outbox journal, with b's key prefix.
func journaledLayer(t *testing.T, p *target.Process, b *impl.Layer, journal string) *impl.Layer {
	t.Helper()
	l, _, _ := layer(t, p, "A", shared(hardened.KeyPrefix(b.Bus), func(c *impl.Config) {
		durable(c)
		c.JournalDir = journal
	}))
	return l
}

// unconfirmedPair starts a redis-server without replicas and two layers A
// and B of one service on it that ask for durable acknowledgement (so
// every write of theirs goes unconfirmed), and B's subscription to flow f.
func unconfirmedPair(t *testing.T, journal string) (*target.Process, *impl.Layer, *impl.Layer, <-chan impl.Event) {
	t.Helper()
	p := conformance.StartRedis(t, target.ProcessOptions{})
	a, _, cfg := layer(t, p, "A", func(c *impl.Config) {
		durable(c)
		c.JournalDir = journal
	})
	b, _, _ := layer(t, p, "B", shared(cfg.KeyPrefix, durable))
	onB, err := b.Bus.Subscribe(bg(t), "f", "")
	require.NoError(t, err)
	// B follows the flow once Redis counts its subscription.
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer rdb.Close()
	ch := hardened.Channel(b.Bus, "f")
	require.Eventually(t, func() bool {
		n, err := rdb.PubSubNumSub(bg(t), ch).Result()
		return err == nil && n[ch] > 0
	}, 5*time.Second, 10*time.Millisecond, "B subscribed to %s", ch)
	return p, a, b, onB
}
