package hardened

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/target"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// journaled builds a hardened layer on p's keys (prefix) with the outbox
// journal in dir.
func journaled(t *testing.T, p *target.Process, prefix, dir string) *impl.Layer {
	t.Helper()
	cfg := conformance.Config(p, "J")
	cfg.KeyPrefix, cfg.JournalDir = prefix, dir
	cfg.ProbeInterval, cfg.ConnectTimeout = 50*time.Millisecond, time.Second
	// A memory-mode publish waits for its journal sync up to the budget:
	// fsync on a shared test machine's disk may take longer than 50 ms.
	cfg.PublishBudget = 5 * time.Second
	l, err := New(context.Background(), cfg)
	require.NoError(t, err)
	return l
}

// crash ends l as a kill -9 would: no final step (the outbox is not
// written to Redis, the journal not truncated); its files are closed as
// the kernel closes a dead process's.
func crash(t *testing.T, l *impl.Layer) {
	t.Helper()
	b := l.Bus.(*Bus)
	b.m.finals = nil
	require.NoError(t, l.Close())
	if b.jr != nil {
		require.NoError(t, b.jr.close())
	}
}

func historyIDs(t *testing.T, l *impl.Layer, flow string) []string {
	t.Helper()
	evs, err := l.Bus.History(context.Background(), flow, 1000, time.Time{})
	require.NoError(t, err)
	return conformance.IDs(evs)
}

func pub(t *testing.T, l *impl.Layer, flow string, from, to int) []string {
	t.Helper()
	var ids []string
	for i := from; i <= to; i++ {
		e := conformance.Event(flow, fmt.Sprintf("%s-%02d", flow, i), i, time.Now().UTC())
		require.NoError(t, l.Bus.Publish(context.Background(), e))
		ids = append(ids, e.ID)
	}
	return ids
}

// TestJournalCrash (issue 12, item 6): events acknowledged from memory
// survive a crash of the instance during the outage: the next layer on
// the journal writes them, once each and in order, also when some were
// replayed before the crash.
func TestJournalCrash(t *testing.T) {
	want, got := journalCrash(t, t.TempDir())
	assert.Equal(t, want, got, "history after the crash and restart: every acknowledged event once, in order")
}

// TestJournalCrashMutant: without the journal the same crash loses the
// events acknowledged from memory, and the check sees it.
func TestJournalCrashMutant(t *testing.T) {
	want, got := journalCrash(t, "")
	assert.NotEqual(t, want, got, "mutant (no journal): the crash must lose events")
	t.Logf("without the journal: %d acknowledged, %d in history", len(want), len(got))
}

// journalCrash publishes through two outages on a layer with the journal
// in dir ("" none), crashes it during the second, and starts another on
// the journal: it returns the acknowledged events and the history.
func journalCrash(t *testing.T, dir string) (want, got []string) {
	p := conformance.StartRedis(t, target.ProcessOptions{AOF: true})
	ctx := context.Background()
	prefix := conformance.Config(p, "x").KeyPrefix
	a := journaled(t, p, prefix, dir)
	want = pub(t, a, "f", 0, 0)

	require.NoError(t, p.Stop(ctx))
	want = append(want, pub(t, a, "f", 1, 3)...) // acknowledged from memory
	require.NoError(t, p.Restart(ctx))
	require.Eventually(t, func() bool { return a.Bus.(*Bus).Outbox().Pending == 0 }, 30*time.Second, 10*time.Millisecond)
	if dir != "" {
		require.Eventually(t, func() bool { return fileSize(t, dir) == 0 }, 30*time.Second, 10*time.Millisecond, "journal truncated once the outbox is replayed")
	}

	require.NoError(t, p.Stop(ctx))
	want = append(want, pub(t, a, "f", 4, 6)...)
	if dir != "" {
		assert.Positive(t, fileSize(t, dir), "journal holds the outage's events")
	}
	crash(t, a)
	require.NoError(t, p.Restart(ctx))

	b := journaled(t, p, prefix, dir)
	defer b.Close()
	require.Eventually(t, func() bool { return b.Manager.Mode() == "redis" && b.Bus.(*Bus).Outbox().Pending == 0 }, 30*time.Second, 10*time.Millisecond)
	return want, historyIDs(t, b, "f")
}

// TestJournalDedupe: journal lines whose events are already in the stream
// (a crash after the replay, before the truncation) are not appended
// again; a torn last line is skipped.
func TestJournalDedupe(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	dir := t.TempDir()
	prefix := conformance.Config(p, "x").KeyPrefix
	a := journaled(t, p, prefix, dir)
	in := pub(t, a, "f", 1, 2) // in the stream
	require.NoError(t, a.Close())

	ms := strconv.FormatInt(time.Now().Add(-time.Second).UnixMilli(), 10)
	var lines string
	for i := 1; i <= 3; i++ {
		js, err := appendEvent(nil, conformance.Event("f", fmt.Sprintf("f-%02d", i), i, time.Now().UTC()))
		require.NoError(t, err)
		lines += fmt.Sprintf("aaaaaaaa.%d %s %s\n", i, ms, js)
	}
	lines += `aaaaaaaa.4 ` + ms + ` {"id":"f-04","flow_id":"f","eve` // torn
	require.NoError(t, os.WriteFile(filepath.Join(dir, "outbox.log"), []byte(lines), 0o600))

	b := journaled(t, p, prefix, dir)
	defer b.Close()
	st := b.Bus.(*Bus).Outbox()
	assert.Equal(t, int64(3), st.Journaled, "lines read")
	assert.Equal(t, int64(1), st.JournalUnreadable, "torn line")
	require.Eventually(t, func() bool { return b.Bus.(*Bus).Outbox().Pending == 0 }, 30*time.Second, 10*time.Millisecond)
	assert.Equal(t, append(in, "f-03"), historyIDs(t, b, "f"), "history: the journal's events once each")
}

