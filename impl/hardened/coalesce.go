package hardened

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Publishes are coalesced: concurrent Publish calls hand their script call
// to a few flusher goroutines, and each flusher sends whatever is waiting
// as one pipeline. A publish waits for one round trip (its own pipeline's)
// when a flusher is free, and otherwise first for a pipeline in flight to
// come back (see run for how long). Under concurrency Redis and the client
// then read and write many publishes per system call instead of one, which
// is most of what a small command costs on a local server. A lone
// publisher pays a goroutine hand-off (a few microseconds) for it.
const (
	// flushers is how many pipelines may be in flight at once. More
	// flushers mean shallower pipelines (a publish finds a free flusher
	// and goes alone) and fewer mean a publish waits more often for one
	// in flight. Each holds a connection while idle: 4 (was 8) keep an
	// idle instance's footprint small (see idleConns) and 100 concurrent
	// publishes on remote-sim as fast (p50 44.7 ms, was 46.3); 2 made their
	// p50 53 ms, past the publish budget.
	flushers = 4
	// maxBatch bounds one pipeline (about 300 bytes a publish).
	maxBatch = 128
	// queueCap bounds the publishes waiting for a flusher; past it a
	// publish waits for room within its budget.
	queueCap = 1024
	// coalesceWait is how long a publish waits for a flusher before it
	// makes its own round trip.
	coalesceWait = time.Millisecond
)

// A pubReq moves from queued to taken (a flusher will send it) or to
// abandoned (its publisher gave up first, so it is never sent).
const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

// pubReq is one publish script call waiting for a flusher.
type pubReq struct {
	keys  []string
	args  []any
	state atomic.Int32
	// sid is the stream entry's ID the call returned, and err its error,
	// set before done is sent.
	sid string
	err error
	// done receives the call's result once; buffered so that a flusher
	// never waits for a publisher that gave up.
	done chan error
	// settled is closed once the call's result is known (sid set), or it
	// was refused: a publisher that gave up on a call a flusher took
	// learns from it when nothing of that call can reach Redis any more.
	settled chan struct{}
}

// publisher is the flushers' queue.
type publisher struct {
	m     *manager
	queue chan *pubReq
	// slots bounds the publishes that make their own round trip past
	// coalesceWait to the connections the pool dialled ahead: a publish
	// that would dial (a TCP and TLS handshake on a remote target costs
	// more than the budget) waits for a flusher instead.
	slots chan struct{}
}

func newPublisher(m *manager) *publisher {
	p := &publisher{m: m, queue: make(chan *pubReq, queueCap), slots: make(chan struct{}, idleConns(m.cfg))}
	for range flushers {
		m.goroutine(p.loop)
	}
	return p
}

// run makes one publish script call within ctx (which carries the publish
// budget). sent reports whether the request may have reached Redis: false
// when it never left the queue, so a retry need not look for it. late,
// when not nil, is the call a flusher still has in hand after ctx ended:
// it may yet reach Redis, until late.settled is closed (late.sid then says
// whether it stored the event).
//
// A publish waits coalesceWait for a flusher; past that (every flusher
// busy with a slow round trip, as on a remote target) it makes its own
// round trip if one of the connections the pool dialled ahead is free
// (slots), and waits on for a flusher otherwise.
func (p *publisher) run(ctx context.Context, keys []string, args []any) (sent bool, sid string, late *pubReq, err error) {
	r := &pubReq{keys: keys, args: args, done: make(chan error, 1), settled: make(chan struct{})}
	select {
	case p.queue <- r:
	case <-ctx.Done():
		return false, "", nil, ctx.Err()
	}
	t := time.NewTimer(coalesceWait)
	defer t.Stop()
	for {
		select {
		case err := <-r.done:
			return !unsent(err) && !errors.Is(err, errLate), r.sid, nil, err
		case <-t.C:
			select {
			case p.slots <- struct{}{}:
				if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
					defer func() { <-p.slots }()
					sent, sid, err := p.direct(ctx, keys, args)
					return sent, sid, nil, err
				}
				<-p.slots
			default:
			}
		case <-ctx.Done():
			if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
				return false, "", nil, ctx.Err()
			}
			return true, "", r, ctx.Err()
		}
	}
}

