// Package conformance is the test suite every profile of the layer runs
// (issue 3): publish and retrieve, history start time, live delivery and the
// registry across two instances sharing one Redis, cache TTL by status,
// invalidate, metrics, feature flags, REDIS_ENABLED=false and start-up with
// Redis down. It is test support: it takes *testing.T and spawns a real
// redis-server per Run.
//
// Assumptions about a profile's key layout, kept minimal: every key lives
// under Config.KeyPrefix, and the keys that cache a flow's state contain the
// flow ID and carry the status TTL.
package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/target"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// NewLayer builds one layer for a test from cfg and arranges for it to be
// closed when the test ends (t.Cleanup).
type NewLayer func(t *testing.T, cfg impl.Config) *impl.Layer

// Constructor adapts a profile constructor to NewLayer: it fails the test
// on a constructor error and closes the layer at cleanup.
func Constructor(c impl.Constructor) NewLayer {
	return func(t *testing.T, cfg impl.Config) *impl.Layer {
		t.Helper()
		l, err := c(context.Background(), cfg)
		require.NoError(t, err, "constructing layer")
		t.Cleanup(func() { l.Close() })
		return l
	}
}

// StartRedis spawns a redis-server for the test and closes it at cleanup.
func StartRedis(t testing.TB, opts target.ProcessOptions) *target.Process {
	t.Helper()
	p, err := target.StartProcess(context.Background(), opts)
	require.NoError(t, err, "starting redis-server")
	t.Cleanup(func() { p.Close() })
	return p
}

// Pause freezes p (SIGSTOP); the returned function resumes it, once,
// and the test's end does if the test did not.
func Pause(t testing.TB, p *target.Process) (resume func()) {
	t.Helper()
	require.NoError(t, p.Pause(context.Background()))
	var once sync.Once
	resume = func() { once.Do(func() { require.NoError(t, p.Resume(context.Background())) }) }
	t.Cleanup(resume)
	return resume
}

// IDsAcross receives n events from ch, in order: the first of them if it
// comes within wait while a fault lasts, then, after end() ended the
// fault, the rest; it returns their IDs.
func IDsAcross(t testing.TB, ch <-chan impl.Event, wait time.Duration, end func(), n int) []string {
	t.Helper()
	var ids []string
	select {
	case e := <-ch:
		ids = append(ids, e.ID)
	case <-time.After(wait):
	}
	end()
	for len(ids) < n {
		ids = append(ids, Receive(t, ch, 10*time.Second).ID)
	}
	return ids
}

// NoMore fails if ch delivers anything within d.
func NoMore(t testing.TB, ch <-chan impl.Event, d time.Duration) {
	t.Helper()
	select {
	case e := <-ch:
		t.Errorf("extra delivery %s (cursor %s)", e.ID, e.Cursor)
	case <-time.After(d):
	}
}

// Client returns a plain go-redis client to p (closed at cleanup), for
// checking what a layer left in Redis.
func Client(t testing.TB, p *target.Process) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Calls returns how many times Redis ran each command (INFO
// commandstats), by lower-case name: what the server did, not what a
// client believes it sent.
func Calls(t testing.TB, rdb redis.UniversalClient) map[string]int64 {
	t.Helper()
	text, err := rdb.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	out := map[string]int64{}
	for _, line := range strings.Split(text, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if n, ok2 := strings.CutPrefix(name, "cmdstat_"); ok && ok2 {
			v, _ := strconv.ParseInt(strings.TrimPrefix(strings.Split(rest, ",")[0], "calls="), 10, 64)
			out[n] = v
		}
	}
	return out
}

var prefixSeq atomic.Int64

// Config returns a Config with Redis and every component enabled, pointing
// at p, with a key prefix unique to this process.
func Config(p *target.Process, serverID string) impl.Config { return config(p.URL(), serverID) }

// ClusterConfig is Config for the Redis Cluster c.
func ClusterConfig(c *target.Cluster, serverID string) impl.Config { return config(c.URL(), serverID) }

func config(url, serverID string) impl.Config {
	return impl.Config{
		Enabled: true, EventBus: true, Cache: true, SSE: true,
		URL:            url,
		ServerID:       serverID,
		KeyPrefix:      fmt.Sprintf("conf%d:", prefixSeq.Add(1)),
		ConnectTimeout: 2 * time.Second,
	}
}

// Keys lists the keys under prefix (SCAN; on a cluster, of every
// primary), sorted.
func Keys(t testing.TB, rdb redis.UniversalClient, prefix string) []string {
	t.Helper()
	var mu sync.Mutex
	var out []string
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			out = append(out, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(context.Background(), scan)
	case *redis.Client:
		err = scan(context.Background(), c)
	default:
		err = fmt.Errorf("keys: a %T", rdb)
	}
	require.NoError(t, err, "SCAN")
	sort.Strings(out)
	return out
}

// Event returns a test event with a JSON payload {"n": n}.
func Event(flowID, id string, n int, ts time.Time) impl.Event {
	return impl.Event{
		ID: id, FlowID: flowID, Type: "TEST_EVENT",
		Payload:   json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
		Timestamp: ts, Source: "conformance",
	}
}

// IDs returns the events' IDs in order.
func IDs(evs []impl.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// Receive waits up to timeout for an event on ch and fails the test if
// none comes.
func Receive(t testing.TB, ch <-chan impl.Event, timeout time.Duration) impl.Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		require.True(t, ok, "subscription closed before an event arrived")
		return e
	case <-time.After(timeout):
		require.FailNow(t, "no event delivered", "waited %s", timeout)
	}
	return impl.Event{}
}

