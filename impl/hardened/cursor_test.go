package hardened

import (
	"strconv"
	"strings"
	"testing"

	"github.com/gonogo/harness/impl"
)

func TestCursors(t *testing.T) {
	for _, c := range []struct {
		a, b  string
		after bool
	}{
		{"1700000000001-0", "1700000000000-5", true},
		{"1700000000000-5", "1700000000000-5", false},
		{"1700000000000-4", "1700000000000-5", false},
	} {
		if got := cursorAfter(c.a, c.b); got != c.after {
			t.Errorf("cursorAfter(%s, %s): got %v; want %v", c.a, c.b, got, c.after)
		}
	}
	for _, bad := range []string{"", "abc", "1-", "-1", "1-2-3"} {
		if _, _, ok := parseCursor(bad); ok {
			t.Errorf("parseCursor(%q): got ok; want not ok", bad)
		}
	}
	for _, c := range []string{"5-0", "5-0.abcdefgh.3", "5-1.abcdefgh.3.0123456z.12", "5-0.h." + idHash("e1"), "5-0.abcdefgh.3.h.1.h.zz",
		"5-0.d.4-2", "5-0.d.4-2.abcdefgh.3.h.1"} {
		p, ok := parsePosition(c)
		if !ok || p.String() != c {
			t.Errorf("parsePosition(%q): got %q, %v; want it back", c, p.String(), ok)
		}
	}
	for _, bad := range []string{"", "5", "5-0.", "5-0.abcdefgh", "5-0.abcdefgh.0", "5-0.ABCDEFGH.1", "5-0.abc.1", "5-0.abcdefgh.x",
		"5-0.a0000000.1.a0000001.1.a0000002.1.a0000003.1.a0000004.1.a0000005.1.a0000006.1.a0000007.1.a0000008.1",
		tooManyHashes(), "5-0.h.", "5-0.h.01", "5-0.h.A1", "5-0.h.zzzzzzzzzzzzzzzz",
		"5-0.d.", "5-0.d.4", "5-0.d.x-1", "5-0.d.4-1.d.4-2"} {
		if _, ok := parsePosition(bad); ok {
			t.Errorf("parsePosition(%q): got ok; want not ok", bad)
		}
	}
	var p position
	p.see(memTag{"aaaaaaaa", 3})
	p.see(memTag{"bbbbbbbb", 1})
	p.see(memTag{"aaaaaaaa", 2})
	for _, c := range []struct {
		t    memTag
		want bool
	}{{memTag{"aaaaaaaa", 3}, true}, {memTag{"aaaaaaaa", 4}, false}, {memTag{"bbbbbbbb", 1}, true}, {memTag{"cccccccc", 1}, false}} {
		if got := p.covers(c.t); got != c.want {
			t.Errorf("%s covers %s: got %v; want %v", p, c.t, got, c.want)
		}
	}
	// A lost stream ID: replays whose lost entry was at or before it are
	// had; it is forgotten once the position is lostHorizon past it.
	var l position
	l.lose("0-0")
	if l.lost != "" {
		t.Errorf("lose(0-0): got %q; want nothing (no entry)", l.lost)
	}
	l.lose("1000-3")
	l.lose("900-0") // an older one does not move it back
	for was, want := range map[string]bool{"1000-3": true, "999-9": true, "1000-4": false} {
		if got := l.lostPast(was); got != want {
			t.Errorf("lostPast(%s) with lost 1000-3: got %v; want %v", was, got, want)
		}
	}
	l.advance("2000-0")
	if l.String() != "2000-0.d.1000-3" {
		t.Errorf("after advancing: got %q; want %q", l.String(), "2000-0.d.1000-3")
	}
	l.advance(strconv.FormatInt(1000+lostHorizon.Milliseconds()+1, 10) + "-0")
	if l.lost != "" || l.lostPast("1-0") {
		t.Errorf("past the horizon: got %q; want the lost ID forgotten", l.String())
	}
	if o := newOrigin(); !validOrigin(o) {
		t.Errorf("newOrigin: got %q; not a valid origin", o)
	}
}

