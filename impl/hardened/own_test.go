package hardened_test

import (
	"context"
	"hash/fnv"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/hardened"
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
	live, cursor := followed(ctx, t, l)
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
	ids := receiveIDs(t, resumed, 5)
	assert.Equal(t, []string{"f-001", "f-002", "f-003", "f-004", "f-005"}, ids, "resumed during the outage after f-000")
	conformance.NoMore(t, resumed, 200*time.Millisecond)
}

// TestOwnWritesPastRing: the layer keeps its last 256 writes per flow to
// hand a resuming client first; a client whose position lies before the
// oldest of them must not be handed the rest ahead of the ones dropped
// (explore's session_chain-fc31da75: a slow consumer got f-005 before
// f-003, then was owed everything after the memory event that followed).
// It waits for the catch-up, and gets everything once, in order.
func TestOwnWritesPastRing(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	l, _, _ := layer(t, p, "A", nil)
	ctx := bg(t)
	live, cursor := followed(ctx, t, l)
	const n = 300 // more than the ring holds
	resume := pausedAfter(ctx, t, p, l, live, n)
	ch, err := l.Bus.Subscribe(ctx, "f", cursor)
	require.NoError(t, err)
	// Only f-001 may come before Redis is back.
	ids := conformance.IDsAcross(t, ch, 300*time.Millisecond, resume, n+1)
	var want []string
	for i := 1; i <= n+1; i++ {
		want = append(want, ev("f", i).ID)
	}
	assert.Equal(t, want, ids, "resumed after f-000 with the ring past it")
}

// pausedAfter publishes f-001 to f-<n> on l (live receives them), pauses
// Redis and publishes f-<n+1>, acknowledged from memory; the returned
// function resumes Redis (the test's end does, if it did not).
func pausedAfter(ctx context.Context, t *testing.T, p *target.Process, l *impl.Layer, live <-chan impl.Event, n int) (resume func()) {
	t.Helper()
	for i := 1; i <= n; i++ {
		require.NoError(t, l.Bus.Publish(ctx, ev("f", i)))
	}
	receive(t, live, n)
	resume = conformance.Pause(t, p)
	require.NoError(t, l.Bus.Publish(ctx, ev("f", n+1)))
	waitMode(t, l, "memory", 4*time.Second)
	return resume
}

// followed subscribes to flow f on l, publishes f-000 there and returns
// the subscription and the cursor f-000 came with.
func followed(ctx context.Context, t *testing.T, l *impl.Layer) (<-chan impl.Event, string) {
	t.Helper()
	live, err := l.Bus.Subscribe(ctx, "f", "")
	require.NoError(t, err)
	require.NoError(t, l.Bus.Publish(ctx, ev("f", 0)))
	return live, conformance.Receive(t, live, 5*time.Second).Cursor
}

// TestOwnWritesPastMaybe: a client resuming while Redis is paused, 40 of
// this layer's writes behind, gets them handed ahead of the stream; its
// cursor names at most maxMaybe (32) of them by hash. Resuming again on
// this layer, still without Redis, it must not get them again (explore
// seed 7070, duplicated-c50b9f28: 90 writes handed twice to a client
// reconnecting every 350 ms, each handed write pushing the hash of a
// later one out of the cursor), nor from the stream once Redis is back.
func TestOwnWritesPastMaybe(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	l, _, cfg := layer(t, p, "A", nil)
	ctx := bg(t)
	live, cursor := followed(ctx, t, l)
	const n = 40
	resume := pausedAfter(ctx, t, p, l, live, n)

	first, err := l.Bus.Subscribe(ctx, "f", cursor)
	require.NoError(t, err)
	got := receive(t, first, n+1)
	assert.Equal(t, ev("f", n+1).ID, got[n].ID, "the memory event last")
	last := got[n].Cursor
	again, err := l.Bus.Subscribe(ctx, "f", last)
	require.NoError(t, err)
	conformance.NoMore(t, again, 300*time.Millisecond)

	resume()
	waitMode(t, l, "redis", 10*time.Second)
	// Another layer knows only the hashes, and reads in the stream which
	// entries the marking layer wrote (field o) and whether they are the
	// ones it handed (the mark's checksum).
	after, err := l.Bus.Subscribe(ctx, "f", last)
	require.NoError(t, err)
	require.NoError(t, l.Bus.Publish(ctx, ev("f", n+2)))
	assert.Equal(t, ev("f", n+2).ID, conformance.Receive(t, after, 5*time.Second).ID, "resumed with Redis back: only the new event")
	other, _, _ := layer(t, p, "B", shared(cfg.KeyPrefix, nil))
	elsewhere, err := other.Bus.Subscribe(ctx, "f", last)
	require.NoError(t, err)
	require.NoError(t, l.Bus.Publish(ctx, ev("f", n+3)))
	ids := receiveIDs(t, elsewhere, 2)
	assert.Equal(t, []string{ev("f", n+2).ID, ev("f", n+3).ID}, ids, "resumed on another layer: only what came after the cursor")
	conformance.NoMore(t, elsewhere, 200*time.Millisecond)
}

