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
}
