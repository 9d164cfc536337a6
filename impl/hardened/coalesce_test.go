package hardened

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/target"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCoalescedPublish: concurrent publishes share pipelines (fewer round
// trips than publishes, one command each) and every publisher's events are
// in its flow's stream in its order, none through the outbox.
func TestCoalescedPublish(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hook := counter.New()
	cfg := conformance.Config(p, "A")
	cfg.Hooks = append(cfg.Hooks, hook)
	// Generous: a slow call on a loaded machine must not move events to
	// the outbox while counting.
	cfg.PublishBudget = 5 * time.Second
	l, err := New(ctx, cfg)
	require.NoError(t, err)
	defer l.Close()
	hook.Reset()

	const publishers, each = 50, 100
	var wg sync.WaitGroup
	errs := make(chan error, publishers*each)
	for g := range publishers {
		wg.Go(func() {
			flow := fmt.Sprintf("f%d", g)
			for i := range each {
				errs <- l.Bus.Publish(ctx, conformance.Event(flow, fmt.Sprintf("%s-%03d", flow, i), i, time.Now().UTC()))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for g := range publishers {
		flow := fmt.Sprintf("f%d", g)
		evs, err := l.Bus.History(ctx, flow, 2*each, time.Time{})
		require.NoError(t, err)
		want := make([]string, each)
		for i := range want {
			want[i] = fmt.Sprintf("%s-%03d", flow, i)
		}
		require.Equal(t, want, conformance.IDs(evs), "stream of %s", flow)
	}
	got := hook.Snapshot()["publish"]
	t.Logf("%d publishes: %d round trips, %d commands %v", publishers*each, got.RoundTrips, got.Commands, got.ByCommand)
	assert.Less(t, got.RoundTrips, int64(publishers*each), "round trips: publishes in flight together share one")
	assert.Equal(t, int64(publishers*each), got.Commands, "one command per publish")
	assert.Equal(t, OutboxStats{}, l.Bus.(*Bus).Outbox(), "outbox")
}

// TestAbandonedPublish: a publish whose budget ends while it waits for a
// flusher is never sent, and says so (sent false: its outbox replay need
// not look for it); past coalesceWait a publish with a ready connection
// makes its own round trip.
func TestAbandonedPublish(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	cfg := conformance.Config(p, "A").WithDefaults()
	m := newManager(cfg)
	require.NoError(t, m.start(context.Background()))
	defer m.close()
	b := &Bus{m: m, k: keys{prefix: cfg.KeyPrefix}, redis: true, maxLenArg: "100", ttlArg: "60000", ring: map[string][]memEvent{}, pending: map[string]int{}}
	call := func(id string) ([]string, []any) {
		keys, args, err := b.publishArgs(conformance.Event("f", id, 0, time.Now().UTC()), false, b.m.clock.fence(time.Now(), b.m.cfg.PublishBudget))
		require.NoError(t, err)
		return keys, args
	}
	stream := func() []string {
		evs, err := b.History(context.Background(), "f", 10, time.Time{})
		require.NoError(t, err)
		return conformance.IDs(evs)
	}

	// No flusher and no slot for a direct call: the publish waits out its
	// budget in the queue.
	pub := &publisher{m: m, queue: make(chan *pubReq, 1), slots: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	keys, args := call("abandoned")
	sent, _, late, err := pub.run(ctx, keys, args)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, sent, "a publish that never left the queue was not sent")
	assert.Nil(t, late, "nothing of it is in flight")

	// A flusher started now skips it and sends the next one.
	m.goroutine(pub.loop)
	keys, args = call("next")
	sent, sid, _, err := pub.run(context.Background(), keys, args)
	require.NoError(t, err)
	assert.True(t, sent)
	assert.NotEmpty(t, sid, "the stream entry's ID of a coalesced publish")
	assert.Equal(t, []string{"next"}, stream(), "the abandoned publish stays unsent")

	// No flusher, one slot: the publish goes direct after coalesceWait.
	direct := &publisher{m: m, queue: make(chan *pubReq, 1), slots: make(chan struct{}, 1)}
	keys, args = call("direct")
	sent, sid, _, err = direct.run(context.Background(), keys, args)
	require.NoError(t, err)
	assert.True(t, sent)
	assert.NotEmpty(t, sid, "the stream entry's ID of a direct publish")
	assert.Equal(t, []string{"next", "direct"}, stream())
}

// oneLayer is a hardened layer on a redis-server of its own, and a
// context of 20 s, both ended at cleanup.
func oneLayer(t *testing.T) (context.Context, *target.Process, *impl.Layer) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	l, err := New(ctx, conformance.Config(p, "A"))
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return ctx, p, l
}

// TestCoalescedNoScript: a script cache flushed under the layer costs the
// pipelined publishes an EVAL, not a fallback.
func TestCoalescedNoScript(t *testing.T) {
	ctx, p, l := oneLayer(t)
	require.NoError(t, conformance.Client(t, p).ScriptFlush(ctx).Err())
	require.NoError(t, l.Bus.Publish(ctx, conformance.Event("f", "e1", 1, time.Now().UTC())))
	evs, err := l.Bus.History(ctx, "f", 10, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []string{"e1"}, conformance.IDs(evs))
	assert.Equal(t, OutboxStats{}, l.Bus.(*Bus).Outbox(), "outbox")
}

// TestNoScriptReload: a script cache emptied under the layer (a SCRIPT
// FLUSH; on a cluster, the replica a CLUSTER FAILOVER promoted, whose
// cache went with its full resynchronisation) fails no cache invalidation,
// and the layer loads its scripts again, so that the pipelined calls
// (queued invalidations, registry resync, replay) find them.
func TestNoScriptReload(t *testing.T) {
	ctx, p, l := oneLayer(t)
	rdb := conformance.Client(t, p)
	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	require.NoError(t, l.Cache.Invalidate(ctx, "f"), "invalidate with the script cache flushed")
	reg := l.Registry.(*Registry)
	require.NoError(t, reg.Register(ctx, impl.Conn{ID: "c1", FlowID: "f"}))
	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	reg.resync(true) // pipelined EVALSHA: NOSCRIPT
	require.Eventually(t, func() bool {
		ok, err := rdb.ScriptExists(ctx, invalidateScript.Hash(), registerScript.Hash()).Result()
		reg.mu.Lock()
		dirty := len(reg.dirty)
		reg.mu.Unlock()
		return err == nil && ok[0] && ok[1] && dirty == 0
	}, 5*time.Second, 10*time.Millisecond, "scripts loaded again, and the registry resynced")
}

// TestBehindOutbox: while Redis answers, a publish queued behind its
// flow's outbox events waits for the replay to write it, so a publisher
// faster than the replay (a slow link: 100 events per round trip) does
// not fill the outbox and is back on the direct path once it is drained.
// Without the wait every such publish is acknowledged from memory at once
// and the outbox overflows within milliseconds.
func TestBehindOutbox(t *testing.T) {
	ctx := bgCtx(t)
	_, proxy, l, _ := proxied(ctx, t, func(cfg *impl.Config) {
		cfg.OutboxCap = 100
		cfg.PublishBudget = time.Second
	})
	require.NoError(t, proxy.AddToxic(ctx, chaos.Toxic{Name: "slow", Type: "latency", Attributes: map[string]any{"latency": 5}}))
	b := l.Bus.(*Bus)

	// The flow has an event waiting for replay (its publish fell back).
	first := conformance.Event("f", "e0000", 0, time.Now().UTC())
	b.mu.Lock()
	b.outbox = append(b.outbox, pending{memEvent: memEvent{e: first}})
	b.queued.Store(1)
	b.pending["f"]++
	b.mu.Unlock()

	want := []string{"e0000"}
	for i := 1; i <= 250; i++ {
		id := fmt.Sprintf("e%04d", i)
		require.NoError(t, b.Publish(ctx, conformance.Event("f", id, i, time.Now().UTC())), "publish %s", id)
		want = append(want, id)
	}
	require.Eventually(t, func() bool { return b.Outbox().Pending == 0 }, 10*time.Second, 10*time.Millisecond, "outbox drained")
	st := b.Outbox()
	t.Logf("outbox: %+v", st)
	assert.Zero(t, st.Overflow, "publishes refused by a full outbox")
	assert.Less(t, st.Replayed, int64(250), "publishes went direct again once the outbox drained")
	evs, err := b.History(ctx, "f", 1000, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, want, conformance.IDs(evs), "stream")
	assert.Equal(t, "redis", l.Manager.Mode())
}

// TestBatchLen: a replay round trip carries at most replayBatch events and
// replayBytes of payload, and always the first event.
func TestBatchLen(t *testing.T) {
	of := func(sizes ...int) []pending {
		out := make([]pending, len(sizes))
		for i, n := range sizes {
			out[i].e.Payload = make([]byte, n)
		}
		return out
	}
	many := make([]int, 3*replayBatch)
	for i := range many {
		many[i] = 10
	}
	for _, c := range []struct {
		name  string
		sizes []int
		want  int
	}{
		{"empty", nil, 0},
		{"small events: by count", many, replayBatch},
		{"16 KB events: by bytes", []int{16 << 10, 16 << 10, 16 << 10, 16 << 10, 16 << 10, 16 << 10, 16 << 10, 16 << 10, 16 << 10, 16 << 10}, 8},
		{"one event past the bound alone", []int{replayBytes + 1, 1}, 1},
		{"exactly the bound", []int{replayBytes / 2, replayBytes / 2, 1}, 2},
	} {
		assert.Equal(t, c.want, batchLen(of(c.sizes...)), c.name)
	}
}
