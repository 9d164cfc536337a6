package hardened_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/gonogo/harness/target"
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
	assert.Empty(t, checkResumeAcrossModes(t, p, a, b))
}

// streamOnly is a mutant bus: it resumes after the stream ID of a cursor
// and ignores the memory events it names (what hardened did when a memory
// cursor was only a time in the stream).
type streamOnly struct{ impl.Bus }

func (s streamOnly) Subscribe(ctx context.Context, flow, after string) (<-chan impl.Event, error) {
	sid, _, _ := strings.Cut(after, ".")
	return s.Bus.Subscribe(ctx, flow, sid)
}

func (s streamOnly) Outbox() hardened.OutboxStats { return s.Bus.(*hardened.Bus).Outbox() }

// TestResumeAcrossModesMutant: the check catches a layer that resumes
// after a cursor's stream position only.
func TestResumeAcrossModesMutant(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{AOF: true})
	a, _, cfg := layer(t, p, "A", nil)
	b, _, _ := layer(t, p, "B", shared(cfg.KeyPrefix, nil))
	ma, mb := *a, *b
	ma.Bus, mb.Bus = streamOnly{a.Bus}, streamOnly{b.Bus}
	problems := checkResumeAcrossModes(t, p, &ma, &mb)
	if assert.NotEmpty(t, problems, "the mutant must fail the check") {
		t.Logf("caught: %d resumes wrong, e.g. %s", len(problems), problems[0])
	}
}

// checkResumeAcrossModes is TestResumeAcrossModes on two layers sharing p's
// keys. It returns what went wrong with the resumes (the mutant test runs
// it on a broken layer).
func checkResumeAcrossModes(t *testing.T, p *target.Process, a, b *impl.Layer) []string {
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
		ob := l.Bus.(interface{ Outbox() hardened.OutboxStats })
		require.Eventually(t, func() bool { return ob.Outbox().Pending == 0 }, 10*time.Second, 10*time.Millisecond, "outbox replayed")
	}
	for i := 11; i <= 13; i++ {
		require.NoError(t, a.Bus.Publish(ctx, ev("f", i)))
	}
	// After the recovery A's subscriber catches up with B's events and
	// gets the new ones: 1 + 10 + 10 + 3 events in all.
	seen = append(seen, receive(t, live, 13)...)
	conformance.NoMore(t, live, 200*time.Millisecond)
	ids := conformance.IDs(seen)
	require.ElementsMatch(t, allIDs(), ids, "the live subscriber: every event once")

	var problems []string
	for i, e := range seen[:len(seen)-1] {
		want := ids[i+1:]
		for _, c := range []struct {
			name string
			l    *impl.Layer
		}{{"same instance", a}, {"other instance", b}} {
			rctx, cancel := context.WithCancel(ctx)
			ch, err := c.l.Bus.Subscribe(rctx, "f", e.Cursor)
			require.NoError(t, err)
			got := collect(ch, len(want))
			cancel()
			if msg := samePerPublisher(want, got); msg != "" {
				problems = append(problems, fmt.Sprintf("resume on the %s after %s (event %d, %s): %s", c.name, e.Cursor, i, e.ID, msg))
			}
		}
	}
	return problems
}

// collect reads n events from ch (waiting up to 5 s for each), then any
// extra one that comes within 100 ms.
func collect(ch <-chan impl.Event, n int) []string {
	var out []string
	for {
		d := 5 * time.Second
		if len(out) >= n {
			d = 100 * time.Millisecond
		}
		select {
		case e, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, e.ID)
			if len(out) > n {
				return out
			}
		case <-time.After(d):
			return out
		}
	}
}

// samePerPublisher says how got differs from want ("" if it does not):
// got must hold the events of want, once each, and each publisher's
// (instance A's f-0nn, B's f-1nn) in want's order. The order of two
// publishers' events in the stream is the order their replays reached
// Redis, which a client may see differently on another instance.
func samePerPublisher(want, got []string) string {
	of := func(ids []string, pub byte) []string {
		var out []string
		for _, id := range ids {
			if id[2] == pub {
				out = append(out, id)
			}
		}
		return out
	}
	if !slices.Equal(of(want, '0'), of(got, '0')) || !slices.Equal(of(want, '1'), of(got, '1')) {
		return fmt.Sprintf("got %v; want %v (each publisher's events once, in order)", got, want)
	}
	return ""
}

// allIDs is every event checkResumeAcrossModes publishes.
func allIDs() []string {
	var out []string
	for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110} {
		out = append(out, ev("f", i).ID)
	}
	return out
}

// resumePair starts a Redis with AOF and layers A and B on it, and returns
// where flow "f" stands on A before anything was published.
func resumePair(t *testing.T) (p *target.Process, a, b *impl.Layer, start string) {
	t.Helper()
	p = conformance.StartRedis(t, target.ProcessOptions{AOF: true})
	a, _, cfg := layer(t, p, "A", nil)
	b, _, _ = layer(t, p, "B", shared(cfg.KeyPrefix, nil))
	start, err := a.Bus.(impl.Positioner).Position(bg(t), "f")
	require.NoError(t, err)
	return p, a, b, start
}