// TestHeardHandedWrites: a client that layer A handed its writes ahead of
// the stream (its cursor marks them) resumes on layer B while Redis is
// still unreachable. B heard those writes live and hands what it heard
// after the cursor; it must tell the handed ones by the mark, as a
// catch-up does from the stream, and not deliver them again (explore seed
// 12121, duplicated-186a2286: 21 events twice to a client moving between
// three instances during a TLS outage).
func TestHeardHandedWrites(t *testing.T) {
	p, a, b, ctx := pair(t)
	onB, err := b.Bus.Subscribe(ctx, "f", "")
	require.NoError(t, err)
	live, cursor := followed(ctx, t, a)
	receive(t, onB, 1)
	const n = 40 // more than a cursor names by hash
	pausedAfter(ctx, t, p, a, live, n)
	receive(t, onB, n) // sent to B before the pause
	handed, err := a.Bus.Subscribe(ctx, "f", cursor)
	require.NoError(t, err)
	got := receive(t, handed, n+1)
	require.Contains(t, got[n].Cursor, ".w.", "A's writes handed ahead, named in the cursor")
	require.NoError(t, b.Bus.Publish(ctx, ev("g", 1))) // B finds Redis gone
	waitMode(t, b, "memory", 4*time.Second)
	elsewhere, err := b.Bus.Subscribe(ctx, "f", got[n].Cursor)
	require.NoError(t, err)
	conformance.NoMore(t, elsewhere, 500*time.Millisecond)
}

// TestOwnMarkMismatch: a cursor's own mark says which writes of one layer
// it was handed (their checksum); when that layer's entries in the stream
// up to the mark are more than that (a publish whose reply was lost wrote
// one the client never got), another layer must not skip them: it
// delivers what the hashes do not name, the unhanded write among them.
func TestOwnMarkMismatch(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	a, _, cfg := layer(t, p, "A", nil)
	ctx := bg(t)
	_, cursor := followed(ctx, t, a)
	for i := 1; i <= 3; i++ {
		require.NoError(t, a.Bus.Publish(ctx, ev("f", i)))
	}
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
	t.Cleanup(func() { rdb.Close() })
	xs, err := rdb.XRange(ctx, hardened.StreamKey(a.Bus, "f"), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, xs, 4)
	origin, ok := xs[3].Values["o"].(string)
	require.True(t, ok, "entries name their writer: %v", xs[3].Values)
	// Handed f-001 and f-003, not f-002.
	sum := fnvSum(ev("f", 1).ID) ^ fnvSum(ev("f", 3).ID)
	mark := cursor + ".w." + origin + xs[3].ID + "_" + strconv.FormatUint(sum, 36)
	b, _, _ := layer(t, p, "B", shared(cfg.KeyPrefix, nil))
	ch, err := b.Bus.Subscribe(ctx, "f", mark)
	require.NoError(t, err)
	ids := receiveIDs(t, ch, 3)
	assert.Contains(t, ids, ev("f", 2).ID, "the write the mark does not account for")
}

