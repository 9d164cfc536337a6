package seed_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/seed"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/target"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var newSeed = conformance.Constructor(seed.New)

func TestConformance(t *testing.T) {
	conformance.Run(t, newSeed)
}

func TestRoundTripsPerOperation(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	h := counter.New()
	cfg := conformance.Config(p, "A")
	cfg.Hooks = []redis.Hook{h}
	l := newSeed(t, cfg)
	ctx := context.Background()
	register := func(flow string, n int) {
		for i := 0; i < n; i++ {
			require.NoError(t, l.Registry.Register(ctx, impl.Conn{ID: fmt.Sprintf("%s-c%d", flow, i), FlowID: flow}))
		}
	}
	for _, c := range []struct {
		name   string
		setup  func()
		op     string
		run    func() error
		trips  int64
		detail map[string]int64
	}{
		{"publish", nil, "publish", func() error {
			return l.Bus.Publish(ctx, conformance.Event("f-pub", "e1", 1, time.Now()))
		}, 3, map[string]int64{"xadd": 1, "expire": 1, "publish": 1}},
		{"cache read, miss", nil, "cache_get", func() error {
			_, err := l.Cache.Get(ctx, "f-miss")
			return err
		}, 4, map[string]int64{"hincrby": 2, "hset": 1, "get": 1}},
		{"cache read, hit", func() {
			require.NoError(t, l.Cache.Set(ctx, "f-hit", map[string]any{"a": 1.0}, "active", ""))
		}, "cache_get", func() error {
			_, err := l.Cache.Get(ctx, "f-hit")
			return err
		}, 4, map[string]int64{"hincrby": 2, "hset": 1, "get": 1}},
		{"cache set", nil, "cache_set", func() error {
			return l.Cache.Set(ctx, "f-set", map[string]any{"a": 1.0}, "active", "")
		}, 2, map[string]int64{"setex": 2}},
		{"register", nil, "reg_register", func() error {
			return l.Registry.Register(ctx, impl.Conn{ID: "r1", FlowID: "f-reg"})
		}, 3, map[string]int64{"setex": 1, "sadd": 1, "expire": 1}},
		{"heartbeat", func() { register("f-hb", 1) }, "reg_heartbeat", func() error {
			return l.Registry.Heartbeat(ctx, "f-hb-c0")
		}, 2, map[string]int64{"get": 1, "setex": 1}},
		{"lookup, N=0", nil, "reg_lookup", func() error {
			_, err := l.Registry.Lookup(ctx, "f-empty")
			return err
		}, 1, map[string]int64{"smembers": 1}},
		{"lookup, N=3", func() { register("f-look", 3) }, "reg_lookup", func() error {
			_, err := l.Registry.Lookup(ctx, "f-look")
			return err
		}, 4, map[string]int64{"smembers": 1, "exists": 3}},
		{"unregister", func() { register("f-unreg", 1) }, "reg_unregister", func() error {
			return l.Registry.Unregister(ctx, "f-unreg-c0")
		}, 3, map[string]int64{"get": 1, "srem": 1, "del": 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
			}
			h.Reset()
			require.NoError(t, c.run())
			got := h.Snapshot()[c.op]
			assert.Equal(t, c.trips, got.RoundTrips, "round trips of %s: got %d; want %d", c.name, got.RoundTrips, c.trips)
			assert.Equal(t, c.detail, got.ByCommand, "commands of %s", c.name)
			assert.Equal(t, []string{c.op}, h.Ops(), "traffic is tagged with the operation only")
		})
	}
}

// TestDefectOutageEventsMissingAfterRecovery: an event acknowledged while
// Redis is down is not in history once Redis is back (guarantee 2).
func TestDefectOutageEventsMissingAfterRecovery(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{AOF: true})
	l := newSeed(t, conformance.Config(p, "A"))
	ctx := context.Background()
	require.NoError(t, l.Bus.Publish(ctx, conformance.Event("f-out", "before", 1, time.Now())))
	require.NoError(t, p.Stop(ctx))
	require.NoError(t, l.Bus.Publish(ctx, conformance.Event("f-out", "during", 2, time.Now())),
		"the seed acknowledges a publish while Redis is down")
	require.NoError(t, p.Restart(ctx))

	var got []string
	require.Eventually(t, func() bool {
		evs, err := l.Bus.History(ctx, "f-out", 10, time.Time{})
		got = conformance.IDs(evs)
		return err == nil && len(got) > 0 && got[0] == "before"
	}, 10*time.Second, 50*time.Millisecond, "history from Redis after restart: got %v", got)
	assert.Equal(t, []string{"before"}, got, "history after recovery: the acknowledged event %q is lost", "during")
}

