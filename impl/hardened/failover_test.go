package hardened_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/gonogo/harness/target"
)

// TestResubscribeAfterSwitch: a subscriber keeps getting events after the
// sentinels move the primary, although nothing drops its Pub/Sub
// connection to the old one (a SENTINEL FAILOVER sent directly: the
// sentinels reconfigure the demoted primary, and drop its clients, only
// when they next poll it, up to 10 s later). An instance started once every
// sentinel names the new primary publishes there; the subscriber's layer
// must have reopened its subscription there. (Publishing from the instance
// that published before the switch made the test fail about 1 run in 8: its
// failover client had not heard of the switch yet and wrote to the old
// primary, still a primary with no replicas, so the event was acknowledged
// without durable acknowledgement and lost with the demotion, which is
// asynchronous replication's loss, not a missed resubscription.)
func TestResubscribeAfterSwitch(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := target.StartSentinel(ctx, target.SentinelOptions{})
	require.NoError(t, err)
	defer s.Close()
	cfg := func(id string) impl.Config {
		return impl.Config{URL: s.URL(), Enabled: true, EventBus: true, Cache: true, SSE: true, ServerID: id,
			KeyPrefix: "resub:", ProbeInterval: 50 * time.Millisecond, ConnectTimeout: time.Second,
			PublishBudget: 500 * time.Millisecond, AckReplicas: -1}.WithDefaults()
	}
	sub, err := hardened.New(ctx, cfg("sub"))
	require.NoError(t, err)
	defer sub.Close()
	pub, err := hardened.New(ctx, cfg("pub"))
	require.NoError(t, err)
	defer pub.Close()
	ch, err := sub.Bus.Subscribe(ctx, "f", "")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		require.NoError(t, pub.Bus.Publish(ctx, ev("f", 0)))
		select {
		case <-ch:
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	}, 5*time.Second, time.Millisecond, "subscribed before the switch")

	old, err := s.PrimaryAddr(ctx)
	require.NoError(t, err)
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinels()[0].Addr()})
	defer sc.Close()
	require.Eventually(t, func() bool { return sc.Failover(ctx, target.MasterName).Err() == nil },
		5*time.Second, 100*time.Millisecond, "SENTINEL FAILOVER accepted")
	require.Eventually(t, func() bool {
		for _, sn := range s.Sentinels() {
			c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr()})
			a, err := c.GetMasterAddrByName(ctx, target.MasterName).Result()
			c.Close()
			if err != nil || net.JoinHostPort(a[0], a[1]) == old {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "every sentinel names a new primary")
	switched := time.Now()
	late, err := hardened.New(ctx, cfg("late"))
	require.NoError(t, err)
	defer late.Close()

	want := ev("f", 1)
	require.NoError(t, late.Bus.Publish(ctx, want))
	// A layer that never resubscribes gets nothing in 6 s unless the
	// sentinels happen to repoint the demoted primary (they poll it up to
	// 10 s later), so the test keeps most of its edge.
	got := conformance.Receive(t, drain(ch, want.ID), 6*time.Second)
	require.Equal(t, want.ID, got.ID)
	t.Logf("delivered %s after the sentinels named the new primary", time.Since(switched).Round(time.Millisecond))
}

// drain forwards from ch only the event with ID id (events of the first
// step may still come).
func drain(ch <-chan impl.Event, id string) <-chan impl.Event {
	out := make(chan impl.Event, 1)
	go func() {
		for e := range ch {
			if e.ID == id {
				out <- e
				return
			}
		}
	}()
	return out
}
