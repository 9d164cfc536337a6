package hardened

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The outbox journal (Config.JournalDir) makes an acknowledgement from
// memory durable on the instance: every event that enters the outbox is
// appended to <dir>/outbox.log, one line "<tag> <ms> <event JSON>", and
// Publish returns only once a sync covering its line is done. Concurrent
// publishes share one write and one fsync (the syncer goroutine takes
// whatever lines are waiting). When the replay empties the outbox the file
// is truncated: everything it held is in Redis. A layer started on the
// directory puts its lines back into the outbox (ahead of anything new)
// and replays them as attempted publishes, so those already in the stream
// are found there and not appended again. A torn last line (a crash in
// the middle of a write) is skipped; its publish was never acknowledged.
// Where an event's write landed in a stream that no replica confirmed
// (durable acknowledgement: a failover may discard it) goes in too, on its
// line ("<tag> <ms>@<stream ID> <event JSON>") or, learned later, on a line
// of its own ("<tag> @<stream ID>", written with the next batch): its
// replay then writes it at that ID, or names it (see replayScript), as the
// instance that learned it would have.
// <dir>/lock holds an exclusive flock while a layer uses the directory.
type journal struct {
	f, lock    *os.File
	wake       chan struct{}
	mu         sync.Mutex
	buf        []byte
	batch      *jbatch
	truncating bool // the replay emptied the outbox
}

// jbatch is the lines of one write and sync; done is closed after it.
type jbatch struct {
	done chan struct{}
	err  error
}

func newBatch() *jbatch { return &jbatch{done: make(chan struct{})} }

// errJournalBusy: another layer holds the journal directory.
var errJournalBusy = errors.New("journal directory in use by another instance")

// openJournal locks dir (creating it) and opens its log for appending.
func openJournal(dir string) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("hardened: outbox journal: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("hardened: outbox journal: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("hardened: outbox journal %s: %w (%v)", dir, errJournalBusy, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "outbox.log"), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("hardened: outbox journal: %w", err)
	}
	return &journal{f: f, lock: lock, wake: make(chan struct{}, 1), batch: newBatch()}, nil
}

// load reads the journal's lines back as outbox events (attempted at
// their acknowledgement: their replay looks for them in the stream). It
// returns how many lines it could not read.
func (j *journal) load() ([]pending, int, error) {
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, fmt.Errorf("hardened: outbox journal: %w", err)
	}
	var out []pending
	bad := 0
	sc := bufio.NewScanner(j.f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		if t, sid, ok := parseLanded(sc.Bytes()); ok {
			for i := len(out) - 1; i >= 0; i-- {
				if out[i].tag == t {
					out[i].landed = sid
					break
				}
			}
			continue
		}
		p, ok := parseRecord(sc.Bytes())
		if !ok {
			bad++
			continue
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, bad, fmt.Errorf("hardened: outbox journal: %w", err)
	}
	return out, bad, nil
}

// appendRecord adds a line to the journal's next batch and returns that
// batch. Callers hold Bus.mu, so lines are in outbox order.
func (j *journal) appendRecord(me memEvent, landed string, js []byte) *jbatch {
	j.mu.Lock()
	j.buf = append(j.buf, me.tag.String()...)
	j.buf = append(j.buf, ' ')
	j.buf = strconv.AppendInt(j.buf, me.ms, 10)
	if landed != "" {
		j.buf = append(j.buf, '@')
		j.buf = append(j.buf, landed...)
	}
	j.buf = append(j.buf, ' ')
	j.buf = append(j.buf, js...)
	j.buf = append(j.buf, '\n')
	b := j.batch
	j.mu.Unlock()
	j.poke()
	return b
}

// appendLanded records that the write of the event tagged t landed at
// stream entry sid. Callers hold Bus.mu. Nothing waits for its sync.
func (j *journal) appendLanded(t memTag, sid string) {
	j.mu.Lock()
	j.buf = append(j.buf, t.String()...)
	j.buf = append(j.buf, " @"...)
	j.buf = append(j.buf, sid...)
	j.buf = append(j.buf, '\n')
	j.mu.Unlock()
	j.poke()
}

func (j *journal) poke() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// parseRecord reads one journal line.
func parseRecord(line []byte) (pending, bool) {
	t, rest, ok1 := bytes.Cut(line, []byte{' '})
	ms, js, ok2 := bytes.Cut(rest, []byte{' '})
	tag, ok3 := parseTag(string(t))
	ms, landed, hasLanded := bytes.Cut(ms, []byte{'@'})
	at, err := strconv.ParseInt(string(ms), 10, 64)
	if !ok1 || !ok2 || !ok3 || err != nil {
		return pending{}, false
	}
	if _, _, ok := parseCursor(string(landed)); hasLanded && !ok {
		return pending{}, false
	}
	e, err := decodeEvent(string(js))
	if err != nil || e.ID == "" || e.FlowID == "" {
		return pending{}, false
	}
	me := memEvent{e: e, tag: tag, ms: at, maybe: true}
	me.e.Cursor = position{sid: strconv.FormatInt(at, 10) + "-0", tags: []memTag{tag}}.String()
	return pending{memEvent: me, attempted: at, landed: string(landed)}, true
}

// parseLanded reads a line "<tag> @<stream ID>" (see appendLanded).
func parseLanded(line []byte) (memTag, string, bool) {
	t, sid, ok := bytes.Cut(line, []byte(" @"))
	tag, ok1 := parseTag(string(t))
	_, _, ok2 := parseCursor(string(sid))
	return tag, string(sid), ok && ok1 && ok2
}

// loop writes and syncs batches until stop, then the last one.
func (j *journal) loop(b *Bus, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			j.flush(b)
			return
		case <-j.wake:
		}
		j.flush(b)
	}
}

// flush writes and syncs the waiting lines, or, when the replay emptied
// the outbox meanwhile, truncates the journal instead: every line in it
// (those waiting included) is in Redis.
func (j *journal) flush(b *Bus) {
	b.mu.Lock()
	j.mu.Lock()
	buf, batch := j.buf, j.batch
	j.buf, j.batch = nil, newBatch()
	truncate := j.truncating && len(b.outbox) == 0
	j.truncating = false
	j.mu.Unlock()
	b.mu.Unlock()
	switch {
	case truncate:
		batch.err = j.truncate()
	case len(buf) > 0:
		_, err := j.f.Write(buf)
		if err == nil {
			err = j.f.Sync()
		}
		if err != nil {
			batch.err = fmt.Errorf("hardened: outbox journal: %w", err)
		}
	}
	close(batch.done)
}

// emptied asks the syncer to truncate the journal (the replay emptied the
// outbox).
func (j *journal) emptied() {
	j.mu.Lock()
	j.truncating = true
	j.mu.Unlock()
	j.poke()
}

func (j *journal) truncate() error {
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("hardened: outbox journal: %w", err)
	}
	return j.f.Sync()
}

// close releases the journal (its file stays for the next start).
func (j *journal) close() error {
	err := j.f.Close()
	j.lock.Close() // releases the flock
	return err
}

// wait waits for batch's sync, at most d.
func (batch *jbatch) wait(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-batch.done:
		return batch.err
	case <-t.C:
		return fmt.Errorf("hardened: outbox journal not synced within %s", d)
	}
}