// TestDefectNoSwitchBackAfterStartupOutage: a layer that started with
// Redis down stays in memory after Redis comes up (guarantee 7), so its
// events never reach other instances.
func TestDefectNoSwitchBackAfterStartupOutage(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	ctx := context.Background()
	cfg := conformance.Config(p, "A")
	require.NoError(t, p.Stop(ctx))
	cfg.ConnectTimeout = time.Second
	a := newSeed(t, cfg)
	require.Equal(t, "memory", a.Manager.Mode())
	require.NoError(t, p.Restart(ctx))

	cfg.ServerID = "B"
	b := newSeed(t, cfg)
	require.Equal(t, "redis", b.Manager.Mode(), "a layer started after recovery uses Redis")
	assert.Equal(t, "memory", a.Manager.Mode(), "the layer started during the outage never switches back")
	assert.Equal(t, "unavailable", a.Manager.Health(ctx).Status, "health of the layer started during the outage")
	require.NoError(t, a.Bus.Publish(ctx, conformance.Event("f-sw", "from-a", 1, time.Now())))
	got, err := b.Bus.History(ctx, "f-sw", 10, time.Time{})
	require.NoError(t, err)
	assert.Empty(t, conformance.IDs(got), "events of A seen by B")
	assert.Empty(t, conformance.Keys(t, conformance.Client(t, p), cfg.KeyPrefix), "keys A wrote to Redis")
}

// TestDefectFlowSetExpiresWhileHeartbeating: heartbeats refresh the
// connection key but not the flow set, so Lookup loses a live connection
// once the set's TTL runs out (guarantee 5).
func TestDefectFlowSetExpiresWhileHeartbeating(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	cfg := conformance.Config(p, "A")
	cfg.RegistryTTL = time.Second
	l := newSeed(t, cfg)
	rdb := conformance.Client(t, p)
	ctx := context.Background()
	require.NoError(t, l.Registry.Register(ctx, impl.Conn{ID: "c1", FlowID: "f-hb", UserID: "u"}))
	ids, err := l.Registry.Lookup(ctx, "f-hb")
	require.NoError(t, err)
	require.Equal(t, []string{"c1"}, ids, "lookup right after register")

	flowSet := cfg.KeyPrefix + "sse:connections:flow:f-hb"
	require.Eventually(t, func() bool {
		if err := l.Registry.Heartbeat(ctx, "c1"); err != nil {
			t.Logf("heartbeat: %v", err)
			return false
		}
		return rdb.Exists(ctx, flowSet).Val() == 0
	}, 10*time.Second, 200*time.Millisecond, "flow set expires while the connection heartbeats")

	require.NoError(t, l.Registry.Heartbeat(ctx, "c1"), "the connection is still alive")
	assert.Equal(t, int64(1), rdb.Exists(ctx, cfg.KeyPrefix+"sse:connections:c1").Val(), "connection key exists")
	ids, err = l.Registry.Lookup(ctx, "f-hb")
	require.NoError(t, err)
	assert.Empty(t, ids, "lookup of a heartbeating connection after its flow set expired")
}

// TestDefectStaleFillAfterInvalidate: the cache ignores leases, so a fill
// read before an invalidation lands after it and is served (guarantee 6).
func TestDefectStaleFillAfterInvalidate(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	l := newSeed(t, conformance.Config(p, "A"))
	ctx := context.Background()
	miss, err := l.Cache.Get(ctx, "f-stale")
	require.NoError(t, err)
	require.False(t, miss.Hit)
	old := map[string]any{"status": "active", "version": 1.0} // the reader loaded v1 from the database
	require.NoError(t, l.Cache.Invalidate(ctx, "f-stale"))    // a writer stored v2 and invalidated
	require.NoError(t, l.Cache.Set(ctx, "f-stale", old, "active", miss.Lease))
	got, err := l.Cache.Get(ctx, "f-stale")
	require.NoError(t, err)
	assert.True(t, got.Hit, "the stale fill was accepted")
	assert.Equal(t, old, got.State, "state served after the invalidation")
}

// TestDefectOutageLiveDelivery: while Redis is down, a subscriber on the
// same instance gets nothing of what is published there (guarantee 4).
func TestDefectOutageLiveDelivery(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	l := newSeed(t, conformance.Config(p, "A"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := l.Bus.Subscribe(ctx, "f-live", "")
	require.NoError(t, err)
	require.NoError(t, p.Kill(ctx))
	require.NoError(t, l.Bus.Publish(ctx, conformance.Event("f-live", "during", 1, time.Now())))
	evs, err := l.Bus.History(ctx, "f-live", 10, time.Time{})
	require.NoError(t, err)
	require.Equal(t, []string{"during"}, conformance.IDs(evs), "the event went to memory")
	select {
	case e := <-ch:
		t.Errorf("got live event %q during the outage; the seed should not deliver it", e.ID)
	case <-time.After(500 * time.Millisecond):
	}
}

func TestHealthAndInfo(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	l := newSeed(t, conformance.Config(p, "A"))
	ctx := context.Background()
	h := l.Manager.Health(ctx)
	assert.Equal(t, "healthy", h.Status)
	assert.Equal(t, "redis", h.Mode)
	assert.Greater(t, h.LatencyMS, 0.0, "latency")
	info := l.Manager.Info(ctx)
	assert.Equal(t, "healthy", info["status"])
	for _, k := range []string{"version", "connected_clients", "used_memory_human", "used_memory_peak_human",
		"total_commands_processed", "instantaneous_ops_per_sec", "keyspace"} {
		assert.Contains(t, info, k)
	}
	require.NoError(t, p.Kill(ctx))
	assert.Equal(t, "unhealthy", l.Manager.Health(ctx).Status, "health after kill")
	assert.Equal(t, "error", l.Manager.Info(ctx)["status"], "info after kill")
}