// direct makes the call on its own round trip.
func (p *publisher) direct(ctx context.Context, keys []string, args []any) (sent bool, sid string, err error) {
	var late bool
	err = p.m.call(ctx, "publish", p.m.cfg.PublishBudget, func(ctx context.Context, rdb redis.UniversalClient) error {
		if p.m.cfg.Acks() == 0 {
			cmd := publishScript.Run(ctx, rdb, keys, args...)
			sid, late = p.m.published(cmd, time.Now())
			return cmd.Err()
		}
		// Durable: the script and WAIT in one round trip (EVAL again
		// after a flushed script cache).
		var cmd *redis.Cmd
		var w *redis.Cmd
		for _, eval := range []func(context.Context, redis.Scripter, []string, ...any) *redis.Cmd{publishScript.EvalSha, publishScript.Eval} {
			rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
				cmd = eval(ctx, pl, keys, args...)
				w = p.m.waitAcks(ctx, pl)
				return nil
			})
			if !isNoScript(cmd.Err()) {
				break
			}
		}
		sid, late = p.m.published(cmd, time.Now())
		if err := cmd.Err(); err != nil {
			return err
		}
		return p.m.replicated(w)
	})
	if err == nil && late {
		return false, "", errLate // nothing stored, as if never sent
	}
	return !unsent(err), sid, err
}

// loop is one flusher: it takes the first waiting publish and every other
// one waiting behind it (up to maxBatch) and sends them as one pipeline.
func (p *publisher) loop() {
	batch := make([]*pubReq, 0, maxBatch)
	for {
		select {
		case <-p.m.stop:
			p.refuseQueued()
			return
		case r := <-p.queue:
			batch = take(batch, r)
		}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-p.queue:
				batch = take(batch, r)
			default:
				break more
			}
		}
		if len(batch) > 0 {
			p.flush(batch)
		}
		clear(batch)
		batch = batch[:0]
	}
}

// take appends r to batch unless its publisher gave up on it.
func take(batch []*pubReq, r *pubReq) []*pubReq {
	if r.state.CompareAndSwap(reqQueued, reqTaken) {
		batch = append(batch, r)
	}
	return batch
}

// published reads a publish script call's reply: the stream entry's ID
// ("" if none: an error), or late when the call came past its fence; a
// reply with an entry ID samples Redis's clock (received at at).
func (m *manager) published(c redis.Cmder, at time.Time) (sid string, late bool) {
	cmd, ok := c.(*redis.Cmd)
	if !ok || cmd.Err() != nil {
		return "", false
	}
	switch v := cmd.Val().(type) {
	case string:
		sid = v
	case []any:
		late = true
		if len(v) == 1 {
			sid, _ = v[0].(string)
		}
	}
	if ms, ok := entryMs(sid); ok {
		m.clock.sample(ms, at)
	}
	if late {
		return "", true
	}
	return sid, false
}

// refuseQueued answers what is still queued when the layer closes.
func (p *publisher) refuseQueued() {
	for {
		select {
		case r := <-p.queue:
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				r.err = errOffline
				r.done <- errOffline
				close(r.settled)
			}
		default:
			return
		}
	}
}

// flush sends batch as one pipeline within the publish budget and answers
// each publisher with its own call's result. A script cache flushed under
// the layer (NOSCRIPT) costs the calls it hit one more round trip, EVAL
// instead of EVALSHA.
func (p *publisher) flush(batch []*pubReq) {
	results := make([]error, len(batch))
	err := p.m.call(p.m.ctx, "publish", p.m.cfg.PublishBudget, func(ctx context.Context, rdb redis.UniversalClient) error {
		var w *redis.Cmd
		cmds, err := rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for _, r := range batch {
				publishScript.EvalSha(ctx, pl, r.keys, r.args...)
			}
			w = p.m.waitAcks(ctx, pl)
			return nil
		})
		var again []int
		at := time.Now()
		for i := range batch {
			if results[i] = cmds[i].Err(); isNoScript(results[i]) {
				again = append(again, i)
			}
			var late bool
			if batch[i].sid, late = p.m.published(cmds[i], at); late {
				results[i] = errLate
			}
		}
		if len(again) > 0 {
			cmds, err = rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
				for _, i := range again {
					publishScript.Eval(ctx, pl, batch[i].keys, batch[i].args...)
				}
				w = p.m.waitAcks(ctx, pl)
				return nil
			})
			at := time.Now()
			for j, i := range again {
				results[i] = cmds[j].Err()
				var late bool
				if batch[i].sid, late = p.m.published(cmds[j], at); late {
					results[i] = errLate
				}
			}
		}
		if werr := p.m.replicated(w); werr != nil {
			// Stored on the primary, maybe, but not confirmed on a
			// replica: none of them is acknowledged from Redis.
			for i := range results {
				if results[i] == nil {
					results[i] = werr
				}
			}
			if err == nil {
				err = werr
			}
		}
		return err
	})
	for i, r := range batch {
		if errors.Is(err, errOffline) {
			results[i] = errOffline
		}
		r.err = results[i]
		r.done <- results[i]
		close(r.settled)
	}
}