// TestResumeGapTravels: a client resumes on an instance that cannot reach
// Redis. That instance hands it its own recent writes first (they precede
// whatever it acknowledges from memory next), ahead of another instance's
// entry between the cursor and them, which it cannot read. When the
// client moves again, with the cursor it got, the next instance must
// deliver that skipped entry, and not the own writes again. (explore's
// session_chain-a3669b67: the cursor named the position after the own
// writes, so the skipped entries were never delivered.)
func TestResumeGapTravels(t *testing.T) {
	p, a, b, start := resumePair(t)
	ctx := bg(t)
	require.NoError(t, b.Bus.Publish(ctx, ev("f", 1))) // B's, between the cursor and A's
	require.NoError(t, a.Bus.Publish(ctx, ev("f", 2)))
	require.NoError(t, a.Bus.Publish(ctx, ev("f", 3)))

	require.NoError(t, p.Stop(ctx))
	waitMode(t, a, "memory", 5*time.Second)
	sctx, cancel := context.WithCancel(ctx)
	ch, err := a.Bus.Subscribe(sctx, "f", start)
	require.NoError(t, err)
	got := receive(t, ch, 2) // A's own writes, from its memory of them
	cancel()
	assert.Equal(t, []string{"f-002", "f-003"}, conformance.IDs(got), "on A without Redis")
	cursor := got[len(got)-1].Cursor

	require.NoError(t, p.Restart(ctx))
	waitMode(t, b, "redis", 10*time.Second)
	ch, err = b.Bus.Subscribe(ctx, "f", cursor)
	require.NoError(t, err)
	require.NoError(t, b.Bus.Publish(ctx, ev("f", 4)))
	var rest []string
	for len(rest) == 0 || rest[len(rest)-1] != "f-004" {
		rest = append(rest, conformance.Receive(t, ch, 5*time.Second).ID)
	}
	assert.Equal(t, []string{"f-001", "f-004"}, rest, "on B after resuming with %q: the entry A skipped, then the new one", cursor)
}

// TestResumeAfterReplayedTags: an instance without Redis resumes a client
// whose cursor is behind events that instance acknowledged from memory
// and has since replayed (so they are in the stream, tagged, past the
// cursor, and no longer in its outbox). Handing the client only what the
// outbox still holds would name the later tag in its cursor and so cover
// the replayed ones it never got: wherever it resumed next they would be
// skipped as had. They must come first, from the instance's memory.
// (explore's session_chain-a3669b67, the part after the own-writes gap.)
func TestResumeAfterReplayedTags(t *testing.T) {
	p, a, b, start := resumePair(t)
	ctx := bg(t)

	outage := func(publish ...int) {
		t.Helper()
		require.NoError(t, p.Stop(ctx))
		waitMode(t, a, "memory", 5*time.Second)
		for _, i := range publish {
			require.NoError(t, a.Bus.Publish(ctx, ev("f", i)))
		}
	}
	outage(1, 2)
	require.NoError(t, p.Restart(ctx))
	waitMode(t, a, "redis", 10*time.Second)
	require.Eventually(t, func() bool { return a.Bus.(*hardened.Bus).Outbox().Pending == 0 }, 10*time.Second, 20*time.Millisecond, "replay of f-001, f-002")
	outage(3)

	sctx, cancel := context.WithCancel(ctx)
	ch, err := a.Bus.Subscribe(sctx, "f", start)
	require.NoError(t, err)
	got := receive(t, ch, 3)
	cancel()
	assert.Equal(t, []string{"f-001", "f-002", "f-003"}, conformance.IDs(got), "on A without Redis, resuming from before the replayed events")
	cursor := got[len(got)-1].Cursor

	require.NoError(t, p.Restart(ctx))
	waitMode(t, b, "redis", 10*time.Second)
	ch, err = b.Bus.Subscribe(ctx, "f", cursor)
	require.NoError(t, err)
	require.NoError(t, b.Bus.Publish(ctx, ev("f", 4)))
	assert.Equal(t, "f-004", conformance.Receive(t, ch, 10*time.Second).ID, "on B after resuming with %q: nothing again, then the new event", cursor)
}

// TestResumeBehindBacklog: a client resumes on instance A while A serves
// from memory, with a cursor older than entries instance B wrote to Redis
// (A heard them live). A must not hand it A's memory-acknowledged events
// ahead of that backlog: B's events were acknowledged before A's were
// published (explore's session_chain-a3669b67: 6–13 events received after
// a later one). A heard every entry after the cursor, so it hands the
// backlog first without Redis (it used to hold the client until Redis
// answered: explore's session_chain-65a6b11d), then A's events, and
// nothing again once Redis is back.
func TestResumeBehindBacklog(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	a, _, cfg := layer(t, p, "A", nil)
	b, _, _ := layer(t, p, "B", shared(cfg.KeyPrefix, nil))
	ctx := bg(t)
	live, cursor := followed(ctx, t, a)
	for i := 1; i <= 3; i++ {
		require.NoError(t, b.Bus.Publish(ctx, ev("f", i)))
	}
	for i := 1; i <= 3; i++ {
		require.Equal(t, ev("f", i).ID, conformance.Receive(t, live, 5*time.Second).ID, "A hears B's writes live")
	}

	resume := conformance.Pause(t, p)
	require.NoError(t, a.Bus.Publish(ctx, ev("f", 4)))
	waitMode(t, a, "memory", 4*time.Second)
	require.NoError(t, a.Bus.Publish(ctx, ev("f", 5)))
	ch, err := a.Bus.Subscribe(ctx, "f", cursor)
	require.NoError(t, err)
	got := receiveIDs(t, ch, 5)
	want := []string{ev("f", 1).ID, ev("f", 2).ID, ev("f", 3).ID, ev("f", 4).ID, ev("f", 5).ID}
	assert.Equal(t, want, got, "the backlog first, then A's events, without Redis")
	resume()
	waitMode(t, a, "redis", 10*time.Second)
	conformance.NoMore(t, ch, 500*time.Millisecond)
}
