package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/internal/history"
)

// startWorkload starts every client the spec asks for in g. Clients stop
// when ctx ends; they never fail the group: what they see is recorded.
func (r *run) startWorkload(ctx context.Context, g *errgroup.Group) {
	w := r.spec.Workload
	if w.Publish.Rate > 0 {
		n := w.Publish.Publishers * w.Publish.Concurrency
		for p := 0; p < n; p++ {
			rng := r.childRand()
			client := fmt.Sprintf("pub-%d", p)
			home := 0
			if r.processMode() {
				home = p % len(r.layers) // publishers spread over the instances
			}
			g.Go(func() error { r.publisher(ctx, client, home, rng, w.Publish.Rate/float64(n)); return nil })
		}
	}
	r.startSSE(ctx, func(c *sseClient) { g.Go(func() error { r.subscriber(ctx, c); return nil }) })
	r.startBrowsers(ctx, g)
	if w.Cache.Rate > 0 {
		db := &database{v: map[string]int64{}}
		for c := 0; c < w.Cache.Clients; c++ {
			rng := r.childRand()
			client := fmt.Sprintf("cache-%d", c)
			inst := c % len(r.layers)
			g.Go(func() error { r.cacheClient(ctx, client, inst, db, rng); return nil })
		}
	}
	if w.Registry.Connections > 0 {
		r.startRegistry(ctx, g)
	}
	if w.Health.Interval > 0 {
		for i := range r.layers {
			rng := r.childRand()
			g.Go(func() error { r.healthPoller(ctx, fmt.Sprintf("health-%d", i), i, rng); return nil })
		}
	}
}

func flowName(i int) string { return fmt.Sprintf("flow-%d", i) }

// instanceID is the SERVER_ID of the i-th service instance.
func instanceID(i int) string { return fmt.Sprintf("inst-%d", i) }

// flows lists the published flows.
func (r *run) flows() []string {
	if r.spec.Workload.Publish.Rate == 0 {
		return nil
	}
	out := make([]string, r.spec.Workload.Publish.Flows)
	for i := range out {
		out[i] = flowName(i)
	}
	return out
}

// every calls f at the given rate until ctx ends, starting after a random
// fraction of one period so that clients do not move in lockstep. A slow f
// delays the next call: the achieved rate is what the history shows.
func every(ctx context.Context, rng *rand.Rand, period time.Duration, f func()) {
	if !sleepCtx(ctx, time.Duration(rng.Int64N(int64(period)+1))) {
		return
	}
	next := time.Now()
	for ctx.Err() == nil {
		f()
		next = next.Add(period)
		if d := time.Until(next); d > 0 {
			if !sleepCtx(ctx, d) {
				return
			}
		} else if -d > period {
			next = time.Now() // fell behind: do not burst to catch up
		}
	}
}

// use returns instance i's layer (or, while i is down, the next instance's
// that is up; see route), held against a restart (the flag fault) and the
// instance faults until release is called. A layer call is timed from when use returns:
// while every instance restarts, the service is not serving, and the wait
// is the restart's, not the layer's. Callers release before they wait or
// call use again.
func (r *run) use(i int) (l *impl.Layer, release func()) {
	l, _, release, _ = r.route(i, true)
	return l, release
}

// record fills an op's return time, result and mode (the layer's, unless
// the op says how it was answered) and adds it. A call
// that failed because the run's traffic ended is not recorded: it says
// nothing about the layer.
func (r *run) record(ctx context.Context, op history.Op, l *impl.Layer, err error) {
	if err != nil && ctx.Err() != nil {
		return
	}
	op.Return = r.rec.Now()
	op.OK = err == nil
	if err != nil {
		op.Err = err.Error()
	}
	if l != nil && op.Mode == "" {
		op.Mode = l.Manager.Mode()
	}
	r.rec.Add(op)
}

// publisher publishes to every flow in turn; per flow its sequence numbers
// increase, and each event id names publisher, flow and sequence.
func (r *run) publisher(ctx context.Context, client string, home int, rng *rand.Rand, rate float64) {
	flows := r.flows()
	seq := map[string]int64{}
	i := rng.IntN(len(flows))
	pad := make([]byte, r.spec.Workload.Publish.Payload)
	period := time.Duration(float64(time.Second) / rate)
	every(ctx, rng, period, func() {
		flow := flows[i%len(flows)]
		i++
		seq[flow]++
		for j := range pad {
			pad[j] = 'a' + byte(rng.IntN(26))
		}
		payload, _ := json.Marshal(map[string]any{"pad": string(pad), "seq": seq[flow]})
		e := impl.Event{
			ID:        fmt.Sprintf("%s.%s.%d", client, flow, seq[flow]),
			FlowID:    flow,
			Type:      "TEST_EVENT",
			Payload:   payload,
			Timestamp: time.Now().UTC(),
			Source:    client,
		}
		l, inst, release, ok := r.route(home, true)
		defer release()
		if !ok {
			return // no instance up: no call made
		}
		op := history.Op{Client: client, Kind: history.Publish, Flow: flow, EventID: e.ID, Seq: seq[flow], Value: r.instanceName(inst), Call: r.rec.Now()}
		pctx, note := impl.WithModeNote(counter.WithOp(ctx, history.Publish))
		err := l.Bus.Publish(pctx, e)
		if err == nil {
			r.ack(flow, e.ID)
			// How the layer acknowledged it, when it says (the reply's
			// X-Layer-Mode through HTTP): from memory while its manager
			// still said redis, say.
			op.Mode = note.Or("")
		}
		r.record(ctx, op, l, err)
	})
}