// suite carries what every subtest shares.
type suite struct {
	url      string // the Redis every layer uses
	rdb      redis.UniversalClient
	newLayer NewLayer
}

// Run runs the suite against the profile newLayer builds, on a
// redis-server of its own.
func Run(t *testing.T, newLayer NewLayer) {
	p := StartRedis(t, target.ProcessOptions{})
	run(t, &suite{url: p.URL(), rdb: Client(t, p), newLayer: newLayer})
}

// RunCluster runs the suite on the Redis Cluster c: every layer gets c's
// cluster URL (the suite's keys spread over its primaries).
func RunCluster(t *testing.T, c *target.Cluster, newLayer NewLayer) {
	rdb, err := impl.NewUniversalClient(impl.Config{URL: c.URL()}, func(o *redis.Options) { o.MaxRetries = -1 })
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	run(t, &suite{url: c.URL(), rdb: rdb, newLayer: newLayer})
}

func run(t *testing.T, s *suite) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"publish_retrieve", s.publishRetrieve},
		{"history_since", s.historySince},
		{"subscribe_across_instances", s.subscribeAcross},
		{"registry_two_instances", s.registryTwoInstances},
		{"cache_ttl_by_status", s.cacheTTL},
		{"cache_invalidate", s.cacheInvalidate},
		{"cache_metrics", s.cacheMetrics},
		{"feature_flags", s.featureFlags},
		{"redis_disabled", s.redisDisabled},
		{"redis_down_at_start", s.redisDownAtStart},
	} {
		t.Run(c.name, c.run)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkSame compares an event read back with the one published.
func checkSame(t *testing.T, got, want impl.Event) {
	t.Helper()
	assert.Equal(t, want.ID, got.ID, "id")
	assert.Equal(t, want.FlowID, got.FlowID, "flow_id of %s", want.ID)
	assert.Equal(t, want.Type, got.Type, "event_type of %s", want.ID)
	assert.JSONEq(t, string(want.Payload), string(got.Payload), "payload of %s", want.ID)
	assert.WithinDuration(t, want.Timestamp, got.Timestamp, time.Millisecond, "timestamp of %s", want.ID)
	assert.NotEmpty(t, got.Cursor, "cursor of %s", want.ID)
}

func (s *suite) publishRetrieve(t *testing.T) {
	ctx := ctxT(t)
	cfg := config(s.url, "A")
	a := s.newLayer(t, cfg)
	require.Equal(t, impl.ModeRedis, a.Manager.Mode(), "mode with Redis up")
	base := time.Now().UTC().Truncate(time.Millisecond)
	var want []impl.Event
	for i := 1; i <= 5; i++ {
		e := Event("flow-pr", fmt.Sprintf("ev-%d", i), i, base.Add(time.Duration(i)*time.Millisecond))
		require.NoError(t, a.Bus.Publish(ctx, e), "publish %s", e.ID)
		want = append(want, e)
	}
	got, err := a.Bus.History(ctx, "flow-pr", 10, time.Time{})
	require.NoError(t, err)
	require.Equal(t, IDs(want), IDs(got), "history, oldest first")
	cursors := map[string]bool{}
	for i := range want {
		checkSame(t, got[i], want[i])
		cursors[got[i].Cursor] = true
	}
	assert.Len(t, cursors, len(want), "cursors are distinct")

	last2, err := a.Bus.History(ctx, "flow-pr", 2, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []string{"ev-4", "ev-5"}, IDs(last2), "history with count 2")

	cfgB := cfg
	cfgB.ServerID = "B"
	b := s.newLayer(t, cfgB)
	fromB, err := b.Bus.History(ctx, "flow-pr", 10, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, IDs(want), IDs(fromB), "history read by a second instance")
}

func (s *suite) historySince(t *testing.T) {
	ctx := ctxT(t)
	a := s.newLayer(t, config(s.url, "A"))
	t0 := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	for i := 0; i < 4; i++ {
		e := Event("flow-since", fmt.Sprintf("ev-%d", i), i, t0.Add(time.Duration(i)*time.Second))
		require.NoError(t, a.Bus.Publish(ctx, e))
	}
	for _, c := range []struct {
		since time.Time
		want  []string
	}{
		{time.Time{}, []string{"ev-0", "ev-1", "ev-2", "ev-3"}},
		{t0, []string{"ev-0", "ev-1", "ev-2", "ev-3"}},
		{t0.Add(2 * time.Second), []string{"ev-2", "ev-3"}},
		{t0.Add(2500 * time.Millisecond), []string{"ev-3"}},
		{t0.Add(time.Hour), []string{}},
	} {
		got, err := a.Bus.History(ctx, "flow-since", 100, c.since)
		require.NoError(t, err)
		assert.Equal(t, c.want, IDs(got), "history since %s", c.since.Format(time.RFC3339Nano))
	}
}

func (s *suite) subscribeAcross(t *testing.T) {
	ctx := ctxT(t)
	cfg := config(s.url, "A")
	a := s.newLayer(t, cfg)
	cfg.ServerID = "B"
	b := s.newLayer(t, cfg)
	sctx, cancel := context.WithCancel(ctx)
	ch, err := b.Bus.Subscribe(sctx, "flow-live", "")
	require.NoError(t, err)
	e := Event("flow-live", "live-1", 1, time.Now().UTC())
	require.NoError(t, a.Bus.Publish(ctx, e))
	got := Receive(t, ch, 5*time.Second)
	checkSame(t, got, e)
	cancel()
	requireClosed(t, ch)
}

// requireClosed drains ch and fails if it is not closed within 5s.
func requireClosed(t *testing.T, ch <-chan impl.Event) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			require.FailNow(t, "subscription not closed after its context ended")
		}
	}
}

