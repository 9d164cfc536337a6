package hardened

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/target"
	"github.com/stretchr/testify/require"
)

// TestReplayDedupe: an outbox event whose earlier attempt may have reached
// Redis is looked up in the stream before it is appended: found, it is not
// appended (nor published) again; not found, it is appended once. An event
// never sent is appended without a lookup.
func TestReplayDedupe(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := conformance.Config(p, "A")
	l, err := New(ctx, cfg)
	require.NoError(t, err)
	defer l.Close()
	b := l.Bus.(*Bus)

	// e1 reached Redis (the reply was lost, say); e2 and e3 did not.
	e1, e2, e3 := conformance.Event("f", "e1", 1, time.Now().UTC()), conformance.Event("f", "e2", 2, time.Now().UTC()), conformance.Event("f", "e3", 3, time.Now().UTC())
	require.NoError(t, b.Publish(ctx, e1))
	live, err := b.Subscribe(ctx, "f", "")
	require.NoError(t, err)
	attempt := time.Now().Add(-time.Second).UnixMilli()
	b.mu.Lock()
	b.outbox = append(b.outbox, pending{memEvent: memEvent{e: e1}, attempted: attempt}, pending{memEvent: memEvent{e: e2}, attempted: attempt}, pending{memEvent: memEvent{e: e3}})
	b.pending["f"] += 3
	b.mu.Unlock()
	b.kick()
	require.Eventually(t, func() bool { return b.Outbox().Pending == 0 }, 10*time.Second, 10*time.Millisecond, "outbox drained")

	evs, err := b.History(ctx, "f", 100, time.Time{})
	require.NoError(t, err)
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	require.Equal(t, []string{"e1", "e2", "e3"}, ids, "stream after the replay")
	for _, want := range []string{"e2", "e3"} {
		select {
		case e := <-live:
			require.Equal(t, want, e.ID, "live delivery after the replay")
		case <-ctx.Done():
			t.Fatalf("no live delivery of %s", want)
		}
	}
	select {
	case e := <-live:
		t.Fatalf("unexpected live delivery of %s (a duplicate?)", e.ID)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestHistoryOutboxOverlap: an event both in the stream and still in the
// outbox (its write landed but its reply did not) is shown once by History,
// the stream's copy. The outbox copy, which has no stream cursor, used to
// be shown as well.
func TestHistoryOutboxOverlap(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := New(ctx, conformance.Config(p, "A"))
	require.NoError(t, err)
	defer l.Close()
	b := l.Bus.(*Bus)
	for i := range 20 {
		e := conformance.Event("f", fmt.Sprintf("e%d", i), i, time.Now().UTC())
		require.NoError(t, b.Publish(ctx, e))
		b.mu.Lock()
		b.outbox = append(b.outbox, pending{memEvent: memEvent{e: e}, attempted: time.Now().UnixMilli()})
		b.pending["f"]++
		b.mu.Unlock()
		evs, err := b.History(ctx, "f", 100, time.Time{})
		require.NoError(t, err)
		n := 0
		for _, got := range evs {
			if got.ID == e.ID {
				n++
			}
		}
		require.Equal(t, 1, n, "copies of %s in history while it is in the stream and the outbox", e.ID)
	}
}
