package scenarios

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/scenarios/check"
)

// neighbourBus swaps, in history, the first two neighbouring events of
// different publishers where the later one was published after the
// earlier was acknowledged: the per-publisher rule cannot see it.
type neighbourBus struct{ impl.Bus }

func (b neighbourBus) History(ctx context.Context, flow string, count int, since time.Time) ([]impl.Event, error) {
	evs, err := b.Bus.History(ctx, flow, count, since)
	for i := 5; i+1 < len(evs); i++ {
		if evs[i].Source != evs[i+1].Source && evs[i+1].Timestamp.Sub(evs[i].Timestamp) > 5*time.Millisecond {
			evs[i], evs[i+1] = evs[i+1], evs[i]
			break
		}
	}
	return evs, err
}

// lateDeliveryBus holds back every subscription's 10th live event and
// delivers it after the 11th, as a subscriber fed by two racing sources
// (catch-up and live) would.
type lateDeliveryBus struct{ impl.Bus }

func (b lateDeliveryBus) Subscribe(ctx context.Context, flow, after string) (<-chan impl.Event, error) {
	in, err := b.Bus.Subscribe(ctx, flow, after)
	if err != nil {
		return nil, err
	}
	out := make(chan impl.Event)
	go func() {
		defer close(out)
		n := 0
		var held *impl.Event
		for e := range in {
			n++
			if n == 10 {
				held = &e
				continue
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
			if held != nil {
				select {
				case out <- *held:
				case <-ctx.Done():
					return
				}
				held = nil
			}
		}
	}()
	return out, nil
}

// orderSpec has subscribers on the bus (no HTTP service: the layer's
// Subscribe is what they read) next to two interleaved publishers.
const orderSpec = `name: mutation_order
description: two publishers interleaved on each flow, one subscriber per flow
config:
  probe_interval: 100ms
workload:
  duration: 3s
  publish: {rate: 200, flows: 2, publishers: 2}
checks:
  - name: lost
  - name: duplicated
  - name: reordered
  - name: budget
`

// TestOrderMutationsCaught: a swap of neighbouring events of two
// publishers in history, and a delivery held back past its successor, both
// passed the per-publisher rule; the real-time rule and the delivery order
// rule of the reordered check must fail them, and no other check needs to.
func TestOrderMutationsCaught(t *testing.T) {
	needRedis(t)
	tests := []struct {
		name, metric string
		wrap         func(l *impl.Layer)
		sse          bool
	}{
		{"neighbours swapped", "reordered_realtime", func(l *impl.Layer) { l.Bus = neighbourBus{l.Bus} }, false},
		{"delivery held back", "delivery_reordered", func(l *impl.Layer) { l.Bus = lateDeliveryBus{l.Bus} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := mutant(tt.wrap)
			spec, err := Parse("mutation_order.yaml", []byte(orderSpec), DefaultKnown(reg))
			if err != nil {
				t.Fatal(err)
			}
			if tt.sse {
				spec.Workload.SSE = SSE{Clients: 1, Flows: 2}
			}
			deps := DefaultDeps()
			deps.Service = nil // subscribers read the layer's Subscribe directly
			o := runSpecDeps(t, spec, "mutant", reg, deps)
			for _, r := range o.Results {
				switch {
				case r.Check == "reordered":
					if r.Verdict != verdict.Fail || !errors.Is(r.Err, check.ErrReordered) || r.Metrics[tt.metric] == 0 {
						t.Errorf("check reordered: got %s (%v, %s = %v); want FAIL: %v", r.Verdict, r.Err, tt.metric, r.Metrics[tt.metric], check.ErrReordered)
					}
				case r.Verdict == verdict.Fail:
					t.Errorf("check %s: got FAIL (%v); want only reordered to catch this mutant", r.Check, r.Err)
				}
			}
		})
	}
}
