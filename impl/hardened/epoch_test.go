package hardened_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/gonogo/harness/target"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrentFirstUse: when several cache calls are an instance's first
// cache use at the same moment, they join one epoch, the one Redis names.
// Two joins racing used to create two epochs, one per join, and the
// instance could keep filling the one Redis no longer named; a later
// renewal then switched it to the other, whose states had missed the
// invalidations made in between: stale reads with no fault at all. Every
// state a fill stores must sit under the epoch Redis holds.
func TestConcurrentFirstUse(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	rdb := conformance.Client(t, p)
	const starts, callers = 40, 8
	for i := range starts {
		l, _, cfg := layer(t, p, "A", func(c *impl.Config) { c.KeyPrefix = fmt.Sprintf("first%d:", i) })
		ctx := bg(t)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for j := range callers {
			wg.Go(func() {
				flow := fmt.Sprintf("f%d", j)
				<-gate
				miss, err := l.Cache.Get(ctx, flow)
				if !assert.NoError(t, err) || miss.Hit {
					return
				}
				// A miss served before the cache is ready carries a lease
				// that no fill can use: refusing it is the right answer.
				if err := l.Cache.Set(ctx, flow, map[string]any{"n": j}, "active", miss.Lease); !errors.Is(err, hardened.ErrFillRefused) {
					assert.NoError(t, err)
				}
			})
		}
		close(gate)
		wg.Wait()
		epoch, err := rdb.Get(ctx, cfg.KeyPrefix+"{cache}:epoch").Result()
		require.NoError(t, err, "start %d: epoch key", i)
		for _, k := range conformance.Keys(t, rdb, cfg.KeyPrefix) {
			if _, e, ok := strings.Cut(k, "}:state:"); ok {
				assert.Equal(t, epoch, e, "start %d: %s filled outside the epoch Redis names", i, k)
			}
		}
		require.NoError(t, l.Close())
	}
}

// TestInvalidateDeferred: with Redis unreachable an invalidation can only
// be queued, so it is not acknowledged: another instance may serve the
// state it drops until the replay. That holds for an instance that has
// not learned of the others yet: A joined first, B after it, and at the
// production health interval A renews (and would learn of B) only every
// 30 s. (Found from outside: two `harness serve` instances, a GET on each,
// Redis stopped, DELETE /flows/f1/state on the first answered 204.)
func TestInvalidateDeferred(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	budget := func(c *impl.Config) { c.CallBudget = time.Second }
	a, _, cfg := layer(t, p, "A", budget)
	b, _, _ := layer(t, p, "B", shared(cfg.KeyPrefix, budget))
	ctx := bg(t)
	for _, l := range []*impl.Layer{a, b} {
		_, err := l.Cache.Get(ctx, "f")
		require.NoError(t, err)
	}
	require.NoError(t, p.Kill(ctx))
	assert.ErrorIs(t, a.Cache.Invalidate(ctx, "f"), hardened.ErrInvalidateDeferred, "first to join, Redis down")
	assert.ErrorIs(t, b.Cache.Invalidate(ctx, "g"), hardened.ErrInvalidateDeferred, "second to join, Redis down")
}

// TestInvalidateAcrossEpochs: a failover can take the cache's membership
// and epoch keys with it (asynchronous replication); the next instance to
// renew finds no live member and starts a fresh epoch, while another
// instance serves the old one until its own renewal. An invalidation made
// in the new epoch must still keep the old epoch's state from being served
// (explore seed 5050, stale_read-7b643316: six reads of version 46 for
// 70 ms after version 47's invalidation completed, after a SENTINEL
// FAILOVER): a state is served only while the flow's generation is the
// one it was filled at.
func TestInvalidateAcrossEpochs(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	rdb := conformance.Client(t, p)
	ctx := bg(t)
	a, _, cfg := layer(t, p, "A", func(c *impl.Config) { c.HealthInterval = 100 * time.Millisecond })
	b, _, _ := layer(t, p, "B", shared(cfg.KeyPrefix, func(c *impl.Config) { c.HealthInterval = 30 * time.Second }))
	miss, err := b.Cache.Get(ctx, "f")
	require.NoError(t, err)
	require.False(t, miss.Hit)
	require.NoError(t, b.Cache.Set(ctx, "f", map[string]any{"v": 1}, "active", miss.Lease))
	got, err := a.Cache.Get(ctx, "f")
	require.NoError(t, err)
	require.True(t, got.Hit, "A serves B's fill: one epoch")
	old, err := rdb.Get(ctx, cfg.KeyPrefix+"{cache}:epoch").Result()
	require.NoError(t, err)
	require.NoError(t, rdb.Del(ctx, cfg.KeyPrefix+"{cache}:members", cfg.KeyPrefix+"{cache}:epoch").Err())
	require.Eventually(t, func() bool {
		a.Cache.Get(ctx, "f") // keeps A's cache in use: it renews
		e, err := rdb.Get(ctx, cfg.KeyPrefix+"{cache}:epoch").Result()
		return err == nil && e != old
	}, 10*time.Second, 20*time.Millisecond, "A starts a fresh epoch")
	require.NoError(t, a.Cache.Invalidate(ctx, "f"))
	got, err = b.Cache.Get(ctx, "f")
	require.NoError(t, err)
	assert.False(t, got.Hit, "B, still in the old epoch, served the state invalidated in the new one: %v", got.State)
}