// TestDrainWaitsForRedis: a graceful stop while Redis is down (a failover
// naming a new primary, a restart) writes the outbox once Redis is back
// within DrainTimeout (by default twice ConnectTimeout: 2 s here), rather
// than give up at its first try, or at ConnectTimeout (explore seed 12121,
// session_chain-f38021e2: an instance stopped during a failover kept its
// events in the journal until it started again).
func TestDrainWaitsForRedis(t *testing.T) {
	for _, back := range []time.Duration{300 * time.Millisecond, 1300 * time.Millisecond} {
		t.Run(back.String(), func(t *testing.T) {
			p := conformance.StartRedis(t, target.ProcessOptions{})
			ctx := context.Background()
			prefix := conformance.Config(p, "x").KeyPrefix
			a := journaled(t, p, prefix, t.TempDir())
			require.NoError(t, p.Stop(ctx))
			want := pub(t, a, "f", 1, 4)
			done := make(chan error, 1)
			go func() {
				time.Sleep(back)
				done <- p.Restart(ctx)
			}()
			require.NoError(t, a.Close(), "Close with Redis back %s after it began", back)
			require.NoError(t, <-done)
			b := journaled(t, p, prefix, t.TempDir())
			assert.Equal(t, want, historyIDs(t, b, "f"))
			require.NoError(t, b.Close())
		})
	}
}

// TestJournalStop: a graceful stop with Redis down keeps the outbox in
// the journal (Close says how many, none lost), and the directory is
// locked while a layer uses it.
func TestJournalStop(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	ctx := context.Background()
	dir := t.TempDir()
	prefix := conformance.Config(p, "x").KeyPrefix
	a := journaled(t, p, prefix, dir)
	cfg := conformance.Config(p, "other")
	cfg.JournalDir = dir
	_, err := New(ctx, cfg)
	assert.ErrorIs(t, err, errJournalBusy, "a second layer on the same journal")

	require.NoError(t, p.Stop(ctx))
	want := pub(t, a, "f", 1, 4)
	err = a.Close()
	var unsaved *impl.UnsavedError
	require.True(t, errors.As(err, &unsaved), "Close with Redis down: %v", err)
	assert.Equal(t, impl.UnsavedError{Kept: 4}, *unsaved, "kept in the journal, none lost")

	require.NoError(t, p.Restart(ctx))
	b := journaled(t, p, prefix, dir)
	require.Eventually(t, func() bool { return b.Bus.(*Bus).Outbox().Pending == 0 }, 30*time.Second, 10*time.Millisecond)
	assert.Equal(t, want, historyIDs(t, b, "f"))
	require.NoError(t, b.Close(), "Close with everything written")
	assert.Zero(t, fileSize(t, dir), "journal empty after a clean close")
}

func fileSize(t *testing.T, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, "outbox.log"))
	require.NoError(t, err)
	return fi.Size()
}

// TestJournalLanded: a record carries where its write landed, on its line
// or on a later one of its own; a malformed stream ID makes a line
// unreadable rather than a wrong entry.
func TestJournalLanded(t *testing.T) {
	js := `{"id":"e1","flow_id":"f"}`
	p, ok := parseRecord([]byte("abcdefgh.3 1700000000000@1700000000000-2 " + js))
	require.True(t, ok)
	assert.Equal(t, "1700000000000-2", p.landed)
	p, ok = parseRecord([]byte("abcdefgh.3 1700000000000 " + js))
	require.True(t, ok)
	assert.Empty(t, p.landed)
	for _, bad := range []string{"abcdefgh.3 1700000000000@ " + js, "abcdefgh.3 1700000000000@x-1 " + js, "abcdefgh.3 @1-1 " + js} {
		_, ok := parseRecord([]byte(bad))
		assert.False(t, ok, "parseRecord(%q)", bad)
	}
	tag, sid, ok := parseLanded([]byte("abcdefgh.3 @1700000000000-2"))
	require.True(t, ok)
	assert.Equal(t, memTag{"abcdefgh", 3}, tag)
	assert.Equal(t, "1700000000000-2", sid)
	for _, bad := range []string{"abcdefgh.3 @", "abcdefgh.3 @1-x", "abcdefgh @1-1", "abcdefgh.3 1700000000000 " + js} {
		_, _, ok := parseLanded([]byte(bad))
		assert.False(t, ok, "parseLanded(%q)", bad)
	}
}
