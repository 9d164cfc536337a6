package hardened

import (
	"strconv"
	"strings"
)

// Cursors (what SSE sends as id: and a client sends back as Last-Event-ID)
// name a subscriber's position, not only an event's, so that a client can
// resume with any cursor it was given, on any instance, in either mode:
//
//	<stream ID>[.<origin>.<n>]...
//
// The stream ID ("ms-seq") is the last entry of the flow's stream the
// client got; each <origin>.<n> says it also got every event that the
// layer instance <origin> (a random token per layer) acknowledged from
// memory up to its n-th (memory sequences count from 1 per instance). A
// client that never saw a memory-acknowledged event gets plain stream IDs.
//
// An event acknowledged from memory carries its tag (origin, n) into the
// outbox and, replayed, into its stream entry (field "mem") and its live
// Pub/Sub message. One instance replays its outbox in order, so once a
// subscriber passes the stream entry of (origin, n) every earlier event of
// that origin is behind its stream position too and the tag is dropped. A
// resume after a cursor delivers the stream entries after its stream ID
// except the tagged ones it covers, and the events this instance still
// holds in memory that it does not cover: on this instance or another,
// before or after the replay, each event once.

// memTag names an event acknowledged from memory: the layer that
// acknowledged it and its memory sequence there (from 1).
type memTag struct {
	origin string
	n      uint64
}

func (t memTag) String() string { return t.origin + "." + strconv.FormatUint(t.n, 10) }

// parseTag parses "origin.n"; ok is false for anything else.
func parseTag(s string) (memTag, bool) {
	o, n, found := strings.Cut(s, ".")
	v, err := strconv.ParseUint(n, 10, 64)
	if !found || err != nil || v == 0 || !validOrigin(o) {
		return memTag{}, false
	}
	return memTag{o, v}, true
}

// originLen is the length of an origin token.
const originLen = 8

func validOrigin(o string) bool {
	if len(o) != originLen {
		return false
	}
	for i := 0; i < len(o); i++ {
		if c := o[i]; (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// maxTags bounds the origins one position carries (a cursor stays short);
// past it the oldest is dropped, and the events it covered that are still
// ahead of the stream position may be delivered again.
const maxTags = 8

// position is what a subscriber has delivered: every stream entry up to
// sid and, per origin, every memory-acknowledged event up to n.
type position struct {
	sid  string
	tags []memTag
}

func (p position) String() string {
	if len(p.tags) == 0 {
		return p.sid
	}
	var b strings.Builder
	b.WriteString(p.sid)
	for _, t := range p.tags {
		b.WriteByte('.')
		b.WriteString(t.String())
	}
	return b.String()
}

// parsePosition parses a cursor; ok is false for anything that is not
// one (a plain stream ID is one).
func parsePosition(c string) (position, bool) {
	parts := strings.Split(c, ".")
	if len(parts)%2 != 1 || len(parts) > 1+2*maxTags {
		return position{}, false
	}
	if _, _, ok := parseCursor(parts[0]); !ok {
		return position{}, false
	}
	p := position{sid: parts[0]}
	for i := 1; i < len(parts); i += 2 {
		t, ok := parseTag(parts[i] + "." + parts[i+1])
		if !ok {
			return position{}, false
		}
		p.see(t)
	}
	return p, true
}

// covers reports whether the position includes t.
func (p position) covers(t memTag) bool {
	for _, x := range p.tags {
		if x.origin == t.origin {
			return t.n <= x.n
		}
	}
	return false
}

// has reports whether the position has a tag of origin.
func (p position) has(origin string) bool {
	for _, x := range p.tags {
		if x.origin == origin {
			return true
		}
	}
	return false
}

// see adds t (a delivered memory event) to the position.
func (p *position) see(t memTag) {
	for i, x := range p.tags {
		if x.origin == t.origin {
			p.tags[i].n = max(x.n, t.n)
			return
		}
	}
	if len(p.tags) == maxTags {
		p.tags = p.tags[1:]
	}
	p.tags = append(p.tags, t)
}

// passed records that the stream position reached the entry of t, which
// the position covers: with t its origin's last covered event, every
// covered event of that origin is behind the stream position now.
func (p *position) passed(t memTag) {
	for i, x := range p.tags {
		if x.origin == t.origin && x.n == t.n {
			p.tags = append(p.tags[:i:i], p.tags[i+1:]...)
			return
		}
	}
}

// parseCursor splits a stream ID "ms-seq"; ok is false for anything else.
func parseCursor(c string) (ms, seq uint64, ok bool) {
	a, s, found := strings.Cut(c, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(s, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

// cursorAfter reports whether stream ID a sorts after b.
func cursorAfter(a, b string) bool {
	am, as, _ := parseCursor(a)
	bm, bs, _ := parseCursor(b)
	return am > bm || (am == bm && as > bs)
}
