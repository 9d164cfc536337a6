package hardened

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A publish whose reply this layer did not get (past its budget, a broken
// connection) may still reach Redis later: a rate limiter or a proxy in
// front of the server may hold the request for seconds. The replay looks
// for earlier attempts in the stream, but one that lands after the replay
// looked would store the event twice. So every attempt carries a fence: a
// Redis server time (ms) past which the script refuses to store it (it
// removes the entry it just added, whose ID is the server's clock: no
// extra command when in time), and a replay of an event whose earlier
// attempt may have landed waits until Redis's clock is past that
// attempt's fence (TIME, one command per replay call) before it looks.
// The fence's distance from the attempt, fenceGrace past its budget,
// keeps a publish that Redis runs while this layer still waits from being
// refused when the estimate of Redis's clock is off by less than that.

// fenceGrace is how far past an attempt's budget its fence lies.
const fenceGrace = 250 * time.Millisecond

// errLate is a publish that reached Redis past its fence: not stored.
var errLate = errors.New("hardened: the publish reached Redis past its fence and was not stored")

// serverClock estimates how far Redis's clock is ahead of this instance's,
// in ms: the largest (server ms − local ms at the reply) of the samples of
// the last two minutes. Each sample is at most the true offset (the server
// read its clock before the reply arrived), and off by at most one round
// trip. Without a sample it is 0.
type serverClock struct {
	mu            sync.Mutex
	cur, prev     int64
	curOK, prevOK bool
	since         time.Time // when cur's minute began
}

// sample records a server time ms read before local time at.
func (c *serverClock) sample(ms int64, at time.Time) {
	d := ms - at.UnixMilli()
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.Sub(c.since) > time.Minute {
		c.prev, c.prevOK = c.cur, c.curOK
		c.curOK, c.since = false, at
	}
	if !c.curOK || d > c.cur {
		c.cur, c.curOK = d, true
	}
}

// offset is the estimate (ms).
func (c *serverClock) offset() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.curOK && c.prevOK:
		return max(c.cur, c.prev)
	case c.curOK:
		return c.cur
	case c.prevOK:
		return c.prev
	}
	return 0
}

// fence is the Redis server time (ms) past which an attempt made now with
// budget must not be stored.
func (c *serverClock) fence(now time.Time, budget time.Duration) int64 {
	return now.Add(budget+fenceGrace).UnixMilli() + c.offset()
}

// entryMs is the millisecond part of a stream entry ID ("ms-seq"), the
// server's clock when it was added; false when id is not one.
func entryMs(id string) (int64, bool) {
	ms, _, ok := strings.Cut(id, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	return n, err == nil
}
