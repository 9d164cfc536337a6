package scenarios

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/internal/history"
)

// startRegistry registers the spec's connections, spread over flows and
// instances, heartbeats them, stops or unregisters some at StopAt, looks
// each flow up and reads the count of live connections on every instance,
// and runs each instance's stale sweep every cleanup interval (the
// tracker's background task).
func (r *run) startRegistry(ctx context.Context, g *errgroup.Group) {
	w := r.spec.Workload.Registry
	t0 := time.Now()
	for i := 0; i < w.Connections; i++ {
		conn := impl.Conn{ID: fmt.Sprintf("conn-%d", i), FlowID: fmt.Sprintf("reg-%d", i%w.Flows), UserID: "user"}
		inst := i % len(r.layers)
		end := "heartbeat"
		switch {
		case i < w.Stop:
			end = "stop"
		case i < w.Stop+w.Unregister:
			end = "unregister"
		}
		rng := r.childRand()
		g.Go(func() error { r.connection(ctx, conn, inst, rng, end, t0.Add(w.StopAt.D())); return nil })
	}
	for i := range r.layers {
		rng := r.childRand()
		g.Go(func() error { r.lookups(ctx, fmt.Sprintf("lookup-%d", i), i, rng); return nil })
		rng2 := r.childRand()
		g.Go(func() error {
			every(ctx, rng2, r.cfg.CleanupInterval, func() {
				l, _, release, ok := r.route(i, false)
				defer release()
				if !ok {
					return
				}
				cctx, cancel := context.WithTimeout(counter.WithOp(ctx, "reg_cleanup"), time.Second)
				l.Registry.Cleanup(cctx)
				cancel()
			})
			return nil
		})
	}
}

// connection is one SSE connection's life: register, heartbeat until the
// end (or until stopAt, when end is "stop" or "unregister"). While its
// instance is down it makes no call; when the instance is back it
// registers again, as an SSE client whose stream ended reconnects.
func (r *run) connection(ctx context.Context, c impl.Conn, inst int, rng *rand.Rand, end string, stopAt time.Time) {
	client := "reg-" + c.ID
	wasDown := false
	var on *impl.Layer // the instance process it registered on
	call := func(kind string, do func(ctx context.Context, reg impl.Registry) error) {
		// The connection lives on its instance: while that is down it
		// makes no call (it stops heartbeating, and its entry must expire).
		l, _, release, ok := r.route(inst, false)
		defer release()
		if !ok {
			wasDown = true
			return
		}
		// An instance that went down, or was replaced between two calls
		// (killed and started again), lost the connection with its
		// process: it registers again, as a client whose stream ended
		// reconnects (explore's error_rate-571253af: heartbeats of a
		// connection the new process never saw were refused).
		if (wasDown || on != nil && l != on) && kind == history.RegHeartbeat {
			wasDown = false
			kind, do = history.RegRegister, func(ctx context.Context, reg impl.Registry) error { return reg.Register(ctx, c) }
		}
		on = l
		op := history.Op{Client: client, Kind: kind, Flow: c.FlowID, Value: c.ID, Instance: instanceID(inst), Call: r.rec.Now()}
		r.record(ctx, op, l, do(counter.WithOp(ctx, kind), l.Registry))
	}
	call(history.RegRegister, func(ctx context.Context, reg impl.Registry) error { return reg.Register(ctx, c) })
	hctx := ctx
	if end != "heartbeat" {
		var cancel context.CancelFunc
		hctx, cancel = context.WithDeadline(ctx, stopAt)
		defer cancel()
	}
	every(hctx, rng, r.spec.Workload.Registry.Heartbeat.D(), func() {
		call(history.RegHeartbeat, func(ctx context.Context, reg impl.Registry) error { return reg.Heartbeat(ctx, c.ID) })
	})
	if end == "unregister" && ctx.Err() == nil {
		call(history.RegUnreg, func(ctx context.Context, reg impl.Registry) error { return reg.Unregister(ctx, c.ID) })
	}
}

// lookups looks every registry flow up on one instance every interval,
// then reads the instance's count of live connections.
func (r *run) lookups(ctx context.Context, client string, inst int, rng *rand.Rand) {
	w := r.spec.Workload.Registry
	every(ctx, rng, w.Lookup.D(), func() {
		l, _, release, ok := r.route(inst, false)
		defer release()
		if !ok {
			return
		}
		for f := 0; f < w.Flows && ctx.Err() == nil; f++ {
			flow := fmt.Sprintf("reg-%d", f)
			op := history.Op{Client: client, Kind: history.RegLookup, Flow: flow, Instance: instanceID(inst), Call: r.rec.Now()}
			lctx, note := impl.WithModeNote(counter.WithOp(ctx, history.RegLookup))
			ids, err := l.Registry.Lookup(lctx, flow)
			op.Values = ids
			if err == nil {
				// Where this answer came from, when the layer says
				// (the reply's X-Layer-Mode through HTTP): memory past
				// its budget while its manager still said redis.
				op.Mode = note.Or("")
			}
			r.record(ctx, op, l, err)
		}
		if ctx.Err() != nil {
			return
		}
		op := history.Op{Client: client, Kind: history.RegCount, Value: instanceID(inst), Call: r.rec.Now()}
		n, err := l.Registry.Count(counter.WithOp(ctx, history.RegCount))
		op.Count = int64(n)
		r.record(ctx, op, l, err)
	})
}
