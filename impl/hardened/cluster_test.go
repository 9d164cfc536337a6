package hardened_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/gonogo/harness/target"
)

// TestClusterConformance runs the conformance suite on a Redis Cluster of
// three primaries with a replica each (target.Cluster, go-redis's cluster
// client): every script's keys in one slot, Pub/Sub across nodes (a flow's
// PUBLISH reaches a subscriber connected to another node), the registry
// and the cache epoch lease on their own hash tags.
func TestClusterConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server and redis-cli")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := target.StartCluster(ctx, target.ClusterOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	conformance.RunCluster(t, c, conformance.Constructor(hardened.New))
	t.Run("cache_slot_split", func(t *testing.T) { cacheSlotSplit(ctx, t, c) })
}

// cacheSlotSplit: while a flow's slot is split between two primaries (its
// keys moved, the slot not yet handed over), a read of a state that is not
// cached (MGET of the missing state and the generation) gets TRYAGAIN
// from the cluster for as long as the split lasts. The cache falls back
// (a miss) instead of failing the call, and fills and reads work again
// once the slot is handed over.
func cacheSlotSplit(ctx context.Context, t *testing.T, c *target.Cluster) {
	cfg := conformance.ClusterConfig(c, "A")
	l := conformance.Constructor(hardened.New)(t, cfg)
	const flow = "split-flow"
	require.NoError(t, l.Cache.Invalidate(ctx, flow), "invalidate: the generation exists, the state does not")
	m, err := c.MigrateSlot(ctx, "{flow:"+flow+"}", 0)
	require.NoError(t, err)
	ent, err := l.Cache.Get(ctx, flow)
	require.NoError(t, err, "cache get while the slot is split")
	require.False(t, ent.Hit, "a hit from a flow never cached")
	require.NoError(t, l.Cache.Set(ctx, flow, map[string]any{"status": "active"}, "active", ent.Lease), "cache set while the slot is split")
	require.NoError(t, m.Finish(ctx))
	ent, err = l.Cache.Get(ctx, flow)
	require.NoError(t, err)
	require.NoError(t, l.Cache.Set(ctx, flow, map[string]any{"status": "active"}, "active", ent.Lease), "cache set after the handover")
	ent, err = l.Cache.Get(ctx, flow)
	require.NoError(t, err)
	require.True(t, ent.Hit, "cache get after the handover and a fill")
}
