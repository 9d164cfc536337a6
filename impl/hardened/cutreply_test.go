package hardened

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
)

// TestReplayReplyCut: the replay's script runs and writes its events, but
// the connection closes in the middle of the reply (a proxy that closes
// every connection after a few bytes down: explore seed 13131,
// duplicated-38222286, limit_data 1024 B with a slicer and 256 B/s, 17
// events stored 21 times each). go-redis then hands back a typed nil
// array with the error, which the replay took for a reply read whole that
// wrote nothing: the events stayed as first attempts, and every replay
// wrote them again. Each event must be stored once.
func TestReplayReplyCut(t *testing.T) {
	ctx := bgCtx(t)
	p, proxy, l, _ := proxied(ctx, t, func(cfg *impl.Config) { cfg.ProbeInterval = 50 * time.Millisecond })
	b := l.Bus.(*Bus)
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer rdb.Close()

	// Every connection, existing or new, closes after 20 bytes down: a
	// PING's reply gets through, a replay's reply of five entry IDs not.
	require.NoError(t, proxy.AddToxic(ctx, chaos.Toxic{Name: "cut", Type: "limit_data", Attributes: map[string]any{"bytes": 20}}))
	var want []string
	b.mu.Lock()
	for i := range 5 {
		ev := conformance.Event("f", fmt.Sprintf("e%d", i), i, time.Now().UTC())
		b.outbox = append(b.outbox, pending{memEvent: memEvent{e: ev}})
		b.pending["f"]++
		want = append(want, ev.ID)
	}
	b.queued.Store(int64(len(b.outbox)))
	b.mu.Unlock()
	b.kick()
	// Let the replay try a few times against the cut replies.
	require.Eventually(t, func() bool {
		n, err := rdb.XLen(ctx, b.k.events("f")).Result()
		return err == nil && n > 0
	}, 5*time.Second, 10*time.Millisecond, "a replay's script ran")
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, proxy.RemoveToxic(ctx, "cut"))

	require.Eventually(t, func() bool { return b.Outbox().Pending == 0 }, 10*time.Second, 10*time.Millisecond, "outbox drained")
	xs, err := rdb.XRange(ctx, b.k.events("f"), "-", "+").Result()
	require.NoError(t, err)
	var got []string
	for _, x := range xs {
		got = append(got, parseEntry("f", x).e.ID)
	}
	assert.Equal(t, want, got, "the stream: each event once")
}
