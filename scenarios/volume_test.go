package scenarios

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/scenarios/check"
)

// fallbackDropBus acknowledges every 500th publish made while the layer
// serves from memory without keeping it: a loss too rare to show in the
// few hundred fallback acknowledgements of the other scenarios.
type fallbackDropBus struct {
	impl.Bus
	mode func() string
	n    atomic.Int64
}

func (b *fallbackDropBus) Publish(ctx context.Context, e impl.Event) error {
	if b.mode() == "memory" && b.n.Add(1)%500 == 250 {
		return nil
	}
	return b.Bus.Publish(ctx, e)
}

// TestVolumeCatchesRareFallbackLoss: the volume scenario acknowledges
// thousands of events from memory, so a loss of 1 in 500 of them fails the
// lost check, which states how rare a loss it could have seen. The load
// bound is lifted: under the race detector the run publishes below its
// target rate, and what it does publish still suffices.
func TestVolumeCatchesRareFallbackLoss(t *testing.T) {
	needRedis(t)
	t.Parallel()
	reg := mutant(func(l *impl.Layer) { l.Bus = &fallbackDropBus{Bus: l.Bus, mode: l.Manager.Mode} })
	spec, err := Load("volume", DefaultKnown(reg))
	if err != nil {
		t.Fatal(err)
	}
	spec.Bounds.MinLoad = -1
	o := runSpec(t, spec, "mutant", reg, 1)
	r, _ := result(o, "lost")
	if r.Verdict != verdict.Fail || !errors.Is(r.Err, check.ErrLost) {
		t.Errorf("check lost: got %s (%v); want FAIL: %v", r.Verdict, r.Err, check.ErrLost)
	}
	if r.Metrics["lost_detectable_1_in_memory"] < 100 || r.Sensitivity == "" {
		t.Errorf("lost sensitivity: %v, %q; want at least 1 in 100 from memory, stated", r.Metrics["lost_detectable_1_in_memory"], r.Sensitivity)
	}
}
