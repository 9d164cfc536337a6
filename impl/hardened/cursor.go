package hardened

import (
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Cursors (what SSE sends as id: and a client sends back as Last-Event-ID)
// name a subscriber's position, not only an event's, so that a client can
// resume with any cursor it was given, on any instance, in either mode:
//
//	<stream ID>[.<origin>.<n>]...[.h.<event hash>]...
//
// The stream ID ("ms-seq") is the last entry of the flow's stream the
// client got; each <origin>.<n> says it also got every event that the
// layer instance <origin> (a random token per layer) acknowledged from
// memory up to its n-th (memory sequences count from 1 per instance), or
// got its replayed entry from the stream (see sub.fresh). A client that
// never saw a memory-acknowledged event gets plain stream IDs.
//
// An event acknowledged from memory carries its tag (origin, n) into the
// outbox and, replayed, into its stream entry (field "mem") and its live
// Pub/Sub message. The tag stays in the position once the subscriber
// passed its stream entry (at most maxTags origins): a failover may
// discard that entry, and the replay write the event again at a new ID
// that names neither it nor anything the position knows (an origin killed
// before it learned where its replay landed replays from its journal:
// explore's duplicated-f1f117e5). A
// resume after a cursor delivers the stream entries after its stream ID
// except the tagged ones it covers, and the events this instance still
// holds in memory that it does not cover: on this instance or another,
// before or after the replay, each event once.
//
// One event can be in the stream untagged although a client got it from
// memory: a publish that timed out after Redis ran it (the reply was lost
// at the outage's edge) is acknowledged from memory, and its replay finds
// the entry and appends nothing. Its memory copy is marked "maybe": a
// client that gets it also gets h.<hash of its event ID> in its position
// (at most maxMaybe, the oldest dropped), and a stream copy of that event,
// untagged or replayed, is skipped and the hash dropped, on any instance,
// whether the origin's replay already ran or not. The same names the own
// writes a layer hands a subscriber ahead of the stream while it cannot
// read it (see sentRing): the stream ID stays where the client had every
// entry, so that whichever instance it resumes on delivers the other
// layers' entries it has not had and skips those writes.
//
// A failover can discard entries a subscriber had (asynchronous
// replication: the new primary never got them), and the replay of an
// event among them (acknowledged from memory, the write unconfirmed) may
// have to take a new ID past the subscriber's stream ID when the new
// primary took other writes first: such an entry names the ID it had
// ("was", see replayScript). A catch-up that does not find the entry at
// its stream ID records it as lost (.d.<stream ID>): the subscriber had
// that timeline up to there, so a replay whose earlier entry was at or
// before it is skipped, wherever it resumes. It is dropped once the
// stream position is lostHorizon past it. (The stream ID of a
// subscription begun without Redis is the local clock, not an entry; such
// a subscriber skips the replay of an event whose lost entry was written
// before it subscribed, which it was not owed.)

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

// maxMaybe bounds the event hashes one position carries (see above): the
// maybe events and the own writes handed ahead of the stream (handOwn) a
// client got but whose stream copies it has not passed. Past it the
// oldest is dropped: the own writes stay named by the position's own
// mark (ownTo), a maybe event's stream copy may be delivered again on
// another instance (once; never lost). 32 hashes keep a cursor under
// about 650 bytes.
const maxMaybe = 32

// maybeKey marks an event hash in a cursor (an origin is originLen long).
const maybeKey = "h"

// ownKey marks, in a cursor, the own writes one layer handed ahead of the
// stream: "w.<origin><stream ID>" (see position.own).
const ownKey = "w"

// lostKey marks the lost stream ID in a cursor.
const lostKey = "d"

// lostHorizon is how long (in stream time) a position remembers a lost
// stream ID: the replays of a failover's discarded writes run as soon as
// their layer reaches the new primary.
const lostHorizon = 5 * time.Minute

// position is what a subscriber has delivered: every stream entry up to
// sid and, per origin, every memory-acknowledged event up to n, and the
// hashes of maybe events whose stream copy it has not passed.
type position struct {
	sid   string
	tags  []memTag
	maybe []string
	// lost is a stream ID the stream no longer held when a catch-up read
	// from it (see above), or "".
	lost string
	// ownOrigin, ownTo and ownSum: the layer ownOrigin handed the
	// subscriber writes of its own to the flow after sid, up to stream ID
	// ownTo, ahead of the stream (handOwn), while it could not read it;
	// ownSum is the XOR of their idSums. Hashes name at most maxMaybe of
	// them (explore's duplicated-c50b9f28: 90 writes handed twice, each
	// handed again pushing a later one's hash out). That layer knows them
	// (its sentRing); any layer finds them in the stream, where each entry
	// names its writer (field o): when the writer's entries after sid up
	// to ownTo sum to ownSum they are the ones handed, and are skipped;
	// else (a publish whose reply was lost wrote one more) only the
	// hashes count. Dropped once sid passes ownTo.
	ownOrigin, ownTo string
	ownSum           uint64
}

// idHash names an event ID in a cursor: FNV-1a 64, base 36.
func idHash(id string) string { return strconv.FormatUint(idSum(id), 36) }

// idSum is FNV-1a 64 of an event ID.
func idSum(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// validHash reports whether s can be an idHash.
func validHash(s string) bool {
	v, err := strconv.ParseUint(s, 36, 64)
	return err == nil && s == strconv.FormatUint(v, 36)
}

func (p position) String() string {
	if len(p.tags) == 0 && len(p.maybe) == 0 && p.lost == "" && p.ownTo == "" {
		return p.sid
	}
	var b strings.Builder
	b.WriteString(p.sid)
	if p.lost != "" {
		b.WriteString("." + lostKey + ".")
		b.WriteString(p.lost)
	}
	for _, t := range p.tags {
		b.WriteByte('.')
		b.WriteString(t.String())
	}
	if p.ownTo != "" {
		b.WriteString("." + ownKey + ".")
		b.WriteString(p.ownOrigin + p.ownTo + "_" + strconv.FormatUint(p.ownSum, 36))
	}
	for _, h := range p.maybe {
		b.WriteString("." + maybeKey + ".")
		b.WriteString(h)
	}
	return b.String()
}

// parsePosition parses a cursor; ok is false for anything that is not
// one (a plain stream ID is one).
func parsePosition(c string) (position, bool) {
	parts := strings.Split(c, ".")
	if len(parts)%2 != 1 || len(parts) > 1+2*(2+maxTags+maxMaybe) {
		return position{}, false
	}
	if _, _, ok := parseCursor(parts[0]); !ok {
		return position{}, false
	}
	p := position{sid: parts[0]}
	for i := 1; i < len(parts); i += 2 {
		if parts[i] == lostKey {
			if _, _, ok := parseCursor(parts[i+1]); !ok || p.lost != "" {
				return position{}, false
			}
			p.lost = parts[i+1]
			continue
		}
		if parts[i] == ownKey {
			v, sum, _ := strings.Cut(parts[i+1], "_")
			if len(v) <= originLen || p.ownTo != "" || !validOrigin(v[:originLen]) || !validHash(sum) {
				return position{}, false
			}
			if _, _, ok := parseCursor(v[originLen:]); !ok {
				return position{}, false
			}
			p.ownOrigin, p.ownTo = v[:originLen], v[originLen:]
			p.ownSum, _ = strconv.ParseUint(sum, 36, 64)
			continue
		}
		if parts[i] == maybeKey {
			if !validHash(parts[i+1]) || len(p.maybe) == maxMaybe {
				return position{}, false
			}
			p.expect(parts[i+1])
			continue
		}
		t, ok := parseTag(parts[i] + "." + parts[i+1])
		if !ok || len(p.tags) == maxTags {
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

// expect adds the hash of a maybe event the subscriber got from memory.
func (p *position) expect(h string) {
	if slices.Contains(p.maybe, h) {
		return
	}
	if len(p.maybe) == maxMaybe {
		p.maybe = p.maybe[1:]
	}
	p.maybe = append(p.maybe, h)
}

// expects reports whether the position names id's hash (see settle).
func (p position) expects(id string) bool {
	return len(p.maybe) > 0 && slices.Contains(p.maybe, idHash(id))
}

// settle drops the hash of id, reporting whether the position had it: the
// stream copy of an event the subscriber got from memory.
func (p *position) settle(id string) bool {
	if len(p.maybe) == 0 {
		return false
	}
	i := slices.Index(p.maybe, idHash(id))
	if i < 0 {
		return false
	}
	p.maybe = append(p.maybe[:i:i], p.maybe[i+1:]...)
	return true
}

// handed records that layer origin handed the subscriber its own write
// of event id at stream ID sid ahead of the stream. A mark of another
// layer is replaced (that layer's hashes stay).
func (p *position) handed(origin, sid, id string) {
	if p.ownOrigin != origin || p.ownTo == "" {
		p.ownOrigin, p.ownTo, p.ownSum = origin, sid, 0
	}
	if cursorAfter(sid, p.ownTo) {
		p.ownTo = sid
	}
	p.ownSum ^= idSum(id)
}

// passedOwn records that the stream position reached the handed write of
// event id (at or before ownTo).
func (p *position) passedOwn(id string) { p.ownSum ^= idSum(id) }

// handedBy reports whether layer origin handed the subscriber its own
// write at stream ID sid (after the stream position) ahead of the stream;
// the caller knows sid is one of its writes.
func (p position) handedBy(origin, sid string) bool {
	return p.ownTo != "" && p.ownOrigin == origin && cursorAfter(sid, p.sid) && !cursorAfter(sid, p.ownTo)
}

// advance moves the stream position to sid (after it), forgetting the
// lost stream ID past lostHorizon and the own mark once sid passes it.
func (p *position) advance(sid string) {
	p.sid = sid
	if p.ownTo != "" && !cursorAfter(p.ownTo, sid) {
		p.ownOrigin, p.ownTo, p.ownSum = "", "", 0
	}
	if p.lost == "" {
		return
	}
	now, _, _ := parseCursor(sid)
	then, _, _ := parseCursor(p.lost)
	if now > then+uint64(lostHorizon.Milliseconds()) {
		p.lost = ""
	}
}

// lose records that the stream no longer holds the entry at sid.
func (p *position) lose(sid string) {
	if sid != "0-0" && cursorAfter(sid, p.lost) {
		p.lost = sid
	}
}

// lostPast reports whether the position had, on a discarded timeline, the
// entry at was.
func (p position) lostPast(was string) bool {
	return p.lost != "" && !cursorAfter(was, p.lost)
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