func sorted(ids []string) []string {
	out := append([]string{}, ids...)
	sort.Strings(out)
	return out
}

func (s *suite) registryTwoInstances(t *testing.T) {
	ctx := ctxT(t)
	cfg := config(s.url, "A")
	a := s.newLayer(t, cfg)
	cfg.ServerID = "B"
	b := s.newLayer(t, cfg)
	require.NoError(t, a.Registry.Register(ctx, impl.Conn{ID: "c1", FlowID: "flow-reg", UserID: "u1"}))
	require.NoError(t, b.Registry.Register(ctx, impl.Conn{ID: "c2", FlowID: "flow-reg", UserID: "u2"}))
	require.NoError(t, b.Registry.Register(ctx, impl.Conn{ID: "c3", FlowID: "flow-other", UserID: "u3"}))
	require.NoError(t, a.Registry.Heartbeat(ctx, "c1"))
	require.NoError(t, b.Registry.Heartbeat(ctx, "c2"))
	for name, l := range map[string]*impl.Layer{"A": a, "B": b} {
		got, err := l.Registry.Lookup(ctx, "flow-reg")
		require.NoError(t, err)
		assert.Equal(t, []string{"c1", "c2"}, sorted(got), "lookup on %s", name)
		n, err := l.Registry.Count(ctx)
		require.NoError(t, err)
		assert.Equal(t, 3, n, "count on %s", name)
	}
	require.NoError(t, b.Registry.Unregister(ctx, "c2"))
	got, err := a.Registry.Lookup(ctx, "flow-reg")
	require.NoError(t, err)
	assert.Equal(t, []string{"c1"}, got, "lookup on A after B unregistered c2")
	removed, err := a.Registry.Cleanup(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, removed, "cleanup removes no heartbeating connection")
}

