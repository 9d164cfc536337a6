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
	p, proxy, l, _ := proxied(ctx, t, func(cfg *impl.Config) { cfg.ProbeInterval = 50 * time.Millisecond })
	b := l.Bus.(*Bus)
	var want []string
	for i := range 31 {
		e := conformance.Event("f", fmt.Sprintf("e%02d", i), i, time.Now().UTC())
		e.Payload = []byte(`{"pad":"` + strings.Repeat("x", 200) + `"}`)
		require.NoError(t, b.Publish(ctx, e))
		want = append(want, e.ID)
	}
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer rdb.Close()
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
