package hardened_test

import (
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/target"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOwnWritesFirst: a client resuming while Redis is unreachable, with
// a cursor from before this layer's last writes to Redis, gets those
// writes first and then what the layer acknowledged from memory, in
// acknowledgement order. (They used to come only from the catch-up after
// the outage, behind the memory events: out of order, and missing for a
// client that moved on with a memory cursor.)
func TestOwnWritesFirst(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	l, _, _ := layer(t, p, "A", func(c *impl.Config) { c.PublishBudget = time.Second })
	ctx := bg(t)
	live, err := l.Bus.Subscribe(ctx, "f", "")
	require.NoError(t, err)
	require.NoError(t, l.Bus.Publish(ctx, ev("f", 0)))
	cursor := receive(t, live, 1)[0].Cursor
	for i := 1; i <= 3; i++ {
		require.NoError(t, l.Bus.Publish(ctx, ev("f", i)))
	}
	receive(t, live, 3)
	require.NoError(t, p.Kill(ctx))
	waitMode(t, l, "memory", 10*time.Second)
	for i := 4; i <= 5; i++ {
		require.NoError(t, l.Bus.Publish(ctx, ev("f", i)))
	}
	resumed, err := l.Bus.Subscribe(ctx, "f", cursor)
	require.NoError(t, err)
	var ids []string
	for _, e := range receive(t, resumed, 5) {
		ids = append(ids, e.ID)
	}
	assert.Equal(t, []string{"f-001", "f-002", "f-003", "f-004", "f-005"}, ids, "resumed during the outage after f-000")
	noMore(t, resumed, 200*time.Millisecond)
}
