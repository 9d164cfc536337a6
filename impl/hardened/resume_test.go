package hardened_test

import (
	"context"
	"testing"
	"time"

	"github.com/gonogo/harness/chaos/target"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestResumeAcrossModes (issue 12, item 1): a client saw events acknowledged
// from memory during an outage; after Redis is back and the outboxes are
// replayed it resumes, on the instance that issued its cursor and on the
// other one, with the cursor of each event it saw. Every resume must give
// exactly the events after that cursor in the order the client saw them,
// once, and nothing before it. Both instances publish during the outage,
// so that the replayed stream interleaves their events.
func TestResumeAcrossModes(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{AOF: true})
	a, _, cfg := layer(t, p, "A", nil)
	b, _, _ := layer(t, p, "B", shared(cfg.KeyPrefix, nil))
	checkResumeAcrossModes(t, p, a, b)
}

// checkResumeAcrossModes is TestResumeAcrossModes on two layers sharing p's
// keys (the mutant test runs it on a broken layer).
func checkResumeAcrossModes(t *testing.T, p *target.Process, a, b *impl.Layer) {
	ctx := bg(t)
	live, err := a.Bus.Subscribe(ctx, "f", "")
	require.NoError(t, err)
	require.NoError(t, a.Bus.Publish(ctx, ev("f", 0)))
	seen := []impl.Event{conformance.Receive(t, live, 5*time.Second)}

	require.NoError(t, p.Stop(ctx))
	waitMode(t, a, "memory", 5*time.Second)
	waitMode(t, b, "memory", 5*time.Second)
	for i := 1; i <= 10; i++ {
		require.NoError(t, a.Bus.Publish(ctx, ev("f", i)))
		require.NoError(t, b.Bus.Publish(ctx, ev("f", 100+i)))
	}
	// Live on A during the outage: A's own events, from memory.
	seen = append(seen, receive(t, live, 10)...)

	require.NoError(t, p.Restart(ctx))
	waitMode(t, a, "redis", 10*time.Second)
	waitMode(t, b, "redis", 10*time.Second)
	for _, l := range []*impl.Layer{a, b} {
		require.Eventually(t, func() bool { return l.Bus.(*hardened.Bus).Outbox().Pending == 0 }, 10*time.Second, 10*time.Millisecond, "outbox replayed")
	}
	for i := 11; i <= 13; i++ {
		require.NoError(t, a.Bus.Publish(ctx, ev("f", i)))
	}
	// After the recovery A's subscriber catches up with B's events and
	// gets the new ones: 1 + 10 + 10 + 3 events in all.
	seen = append(seen, receive(t, live, 13)...)
	noMore(t, live, 200*time.Millisecond)
	ids := conformance.IDs(seen)
	require.ElementsMatch(t, allIDs(), ids, "the live subscriber: every event once")

	for i, e := range seen[:len(seen)-1] {
		want := ids[i+1:]
		for _, c := range []struct {
			name string
			l    *impl.Layer
		}{{"same instance", a}, {"other instance", b}} {
			rctx, cancel := context.WithCancel(ctx)
			ch, err := c.l.Bus.Subscribe(rctx, "f", e.Cursor)
			require.NoError(t, err)
			got := receive(t, ch, len(want))
			select {
			case x := <-ch:
				t.Errorf("resume on the %s after %s (event %d, %s): extra delivery %s", c.name, e.Cursor, i, e.ID, x.ID)
			case <-time.After(50 * time.Millisecond):
			}
			cancel()
			if !samePerPublisher(t, want, conformance.IDs(got), "resume on the %s after %s (event %d, %s)", c.name, e.Cursor, i, e.ID) {
				return
			}
		}
	}
}

// samePerPublisher asserts that got holds the events of want, once each,
// and each publisher's (instance A's f-0nn, B's f-1nn) in want's order: the
// order of two publishers' events in the stream is the order their replays
// reached Redis, which a client may see differently on another instance.
func samePerPublisher(t *testing.T, want, got []string, msgAndArgs ...any) bool {
	t.Helper()
	if !assert.ElementsMatch(t, want, got, msgAndArgs...) {
		return false
	}
	of := func(ids []string, pub byte) []string {
		var out []string
		for _, id := range ids {
			if id[2] == pub {
				out = append(out, id)
			}
		}
		return out
	}
	return assert.Equal(t, of(want, '0'), of(got, '0'), msgAndArgs...) &&
		assert.Equal(t, of(want, '1'), of(got, '1'), msgAndArgs...)
}

// allIDs is every event checkResumeAcrossModes publishes.
func allIDs() []string {
	var out []string
	for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110} {
		out = append(out, ev("f", i).ID)
	}
	return out
}
