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
