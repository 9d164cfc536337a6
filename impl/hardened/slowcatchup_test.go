package hardened

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
)

// TestCatchUpSlowLink: a client resumes 30 events back (about 15 KB of
// entries) on an instance whose link to Redis now carries 16 KB/s down
// (explore seed 14141, session_chain-abe67e71: a slicer, 8 KB/s). A page of
// the catch-up must arrive within one socket deadline; a first page of
// 500 entries never does, and every later try read as much again, so the
// client got nothing for as long as the link stayed slow. It must get the
// 30 events, in order, while the link is still slow.
func TestCatchUpSlowLink(t *testing.T) {
	ctx := bgCtx(t)
	proxy, b, rdb := proxiedBus(ctx, t, 50*time.Millisecond)
	var want []string
	for i := range 31 {
		e := conformance.Event("f", fmt.Sprintf("e%02d", i), i, time.Now().UTC())
		e.Payload = []byte(`{"pad":"` + strings.Repeat("x", 200) + `"}`)
		require.NoError(t, b.Publish(ctx, e))
		want = append(want, e.ID)
	}
	xs, err := rdb.XRangeN(ctx, b.k.events("f"), "-", "+", 1).Result()
	require.NoError(t, err)
	require.Len(t, xs, 1)

	require.NoError(t, proxy.AddToxic(ctx, chaos.Toxic{Name: "slow", Type: "bandwidth", Stream: "downstream",
		Attributes: map[string]any{"rate": 16}}))
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := b.Subscribe(sctx, "f", xs[0].ID)
	require.NoError(t, err)
	var got []string
	for range want[1:] {
		got = append(got, conformance.Receive(t, ch, 10*time.Second).ID)
	}
	assert.Equal(t, want[1:], got)
}

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
	// Probes a second apart: a probe's PING takes 7 of the 20 bytes a
	// connection gets under the cut, and a layer that lost its
	// connections to probes before the replay ran could not connect again
	// (its script loads are cut too): on a loaded machine the replay then
	// never ran.
	proxy, b, rdb := proxiedBus(ctx, t, time.Second)

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
	// The replay's script ran (by Redis's own count) and its reply was
	// cut: the next replay, once the cut is gone, must find the events.
	require.Eventually(t, func() bool { return conformance.Calls(t, rdb)["evalsha"] > 0 }, 5*time.Second, 10*time.Millisecond,
		"the replay's script ran")
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

// proxiedBus is proxied's layer (probing every probe) as its bus, with
// the proxy and a client of the server's own, not through the proxy.
func proxiedBus(ctx context.Context, t *testing.T, probe time.Duration) (*chaos.EmbeddedProxy, *Bus, *redis.Client) {
	t.Helper()
	p, proxy, l, _ := proxied(ctx, t, func(cfg *impl.Config) { cfg.ProbeInterval = probe })
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return proxy, l.Bus.(*Bus), rdb
}

// TestNextPage: after a read that missed its deadline the catch-up reads
// two entries, the least that moves it on; it grows back only on reads
// well within the deadline (explore seed 14141, session_chain-abe67e71: a
// quarter as many after each miss took four deadlines, about a second at
// 8.6 KB/s, to reach a page that fits, and reconnecting clients missed
// events acknowledged just before the link slowed).
func TestNextPage(t *testing.T) {
	const io = 250 * time.Millisecond
	missed := fmt.Errorf("read: %w", context.DeadlineExceeded)
	for _, tt := range []struct {
		name string
		n    int
		took time.Duration
		err  error
		want int
	}{
		{"missed the deadline", catchUpPage, io, missed, 2},
		{"missed again", 2, io, missed, 2},
		{"quick read", 2, io / 8, nil, 4},
		{"quick read at the cap", catchUpPage, io / 8, nil, catchUpPage},
		{"read within the deadline, not quick", 2, io / 2, nil, 2},
		{"failed otherwise", 8, time.Millisecond, redis.ErrClosed, 8},
	} {
		if got := nextPage(tt.n, tt.took, io, tt.err); got != tt.want {
			t.Errorf("%s: nextPage(%d, %s) = %d; want %d", tt.name, tt.n, tt.took, got, tt.want)
		}
	}
}
