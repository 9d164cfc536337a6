package hardened

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/target"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBreakerEvidence: failed calls open the breaker only on strong
// evidence. Redis answers PING throughout, so only the persisted-failures
// rule can open it.
func TestBreakerEvidence(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	slow := context.DeadlineExceeded
	for _, c := range []struct {
		name   string
		window time.Duration
		// calls: false is a failed call, true a successful one.
		calls []bool
		want  string
	}{
		{"one failure", time.Hour, []bool{false}, "redis"},
		{"a burst of failures within the window", time.Hour, []bool{false, false, false, false, false, false, false, false}, "redis"},
		{"failures past the window, too few", 0, []bool{false, false, false, false}, "redis"},
		{"a success ends the streak", 0, []bool{false, false, false, true, false, false, false}, "redis"},
		{"failures persisting past the window", 0, []bool{false, false, true, false, false, false, false, false}, "memory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := conformance.Config(p, "A").WithDefaults()
			m := newManager(cfg)
			require.NoError(t, m.start(context.Background()))
			t.Cleanup(func() { m.close() })
			m.window = c.window
			rdb, _ := m.client()
			require.NotNil(t, rdb, "connected")
			for _, ok := range c.calls {
				if ok {
					m.succeeded()
				} else {
					m.failed(rdb, slow)
				}
			}
			// Wait for the verification the first failure started.
			require.Eventually(t, func() bool {
				m.mu.Lock()
				defer m.mu.Unlock()
				return !m.verifying
			}, 5*time.Second, time.Millisecond)
			assert.Equal(t, c.want, m.Mode(), "mode after %v", c.calls)
		})
	}
}

// TestVerifyFails: a failed call while Redis is frozen opens the breaker
// once the verification PINGs time out, and its error says why.
func TestVerifyFails(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	m := newManager(conformance.Config(p, "A").WithDefaults())
	require.NoError(t, m.start(context.Background()))
	t.Cleanup(func() { m.close() })
	rdb, _ := m.client()
	require.NotNil(t, rdb, "connected")
	ctx := context.Background()
	require.NoError(t, p.Pause(ctx))
	t.Cleanup(func() { p.Resume(context.Background()) })
	start := time.Now()
	m.failed(rdb, errors.New("i/o timeout"))
	require.Eventually(t, func() bool { return m.Mode() == "memory" }, 5*time.Second, time.Millisecond)
	took := time.Since(start)
	t.Logf("breaker open %s after the failed call (verification timeout %s, twice)", took, m.io)
	assert.GreaterOrEqual(t, took, 2*m.io, "opened before both PINGs timed out")
	m.mu.Lock()
	defer m.mu.Unlock()
	assert.Contains(t, m.lastErr, "verification", "last error")
}

// TestQueuedInvalidation: an invalidation that failed while the breaker
// stayed closed (queued, never run by Redis) keeps its flow from being
// served or filled from Redis until the replay ran it; other flows are
// served meanwhile.
func TestQueuedInvalidation(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	cfg := conformance.Config(p, "A")
	cfg.ProbeInterval = time.Hour // the replay runs only when woken
	cfg = cfg.WithDefaults()
	m := newManager(cfg)
	c := newCache(m, keys{prefix: cfg.KeyPrefix})
	require.NoError(t, m.start(context.Background()))
	t.Cleanup(func() { m.close() })
	ctx := context.Background()
	for _, f := range []string{"f", "g"} {
		require.NoError(t, c.Set(ctx, f, map[string]any{"v": "old"}, "active", ""))
	}
	c.mu.Lock()
	c.seq++
	c.pending["f"] = c.seq
	c.mu.Unlock()

	got, err := c.Get(ctx, "f")
	require.NoError(t, err)
	assert.False(t, got.Hit, "flow with a queued invalidation served from Redis: %v", got.State)
	require.NoError(t, c.Set(ctx, "f", map[string]any{"v": "fill"}, "active", ""), "fill while queued is dropped")
	other, err := c.Get(ctx, "g")
	require.NoError(t, err)
	assert.True(t, other.Hit, "other flow served")

	c.wake <- struct{}{}
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.pending) == 0
	}, 5*time.Second, time.Millisecond, "queued invalidation replayed")
	got, err = c.Get(ctx, "f")
	require.NoError(t, err)
	require.False(t, got.Hit, "state read after the replayed invalidation: %v", got.State)
	assert.Equal(t, "1", got.Lease, "generation after the replayed invalidation")
	require.NoError(t, c.Set(ctx, "f", map[string]any{"v": "new"}, "active", got.Lease))
	got, err = c.Get(ctx, "f")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"v": "new"}, got.State)
}

