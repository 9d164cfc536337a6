package hardened_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gonogo/harness/chaos/target"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
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
				assert.NoError(t, l.Cache.Set(ctx, flow, map[string]any{"n": j}, "active", miss.Lease))
			})
		}
		close(gate)
		wg.Wait()
		epoch, err := rdb.Get(ctx, cfg.KeyPrefix+"cache:epoch").Result()
		require.NoError(t, err, "start %d: epoch key", i)
		for _, k := range conformance.Keys(t, rdb, cfg.KeyPrefix) {
			if _, e, ok := strings.Cut(k, "}:state:"); ok {
				assert.Equal(t, epoch, e, "start %d: %s filled outside the epoch Redis names", i, k)
			}
		}
		require.NoError(t, l.Close())
	}
}