// TestFresh walks one subscriber through the copies an event can arrive
// as: from memory, from the stream (live or catch-up, tagged when
// replayed), in either order, and checks the cursor each delivery gets.
func TestFresh(t *testing.T) {
	const o = "aaaaaaaa"
	s := &sub{b: &Bus{m: &manager{}}, pos: position{sid: "100-0"}, seen: map[string]struct{}{}, memQueued: map[string]int{}}
	mem := func(id string, n uint64) item {
		it := item{e: impl.Event{ID: id}, mem: true, tag: memTag{o, n}}
		s.enqueue(it)
		return it
	}
	stream := func(id, cursor string, n uint64) item {
		it := item{e: impl.Event{ID: id, Cursor: cursor}}
		if n > 0 {
			it.tag = memTag{o, n}
		}
		return it
	}
	for i, c := range []struct {
		it      item
		syncing bool
		want    string // cursor delivered with, "" not delivered
	}{
		{mem("a", 1), false, "100-0.aaaaaaaa.1"},             // outage: delivered from memory
		{stream("a", "101-0", 1), false, ""},                 // its replay: not again
		{stream("b", "102-0", 0), false, "102-0.aaaaaaaa.1"}, // another publisher's event
		{stream("b", "102-0", 0), false, ""},                 // live copy of a caught-up entry
		{stream("c", "103-0", 0), true, ""},                  // out of sync: left to the catch-up
		{stream("c", "103-0", 0), false, "103-0.aaaaaaaa.1"}, // the catch-up
		{stream("old", "99-0", 0), false, ""},                // before the position
		{mem("g", 2), false, "103-0.aaaaaaaa.2"},             // outage again
		{mem("h", 3), false, "103-0.aaaaaaaa.3"},             //
		{stream("x", "104-0", 0), false, "104-0.aaaaaaaa.3"}, // another instance's event, before g's replay
		{stream("g", "105-0", 2), false, ""},                 // g's replay
		{stream("h", "106-0", 3), false, ""},                 // h's replay: the tag stays
		{stream("y", "107-0", 0), false, "107-0.aaaaaaaa.3"}, //
	} {
		e, ok := s.fresh(c.it, c.syncing)
		got := ""
		if ok {
			got = e.Cursor
		}
		if got != c.want {
			t.Errorf("step %d (%s): got cursor %q; want %q", i, c.it.e.ID, got, c.want)
		}
	}
	// Stream copy first while the memory copy waits in the queue.
	m := mem("d", 4)
	if _, ok := s.fresh(stream("d", "108-0", 4), false); !ok {
		t.Errorf("stream copy of a queued memory event: want it delivered")
	}
	if _, ok := s.fresh(m, false); ok {
		t.Errorf("queued memory copy after its stream copy: want it skipped")
	}
	// Stream copy delivered before the memory copy was even queued (a
	// publish that timed out after Redis ran it: untagged in the stream).
	_, first := s.fresh(stream("e", "109-0", 0), false)
	_, second := s.fresh(mem("e", 5), false)
	if !first || second {
		t.Errorf("stream copy then a later memory copy: want exactly one delivery")
	}
	// A replayed entry first (its instance's reply to the replay may be
	// lost, and a failover discard the entry): its tag goes into the
	// cursor, so that its memory copy and a second replay at a new ID
	// are skipped, also by another instance the client resumes on.
	e, ok := s.fresh(stream("t", "110-0", 7), false)
	if !ok || e.Cursor != "110-0.aaaaaaaa.7" {
		t.Errorf("replayed entry not had before: got %q, %v; want it delivered with its tag", e.Cursor, ok)
	}
	moved, _ := parsePosition(e.Cursor)
	for _, c := range []*sub{s, {b: s.b, pos: moved, seen: map[string]struct{}{}, memQueued: map[string]int{}}} {
		m := item{e: impl.Event{ID: "t"}, mem: true, tag: memTag{o, 7}}
		c.enqueue(m)
		if _, ok := c.fresh(m, false); ok {
			t.Errorf("memory copy of a replayed entry had (%s): want it skipped", c.pos)
		}
		if _, ok := c.fresh(stream("t", "120-0", 7), false); ok {
			t.Errorf("second replay at a new ID (%s): want it skipped", c.pos)
		}
	}
	if len(s.seen) != 0 || len(s.memQueued) != 0 {
		t.Errorf("bookkeeping left: seen %v, memQueued %v; want empty", s.seen, s.memQueued)
	}
}

// TestReplayAfterDiscardedPass: a client that had a memory event from its
// instance resumes on another, whose catch-up skips the event's replay on
// the primary a partition cut off; a failover discards that timeline, and
// the origin, killed and restarted, replays the event from its journal at
// a new ID without naming the discarded entry (it never learned it). The
// cursor's tag must still say the client had it (explore seed 19191,
// duplicated-f1f117e5: the tag was dropped when the skipped replay passed,
// and the event came twice).
func TestReplayAfterDiscardedPass(t *testing.T) {
	const o = "aaaaaaaa"
	pos, ok := parsePosition("288039-0." + o + ".4")
	if !ok {
		t.Fatal("cursor does not parse")
	}
	s := &sub{b: &Bus{m: &manager{}}, pos: pos, seen: map[string]struct{}{}, memQueued: map[string]int{}}
	entry := func(id, cursor string, n uint64) item {
		it := item{e: impl.Event{ID: id, Cursor: cursor}}
		if n > 0 {
			it.tag = memTag{o, n}
		}
		return it
	}
	if _, ok := s.fresh(entry("t", "288130-0", 4), false); ok {
		t.Fatal("replay of the event the client had from memory: want it skipped")
	}
	if e, ok := s.fresh(entry("u", "288240-0", 0), false); !ok {
		t.Fatalf("another event after it: want it delivered (%s)", e.Cursor)
	}
	s.pos.lose("288240-0") // the catch-up on the new primary did not find it
	if e, ok := s.fresh(entry("t", "290462-0", 4), false); ok {
		t.Errorf("journal replay at a new ID on the new primary: delivered again with cursor %s; want it skipped", e.Cursor)
	}
	if e, ok := s.fresh(entry("v", "290500-0", 0), false); !ok || !strings.HasPrefix(e.Cursor, "290500-0.") {
		t.Errorf("the next event: got %q, %v; want it delivered", e.Cursor, ok)
	}
}

// TestHeardRing: the ring keeps the last heardCap keys, and a key heard
// twice keeps one slot (its older slot's eviction used to drop the newer
// entry).
func TestHeardRing(t *testing.T) {
	var r heardRing
	r.add("f", "e0", "1-0")
	r.add("f", "e0", "2-0")
	for i := range heardCap - 1 {
		r.add("f", "x"+strconv.Itoa(i), "3-0")
	}
	if got := r.sid("f", "e0"); got != "2-0" {
		t.Fatalf("e0 after %d other keys: %q; want 2-0", heardCap-1, got)
	}
	r.add("f", "last", "4-0")
	if got := r.sid("f", "e0"); got != "" {
		t.Fatalf("e0 after %d other keys: %q; want evicted", heardCap, got)
	}
}

// tooManyHashes is a cursor with one event hash more than maxMaybe.
func tooManyHashes() string {
	c := "5-0"
	for i := range maxMaybe + 1 {
		c += ".h." + idHash(strconv.Itoa(i))
	}
	return c
}