func fnvSum(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// TestResumeAfterLastSubscriberLeft: a client that reconnects to the same
// instance, during an outage, with the cursor of an event before another
// instance's write and this instance's own, must get the other's first:
// the instance still follows the flow for a while after its last
// subscriber left, so it knows of that write and holds the client for the
// catch-up rather than hand its own write ahead of it (explore seed 7070,
// session_chain-30340d92: a 100 ms flap as the client reconnected).
func TestResumeAfterLastSubscriberLeft(t *testing.T) {
	ctx := bg(t)
	a, cursor, resume := leftThenPaused(ctx, t)
	ch, err := a.Bus.Subscribe(ctx, "f", cursor)
	require.NoError(t, err)
	ids := conformance.IDsAcross(t, ch, 300*time.Millisecond, resume, 3)
	assert.Equal(t, []string{ev("f", 1).ID, ev("f", 2).ID, ev("f", 3).ID}, ids, "resumed after f-000 on the instance its last subscriber had left")
}

// TestResumeHeardDuringOutage: the client of
// TestResumeAfterLastSubscriberLeft must get the other instance's write
// before Redis is back, not only from the catch-up: the instance heard
// every message of the flow since its subscription, before the client's
// cursor, so what it heard after the cursor is what the stream holds
// there (explore seed 10101, session_chain-65a6b11d: the client's session
// ended before a wrong-host TLS outage did, and the write never reached
// it). Once Redis is back the catch-up delivers none of them again.
func TestResumeHeardDuringOutage(t *testing.T) {
	ctx := bg(t)
	a, cursor, resume := leftThenPaused(ctx, t)
	ch, err := a.Bus.Subscribe(ctx, "f", cursor)
	require.NoError(t, err)
	ids := receiveIDs(t, ch, 3)
	assert.Equal(t, []string{ev("f", 1).ID, ev("f", 2).ID, ev("f", 3).ID}, ids, "resumed after f-000 while Redis is paused")
	resume()
	waitMode(t, a, "redis", 10*time.Second)
	conformance.NoMore(t, ch, 500*time.Millisecond)
}

// TestResumeHeardIncomplete: an instance that began to follow the flow
// after another instance's write did not hear it; a client resuming
// before that write, during an outage, must not get the writes it heard
// ahead of it: it is held for the catch-up.
func TestResumeHeardIncomplete(t *testing.T) {
	p, a, b, ctx := pair(t)
	_, cursor := followed(ctx, t, b)
	require.NoError(t, b.Bus.Publish(ctx, ev("f", 1)))
	live, err := a.Bus.Subscribe(ctx, "f", "")
	require.NoError(t, err)
	require.NoError(t, b.Bus.Publish(ctx, ev("f", 2)))
	assert.Equal(t, ev("f", 2).ID, conformance.Receive(t, live, 5*time.Second).ID)
	resume := conformance.Pause(t, p)
	require.NoError(t, a.Bus.Publish(ctx, ev("f", 3)))
	waitMode(t, a, "memory", 4*time.Second)
	ch, err := a.Bus.Subscribe(ctx, "f", cursor)
	require.NoError(t, err)
	ids := conformance.IDsAcross(t, ch, 300*time.Millisecond, resume, 3)
	assert.Equal(t, []string{ev("f", 1).ID, ev("f", 2).ID, ev("f", 3).ID}, ids, "resumed after f-000 on an instance that did not hear f-001")
}

// leftThenPaused: a client of layer A gets f-000 and leaves; B writes
// f-001, A f-002; Redis is paused and A acknowledges f-003 from memory. It
// returns A, f-000's cursor and the function that resumes Redis.
func leftThenPaused(ctx context.Context, t *testing.T) (*impl.Layer, string, func()) {
	t.Helper()
	p, a, b, _ := pair(t)
	sctx, leave := context.WithCancel(ctx)
	live, err := a.Bus.Subscribe(sctx, "f", "")
	require.NoError(t, err)
	require.NoError(t, a.Bus.Publish(ctx, ev("f", 0)))
	cursor := conformance.Receive(t, live, 5*time.Second).Cursor
	leave()
	for range live { // closed once the subscription ended
	}
	require.NoError(t, b.Bus.Publish(ctx, ev("f", 1)))
	require.NoError(t, a.Bus.Publish(ctx, ev("f", 2)))
	// Redis sent B's write to A's Pub/Sub connection before the pause;
	// A reads it while its breaker finds Redis gone.
	resume := conformance.Pause(t, p)
	require.NoError(t, a.Bus.Publish(ctx, ev("f", 3)))
	waitMode(t, a, "memory", 4*time.Second)
	return a, cursor, resume
}

// TestPublishNotesMode: a publish says how it was acknowledged. One that
// misses its budget while Redis hangs is kept in memory (the outbox) and
// says memory, whatever the manager's mode when it returned (explore seed
// 18181, reordered-fa5c52d7: a write no replica confirmed, kept in the
// outbox, was recorded as acknowledged from Redis, and so bound the
// publisher's next events on another instance); one Redis took says
// redis.
func TestPublishNotesMode(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	l, _, _ := layer(t, p, "A", func(c *impl.Config) { c.PublishBudget = 100 * time.Millisecond })
	ctx := bg(t)
	publish := func(i int) string {
		t.Helper()
		nctx, note := impl.WithModeNote(ctx)
		require.NoError(t, l.Bus.Publish(nctx, ev("f", i)))
		return note.Or("(none)")
	}
	assert.Equal(t, impl.ModeRedis, publish(1), "taken by Redis")
	conformance.Pause(t, p)
	assert.Equal(t, impl.ModeMemory, publish(2), "missed its budget: kept in the outbox")
}

// TestLookupNotesMode: a registry lookup says where its answer came from:
// Redis, or this instance's memory when Redis did not answer within the
// call budget (while the layer's mode still said redis), which knows the
// other instances' connections only from its own last lookups (explore
// seed 21212, registry-c3c4e133: a lookup at start-up missed its budget
// and listed none of the other instances' connections; recorded as redis,
// the check could not tell it was answered blind).
func TestLookupNotesMode(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	l, _, _ := layer(t, p, "A", nil)
	ctx := bg(t)
	require.NoError(t, l.Registry.Register(ctx, impl.Conn{ID: "c1", FlowID: "f"}))
	lookup := func() string {
		t.Helper()
		nctx, note := impl.WithModeNote(ctx)
		ids, err := l.Registry.Lookup(nctx, "f")
		require.NoError(t, err)
		assert.Equal(t, []string{"c1"}, ids)
		return note.Or("(none)")
	}
	assert.Equal(t, impl.ModeRedis, lookup(), "answered by Redis")
	conformance.Pause(t, p)
	assert.Equal(t, impl.ModeMemory, lookup(), "missed its budget: answered from memory")
}
