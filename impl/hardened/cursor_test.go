package hardened

import (
	"testing"

	"github.com/gonogo/harness/impl"
)

func TestCursors(t *testing.T) {
	mem := "1700000000000-1099511627776" // seq 2^40
	for _, c := range []struct {
		a, b      string
		after, mA bool
	}{
		{"1700000000001-0", "1700000000000-5", true, false},
		{"1700000000000-5", "1700000000000-5", false, false},
		{"1700000000000-4", "1700000000000-5", false, false},
		{mem, "1700000000000-5", true, true},   // memory cursors sort after stream IDs of their ms
		{"1700000000001-0", mem, true, false},  // and before the next ms
		{"1700000000000-9", mem, false, false}, // valid XRANGE bounds both ways
	} {
		if got := cursorAfter(c.a, c.b); got != c.after {
			t.Errorf("cursorAfter(%s, %s): got %v; want %v", c.a, c.b, got, c.after)
		}
		if got := isMemCursor(c.a); got != c.mA {
			t.Errorf("isMemCursor(%s): got %v; want %v", c.a, got, c.mA)
		}
	}
	for _, bad := range []string{"", "abc", "1-", "-1", "1-2-3"} {
		if _, _, ok := parseCursor(bad); ok {
			t.Errorf("parseCursor(%q): got ok; want not ok", bad)
		}
	}
	b := &Bus{}
	prev := ""
	for i := 0; i < 1000; i++ {
		c := b.memCursor()
		if !isMemCursor(c) || (prev != "" && !cursorAfter(c, prev)) {
			t.Fatalf("memCursor %d: got %s after %s; want a memory cursor sorting after it", i, c, prev)
		}
		prev = c
	}
}

// TestFresh walks one subscriber through the copies an event can arrive
// as: from memory, from the stream (live or catch-up), in either order.
func TestFresh(t *testing.T) {
	s := &sub{lastStream: "100-0", seen: map[string]struct{}{}, memQueued: map[string]int{}}
	mem := func(id string) item {
		s.enqueue(item{e: impl.Event{ID: id}, mem: true})
		return item{e: impl.Event{ID: id}, mem: true}
	}
	stream := func(id, cursor string) item { return item{e: impl.Event{ID: id, Cursor: cursor}} }
	for i, c := range []struct {
		it      item
		syncing bool
		want    bool
	}{
		{mem("a"), false, true},               // outage: delivered from memory
		{stream("a", "101-0"), false, false},  // its replay: not again
		{stream("b", "102-0"), false, true},   // another publisher's event
		{stream("b", "102-0"), false, false},  // live copy of a caught-up entry
		{stream("c", "103-0"), true, false},   // out of sync: left to the catch-up
		{stream("c", "103-0"), false, true},   // the catch-up
		{stream("old", "99-0"), false, false}, // before the position
	} {
		if got := s.fresh(c.it, c.syncing); got != c.want {
			t.Errorf("step %d (%s): got deliver %v; want %v", i, c.it.e.ID, got, c.want)
		}
	}
	// Stream copy first while the memory copy waits in the queue.
	m := mem("d")
	if !s.fresh(stream("d", "104-0"), false) || s.fresh(m, false) {
		t.Errorf("stream copy then queued memory copy: want exactly one delivery")
	}
	// Stream copy delivered before the memory copy was even queued (a
	// publish that timed out after Redis ran it).
	if !s.fresh(stream("e", "105-0"), false) || s.fresh(mem("e"), false) {
		t.Errorf("stream copy then a later memory copy: want exactly one delivery")
	}
	if len(s.seen) != 0 || len(s.memQueued) != 0 {
		t.Errorf("bookkeeping left: seen %v, memQueued %v; want empty", s.seen, s.memQueued)
	}
}