func (s *suite) cacheTTL(t *testing.T) {
	ctx := ctxT(t)
	cfg := config(s.url, "A")
	a := s.newLayer(t, cfg)
	cfg = cfg.WithDefaults()
	for _, c := range []struct {
		status string
		want   time.Duration
	}{
		{"", cfg.CacheTTLActive},
		{"active", cfg.CacheTTLActive},
		{"running", cfg.CacheTTLActive},
		{"completed", cfg.CacheTTLCompleted},
		{"success", cfg.CacheTTLCompleted},
		{"failed", cfg.CacheTTLFailed},
		{"error", cfg.CacheTTLFailed},
		{"cancelled", cfg.CacheTTLFailed},
	} {
		flow := "flow-ttl-" + c.status
		if c.status == "" {
			flow = "flow-ttl-none"
		}
		require.NoError(t, a.Cache.Set(ctx, flow, map[string]any{"status": c.status, "step": 1.0}, c.status, ""))
		var ttls []time.Duration
		for _, k := range Keys(t, s.rdb, cfg.KeyPrefix) {
			if !strings.Contains(k, flow) {
				continue
			}
			ttl, err := s.rdb.TTL(ctx, k).Result()
			require.NoError(t, err)
			if ttl > 0 {
				ttls = append(ttls, ttl)
			}
		}
		require.NotEmpty(t, ttls, "status %q: no key of %s carries a TTL", c.status, flow)
		for _, ttl := range ttls {
			if ttl > c.want || ttl < c.want-10*time.Second {
				t.Errorf("status %q: got TTL %s; want %s", c.status, ttl, c.want)
			}
		}
		got, err := a.Cache.Get(ctx, flow)
		require.NoError(t, err)
		assert.True(t, got.Hit, "status %q: read after set hits", c.status)
		assert.Equal(t, map[string]any{"status": c.status, "step": 1.0}, got.State, "status %q: state", c.status)
	}
}

func (s *suite) cacheInvalidate(t *testing.T) {
	ctx := ctxT(t)
	cfg := config(s.url, "A")
	a := s.newLayer(t, cfg)
	cfg.ServerID = "B"
	b := s.newLayer(t, cfg)
	state := map[string]any{"status": "active", "v": 1.0}
	require.NoError(t, a.Cache.Set(ctx, "flow-inv", state, "active", ""))
	got, err := b.Cache.Get(ctx, "flow-inv")
	require.NoError(t, err)
	require.True(t, got.Hit, "instance B reads what A cached")
	require.NoError(t, b.Cache.Invalidate(ctx, "flow-inv"))
	for name, l := range map[string]*impl.Layer{"A": a, "B": b} {
		got, err := l.Cache.Get(ctx, "flow-inv")
		require.NoError(t, err)
		assert.False(t, got.Hit, "read on %s after invalidate: got hit %v", name, got.State)
	}
	require.NoError(t, a.Cache.Invalidate(ctx, "flow-never-cached"), "invalidating an absent flow")
}

func (s *suite) cacheMetrics(t *testing.T) {
	ctx := ctxT(t)
	a := s.newLayer(t, config(s.url, "A"))
	_, err := a.Cache.Get(ctx, "flow-m")
	require.NoError(t, err)
	require.NoError(t, a.Cache.Set(ctx, "flow-m", map[string]any{"status": "active"}, "active", ""))
	for i := 0; i < 2; i++ {
		got, err := a.Cache.Get(ctx, "flow-m")
		require.NoError(t, err)
		require.True(t, got.Hit)
	}
	want := impl.CacheMetrics{Access: 3, Hits: 2, Misses: 1, HitRate: 66.67}
	var got impl.CacheMetrics
	require.Eventually(t, func() bool {
		got, err = a.Cache.Metrics(ctx, "flow-m")
		return err == nil && got.Access == want.Access && got.Hits == want.Hits && got.Misses == want.Misses
	}, 5*time.Second, 20*time.Millisecond, "metrics: got %+v (err %v); want %+v", got, err, want)
	assert.InDelta(t, want.HitRate, got.HitRate, 0.01, "hit rate (percent)")
}