// database is the source of truth the cache fronts (TASK-008's
// PostgreSQL): one version per flow, starting at 1 (version 0 means a
// miss in the history).
type database struct {
	mu sync.Mutex
	v  map[string]int64
}

func (d *database) read(flow string) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return max(d.v[flow], 1)
}

func (d *database) bump(flow string) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.v[flow] = max(d.v[flow], 1) + 1
	return d.v[flow]
}

// cacheClient reads and updates flow states the way TASK-008 does: a read
// tries the cache, and on a miss reads the database and fills the cache
// with the lease the miss returned; an update writes the database, then
// invalidates.
func (r *run) cacheClient(ctx context.Context, client string, inst int, db *database, rng *rand.Rand) {
	c := r.spec.Workload.Cache
	period := time.Duration(float64(time.Second) * float64(c.Clients) / c.Rate)
	every(ctx, rng, period, func() {
		flow := fmt.Sprintf("state-%d", rng.IntN(c.Flows))
		if rng.Float64() < c.WriteRatio {
			r.cacheWrite(ctx, client, inst, db, flow)
			return
		}
		l, at, release, _ := r.route(inst, true)
		op := history.Op{Client: client, Kind: history.CacheGet, Flow: flow, Instance: instanceID(at), Call: r.rec.Now()}
		e, err := l.Cache.Get(counter.WithOp(ctx, history.CacheGet), flow)
		if err == nil && e.Hit {
			op.Version = stateVersion(e.State)
		}
		r.record(ctx, op, l, err)
		release()
		if err != nil || e.Hit {
			return
		}
		v := db.read(flow)
		if c.FillDelay > 0 && !sleepCtx(ctx, c.FillDelay.D()) {
			return
		}
		l, release = r.use(inst)
		defer release()
		set := history.Op{Client: client, Kind: history.CacheSet, Flow: flow, Version: v, Call: r.rec.Now()}
		err = l.Cache.Set(counter.WithOp(ctx, history.CacheSet), flow, map[string]any{"version": v, "status": "running"}, "running", e.Lease)
		if errors.Is(err, impl.ErrFillRefused) {
			// The layer's answer to a fill that raced an invalidation,
			// not a failed call: recorded as such, never as an error.
			set.Value, err = history.FillRefused, nil
		}
		r.record(ctx, set, l, err)
	})
}

func (r *run) cacheWrite(ctx context.Context, client string, inst int, db *database, flow string) {
	call := r.rec.Now()
	v := db.bump(flow)
	now := r.rec.Now()
	r.rec.Add(history.Op{Client: client, Kind: history.DBWrite, Flow: flow, Version: v, Call: call, Return: now, OK: true})
	l, at, release, _ := r.route(inst, true)
	defer release()
	op := history.Op{Client: client, Kind: history.CacheInval, Flow: flow, Version: v, Instance: instanceID(at), Call: r.rec.Now()}
	err := l.Cache.Invalidate(counter.WithOp(ctx, history.CacheInval), flow)
	if errors.Is(err, impl.ErrInvalidateDeferred) {
		// The layer's honest answer: not done yet. Neither a failed call
		// nor an invalidation that holds.
		op.Value, err = history.Deferred, nil
	}
	r.record(ctx, op, l, err)
}

// stateVersion reads the version a cached state carries.
func stateVersion(s map[string]any) int64 {
	switch v := s["version"].(type) {
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	}
	return -1
}

// healthPoller asks one instance for its health every interval.
func (r *run) healthPoller(ctx context.Context, client string, inst int, rng *rand.Rand) {
	every(ctx, rng, r.spec.Workload.Health.Interval.D(), func() {
		l, _, release, ok := r.route(inst, false)
		defer release()
		if !ok {
			return // the instance is down: nothing to ask
		}
		op := history.Op{Client: client, Kind: history.Health, Call: r.rec.Now()}
		h := l.Manager.Health(counter.WithOp(ctx, history.Health))
		op.Return = r.rec.Now()
		op.Value, op.Mode, op.OK = h.Status, h.Mode, true
		if h.Error != "" {
			op.Err = h.Error
		}
		r.rec.Add(op)
	})
}