// TestResync: what the registry writes back to Redis (on reconnect, or for
// a connection whose heartbeat failed) carries the expiry of the last
// heartbeat, not of the resync, and never lowers an expiry.
func TestResync(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	cfg := conformance.Config(p, "A")
	cfg.ProbeInterval = time.Hour // the resync loop runs only when woken
	cfg = cfg.WithDefaults()
	m := newManager(cfg)
	r := newRegistry(m, keys{prefix: cfg.KeyPrefix})
	require.NoError(t, m.start(context.Background()))
	t.Cleanup(func() { m.close() })
	ctx := context.Background()
	rdb := conformance.Client(t, p)
	require.NoError(t, r.Register(ctx, impl.Conn{ID: "c1", FlowID: "f"}))
	score := func() int64 {
		v, err := rdb.ZScore(ctx, r.k.conns("f"), "c1").Result()
		require.NoError(t, err)
		return int64(v)
	}
	heartbeatAt := func(d time.Duration) time.Time {
		r.mu.Lock()
		defer r.mu.Unlock()
		lc := r.local["c1"]
		lc.last = lc.last.Add(d)
		return lc.last
	}

	// Redis lost the connection; the last heartbeat was 2s ago.
	require.NoError(t, rdb.ZRem(ctx, r.k.conns("f"), "c1").Err())
	last := heartbeatAt(-2 * time.Second)
	r.resync(true)
	assert.Equal(t, r.expiry(last), score(), "expiry after a reconnect: the last heartbeat's")

	// A later heartbeat whose write failed is written back.
	last = heartbeatAt(time.Second)
	r.mu.Lock()
	r.dirty["c1"] = struct{}{}
	r.mu.Unlock()
	r.kick()
	require.Eventually(t, func() bool { return score() == r.expiry(last) }, 5*time.Second, time.Millisecond,
		"expiry after the failed heartbeat's resync")

	// An older one does not lower it.
	heartbeatAt(-3 * time.Second)
	r.resync(true)
	assert.Equal(t, r.expiry(last), score(), "expiry after writing an older heartbeat")
}

// TestExpiryRoundsUp: a connection is visible to a lookup made any time
// before its TTL has fully run, to the nanosecond.
func TestExpiryRoundsUp(t *testing.T) {
	r := &Registry{m: &manager{cfg: impl.Config{RegistryTTL: time.Second}}}
	for _, c := range []struct {
		at   time.Time
		want int64
	}{
		{time.UnixMilli(1000), 2000},
		{time.UnixMilli(1000).Add(time.Nanosecond), 2001},
		{time.UnixMilli(1000).Add(999999 * time.Nanosecond), 2001},
	} {
		if got := r.expiry(c.at); got != c.want {
			t.Errorf("expiry(%d ns): got %d; want %d", c.at.UnixNano(), got, c.want)
		}
	}
}

// TestTimeout: only a deadline that passed earns a verification its second
// PING; a refused, reset or answered call does not.
func TestTimeout(t *testing.T) {
	_, dialErr := net.DialTimeout("tcp", "127.0.0.1:1", time.Second)
	require.Error(t, dialErr, "dial a closed port")
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"context deadline", fmt.Errorf("publish: %w", context.DeadlineExceeded), true},
		{"pool timeout", redis.ErrPoolTimeout, true},
		{"i/o timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{"connection refused", dialErr, false},
		{"closed client", redis.ErrClosed, false},
		{"server error", errors.New("ERR max requests limit exceeded"), false},
	} {
		if got := timeout(c.err); got != c.want {
			t.Errorf("%s (%v): got %v; want %v", c.name, c.err, got, c.want)
		}
	}
}