// exercise runs every component once on l and checks the memory-side
// results that hold for any profile.
func exercise(t *testing.T, l *impl.Layer, flow string) {
	t.Helper()
	ctx := ctxT(t)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := l.Bus.Subscribe(sctx, flow, "")
	require.NoError(t, err)
	e := Event(flow, flow+"-e1", 1, time.Now().UTC())
	require.NoError(t, l.Bus.Publish(ctx, e))
	checkSame(t, Receive(t, ch, 5*time.Second), e)
	got, err := l.Bus.History(ctx, flow, 10, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []string{e.ID}, IDs(got), "history")

	require.NoError(t, l.Registry.Register(ctx, impl.Conn{ID: flow + "-c1", FlowID: flow, UserID: "u"}))
	require.NoError(t, l.Registry.Heartbeat(ctx, flow+"-c1"))
	ids, err := l.Registry.Lookup(ctx, flow)
	require.NoError(t, err)
	assert.Equal(t, []string{flow + "-c1"}, ids, "lookup")
	require.NoError(t, l.Registry.Unregister(ctx, flow+"-c1"))
	ids, err = l.Registry.Lookup(ctx, flow)
	require.NoError(t, err)
	assert.Empty(t, ids, "lookup after unregister")

	state := map[string]any{"status": "active"}
	require.NoError(t, l.Cache.Set(ctx, flow, state, "active", ""))
	ent, err := l.Cache.Get(ctx, flow)
	require.NoError(t, err)
	if ent.Hit {
		assert.Equal(t, state, ent.State, "cached state")
	}
	// Without Redis a layer may defer the invalidation (it cannot hold on
	// other instances yet); on this one it holds either way.
	if err := l.Cache.Invalidate(ctx, flow); !errors.Is(err, impl.ErrInvalidateDeferred) {
		require.NoError(t, err)
	}
	ent, err = l.Cache.Get(ctx, flow)
	require.NoError(t, err)
	assert.False(t, ent.Hit, "read after invalidate")
	_, err = l.Cache.Metrics(ctx, flow)
	require.NoError(t, err)
}

func (s *suite) featureFlags(t *testing.T) {
	for _, c := range []struct {
		name string
		off  func(*impl.Config)
		// use exercises only the component that is off.
		use func(t *testing.T, l *impl.Layer)
	}{
		{"event_bus_off", func(c *impl.Config) { c.EventBus = false }, func(t *testing.T, l *impl.Layer) {
			ctx := ctxT(t)
			e := Event("flow-ff", "ff-1", 1, time.Now().UTC())
			require.NoError(t, l.Bus.Publish(ctx, e))
			got, err := l.Bus.History(ctx, "flow-ff", 10, time.Time{})
			require.NoError(t, err)
			assert.Equal(t, []string{"ff-1"}, IDs(got), "history from memory")
		}},
		{"cache_off", func(c *impl.Config) { c.Cache = false }, func(t *testing.T, l *impl.Layer) {
			ctx := ctxT(t)
			require.NoError(t, l.Cache.Set(ctx, "flow-ff", map[string]any{"status": "active"}, "active", ""))
			_, err := l.Cache.Get(ctx, "flow-ff")
			require.NoError(t, err)
			require.NoError(t, l.Cache.Invalidate(ctx, "flow-ff"))
		}},
		{"sse_off", func(c *impl.Config) { c.SSE = false }, func(t *testing.T, l *impl.Layer) {
			ctx := ctxT(t)
			require.NoError(t, l.Registry.Register(ctx, impl.Conn{ID: "ff-c1", FlowID: "flow-ff", UserID: "u"}))
			ids, err := l.Registry.Lookup(ctx, "flow-ff")
			require.NoError(t, err)
			assert.Equal(t, []string{"ff-c1"}, ids, "lookup from memory")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config(s.url, "A")
			c.off(&cfg)
			l := s.newLayer(t, cfg)
			c.use(t, l)
			assert.Empty(t, Keys(t, s.rdb, cfg.KeyPrefix), "keys written to Redis by a component whose flag is off")
		})
	}
}

func (s *suite) redisDisabled(t *testing.T) {
	cfg := config(s.url, "A")
	cfg.Enabled = false
	l := s.newLayer(t, cfg)
	ctx := ctxT(t)
	assert.Equal(t, impl.ModeMemory, l.Manager.Mode(), "mode")
	h := l.Manager.Health(ctx)
	assert.Equal(t, "disabled", h.Status, "health status")
	assert.Equal(t, impl.ModeMemory, h.Mode, "health mode")
	assert.Equal(t, "unavailable", l.Manager.Info(ctx)["status"], "info status")
	exercise(t, l, "flow-off")
	assert.Empty(t, Keys(t, s.rdb, cfg.KeyPrefix), "keys written to Redis with REDIS_ENABLED=false")
}

func (s *suite) redisDownAtStart(t *testing.T) {
	port, err := target.FreePort()
	require.NoError(t, err)
	cfg := config(s.url, "A")
	cfg.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	cfg.ConnectTimeout = time.Second
	start := time.Now()
	l := s.newLayer(t, cfg)
	if took, limit := time.Since(start), cfg.ConnectTimeout+4*time.Second; took > limit {
		t.Errorf("construction with Redis down took %s; want at most %s", took, limit)
	}
	ctx := ctxT(t)
	assert.Equal(t, impl.ModeMemory, l.Manager.Mode(), "mode")
	h := l.Manager.Health(ctx)
	assert.Contains(t, []string{"unavailable", "unhealthy"}, h.Status, "health status")
	exercise(t, l, "flow-down")
}
