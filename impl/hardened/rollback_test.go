package hardened_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/gonogo/harness/target"
)

// TestCloseWritesOutbox: events acknowledged from memory are in the outbox
// at Close. With Redis back (the probe has not noticed yet) Close writes
// them; with Redis still down it says how many are lost.
func TestCloseWritesOutbox(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	ctx := bg(t)
	require.NoError(t, p.Stop(ctx))
	never := func(c *impl.Config) { c.ProbeInterval = time.Hour }
	a, _, cfg := layer(t, p, "A", never)
	down, _, _ := layer(t, p, "down", shared(cfg.KeyPrefix, never))
	var want []string
	for i := 1; i <= 3; i++ {
		require.NoError(t, a.Bus.Publish(ctx, ev("f", i)))
		require.NoError(t, down.Bus.Publish(ctx, ev("g", i)))
		want = append(want, ev("f", i).ID)
	}
	require.Equal(t, 3, a.Bus.(*hardened.Bus).Outbox().Pending)

	err := down.Close()
	assert.ErrorIs(t, err, hardened.ErrOutboxLost, "Close with Redis down")
	assert.ErrorContains(t, err, "3 acknowledged events lost")
	var unsaved *impl.UnsavedError
	if assert.ErrorAs(t, err, &unsaved) {
		assert.Equal(t, 3, unsaved.Lost, "lost count")
	}

	require.NoError(t, p.Restart(ctx))
	require.Equal(t, "memory", a.Manager.Mode(), "the probe has not run")
	require.NoError(t, a.Close(), "Close with Redis back")
	b, _, _ := layer(t, p, "B", shared(cfg.KeyPrefix, nil))
	got, err := b.Bus.History(ctx, "f", 10, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, want, conformance.IDs(got), "events acknowledged from memory, written by Close")
}

// TestRollbackCache: the tracker's rollback restarts every instance with
// REDIS_ENABLED=false, writes the database meanwhile (invalidating memory
// caches only), then restarts them with Redis. The state cached before must
// not be served after; but an instance restarting while another keeps
// serving keeps the cache warm.
func TestRollbackCache(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	ctx := bg(t)
	cache := func(l *impl.Layer, v string) {
		t.Helper()
		miss, err := l.Cache.Get(ctx, "f")
		require.NoError(t, err)
		require.False(t, miss.Hit)
		require.NoError(t, l.Cache.Set(ctx, "f", map[string]any{"v": v}, "active", miss.Lease))
	}
	read := func(l *impl.Layer) impl.Entry {
		t.Helper()
		e, err := l.Cache.Get(ctx, "f")
		require.NoError(t, err)
		return e
	}
	a, _, cfg := layer(t, p, "A", nil)
	cache(a, "v1")
	require.True(t, read(a).Hit)

	require.NoError(t, a.Close())
	rolled, err := hardened.New(context.Background(), func() impl.Config { c := cfg; c.Enabled = false; return c }())
	require.NoError(t, err)
	require.NoError(t, rolled.Cache.Invalidate(ctx, "f"), "database write while rolled back")
	require.NoError(t, rolled.Close())

	again, _, _ := layer(t, p, "A", shared(cfg.KeyPrefix, nil))
	assert.False(t, read(again).Hit, "state cached before the rollback, read after it")
	cache(again, "v2")
	assert.Equal(t, map[string]any{"v": "v2"}, read(again).State)

	// B restarts while A serves: the epoch stays, so does the cache.
	b, _, _ := layer(t, p, "B", shared(cfg.KeyPrefix, nil))
	assert.Equal(t, map[string]any{"v": "v2"}, read(b).State, "B joins a live epoch")
	require.NoError(t, b.Close())
	b, _, _ = layer(t, p, "B", shared(cfg.KeyPrefix, nil))
	assert.Equal(t, map[string]any{"v": "v2"}, read(b).State, "B restarted while A served")
}
