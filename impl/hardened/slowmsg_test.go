package hardened

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/target"
)

// TestMemoryAfterSlowMessages: this layer's writes were acknowledged from
// Redis but their Pub/Sub messages have not come (a slow link: explore
// seed 5050, reordered-e9a58bf1, 8 B/s downstream under a quota), and the
// next publish falls back to memory while the breaker stays closed and the
// hub attached. The subscriber must get those writes first, then the
// memory event: a publisher's order (guarantee 3). It got the memory event
// first, and the writes when the breaker opened later.
func TestMemoryAfterSlowMessages(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := conformance.Config(p, "A")
	cfg.ProbeInterval = 50 * time.Millisecond
	l, err := New(ctx, cfg)
	require.NoError(t, err)
	defer l.Close()
	b := l.Bus.(*Bus)
	ch, err := b.Subscribe(ctx, "f", "")
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, conformance.Event("f", "e0", 0, time.Now().UTC())))
	require.Equal(t, "e0", conformance.Receive(t, ch, 5*time.Second).ID)
	require.True(t, b.hub.attached.Load(), "hub on its Pub/Sub connection")

	// e1 and e2 are in the stream and acknowledged to their publisher
	// (the sent ring has them) but no message for them came.
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer rdb.Close()
	for _, id := range []string{"e1", "e2"} {
		e := conformance.Event("f", id, 0, time.Now().UTC())
		js, err := appendEvent(nil, e)
		require.NoError(t, err)
		sid, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: b.k.events("f"), Values: []any{"event", string(js)}}).Result()
		require.NoError(t, err)
		b.sent.add(e, sid)
	}
	// e3 falls back to memory with the breaker closed.
	_, err = b.remember(pending{memEvent: memEvent{e: conformance.Event("f", "e3", 0, time.Now().UTC())}}, nil)
	require.NoError(t, err)
	var ids []string
	for range 3 {
		ids = append(ids, conformance.Receive(t, ch, 5*time.Second).ID)
	}
	assert.Equal(t, []string{"e1", "e2", "e3"}, ids)
}
