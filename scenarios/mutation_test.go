package scenarios

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/scenarios/check"
)

// mutationSpec drives every component enough for each mutation to show:
// over 1000 publishes, cache reads after invalidations, heartbeating
// registry connections past their TTL.
const mutationSpec = `name: mutation
description: every component under load, no fault
config:
  probe_interval: 100ms
  registry_ttl: 1s
  cleanup_interval: 250ms
workload:
  duration: 4s
  publish: {rate: 300, flows: 4, publishers: 2}
  cache: {rate: 200, write_ratio: 0.2, flows: 2}
  registry: {connections: 4, heartbeat: 200ms}
checks:
  - name: lost
  - name: duplicated
  - name: reordered
  - name: registry
  - name: stale_read
  - name: budget
`

// Broken implementations: each wraps the hardened layer and breaks one
// guarantee the way a real bug would.

// dropBus acknowledges its 500th publish without storing it (1 in 1000).
type dropBus struct {
	impl.Bus
	n atomic.Int64
}

func (b *dropBus) Publish(ctx context.Context, e impl.Event) error {
	// The 50th of every 1000: a loaded machine that publishes far fewer
	// than the spec's 1,200 events still reaches it.
	if b.n.Add(1)%1000 == 50 {
		return nil
	}
	return b.Bus.Publish(ctx, e)
}

// dupBus returns one event twice from history, as a non-idempotent outbox
// replay would have stored it.
type dupBus struct{ impl.Bus }

func (b dupBus) History(ctx context.Context, flow string, count int, since time.Time) ([]impl.Event, error) {
	evs, err := b.Bus.History(ctx, flow, count, since)
	if len(evs) > 10 {
		evs = slices.Insert(evs, 6, evs[5])
	}
	return evs, err
}

// reorderBus swaps two events of one publisher in history.
type reorderBus struct{ impl.Bus }

func (b reorderBus) History(ctx context.Context, flow string, count int, since time.Time) ([]impl.Event, error) {
	evs, err := b.Bus.History(ctx, flow, count, since)
	for i := 5; i < len(evs); i++ {
		if j := slices.IndexFunc(evs[i+1:], func(e impl.Event) bool { return e.Source == evs[i].Source }); j >= 0 {
			evs[i], evs[i+1+j] = evs[i+1+j], evs[i]
			break
		}
	}
	return evs, err
}

// blockBus makes every 50th publish wait 1.5 s, past any budget (also the
// race-scaled one).
type blockBus struct {
	impl.Bus
	n atomic.Int64
}

func (b *blockBus) Publish(ctx context.Context, e impl.Event) error {
	if b.n.Add(1)%50 == 0 {
		time.Sleep(1500 * time.Millisecond)
	}
	return b.Bus.Publish(ctx, e)
}

// lazyRegistry never refreshes conn-0's TTL on heartbeat.
type lazyRegistry struct{ impl.Registry }

func (r lazyRegistry) Heartbeat(ctx context.Context, id string) error {
	if id == "conn-0" {
		return nil
	}
	return r.Registry.Heartbeat(ctx, id)
}

// deafCache acknowledges invalidations without doing them.
type deafCache struct{ impl.Cache }

func (deafCache) Invalidate(context.Context, string) error { return nil }

// localCount counts only the connections this instance registered and
// did not unregister, as a registry that forgot the other instances
// would; lookups stay right.
type localCount struct {
	impl.Registry
	mu  sync.Mutex
	ids map[string]bool
}

func (r *localCount) Register(ctx context.Context, c impl.Conn) error {
	err := r.Registry.Register(ctx, c)
	r.mu.Lock()
	r.ids[c.ID] = true
	r.mu.Unlock()
	return err
}

func (r *localCount) Unregister(ctx context.Context, id string) error {
	r.mu.Lock()
	delete(r.ids, id)
	r.mu.Unlock()
	return r.Registry.Unregister(ctx, id)
}

func (r *localCount) Count(context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids), nil
}

// mutant registers a profile that builds a hardened layer and breaks it.
func mutant(wrap func(l *impl.Layer)) *impl.Profiles {
	p := &impl.Profiles{}
	p.Register("mutant", func(ctx context.Context, cfg impl.Config) (*impl.Layer, error) {
		l, err := hardened.New(ctx, cfg)
		if err != nil {
			return nil, err
		}
		wrap(l)
		return l, nil
	})
	return p
}

// TestMutationsCaught runs deliberately broken implementations and checks
// that the intended checker fails each with its guarantee.
func TestMutationsCaught(t *testing.T) {
	needRedis(t)
	tests := []struct {
		name  string
		wrap  func(l *impl.Layer)
		check string
		want  error
	}{
		{"drop 1 in 1000", func(l *impl.Layer) { l.Bus = &dropBus{Bus: l.Bus} }, "lost", check.ErrLost},
		{"duplicate on replay", func(l *impl.Layer) { l.Bus = dupBus{l.Bus} }, "duplicated", check.ErrDuplicate},
		{"reorder", func(l *impl.Layer) { l.Bus = reorderBus{l.Bus} }, "reordered", check.ErrReordered},
		{"skip heartbeat refresh", func(l *impl.Layer) { l.Registry = lazyRegistry{l.Registry} }, "registry", check.ErrVanished},
		{"ignore invalidate", func(l *impl.Layer) { l.Cache = deafCache{l.Cache} }, "stale_read", check.ErrStaleRead},
		{"block past budget", func(l *impl.Layer) { l.Bus = &blockBus{Bus: l.Bus} }, "budget", check.ErrBlocked},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := mutant(tt.wrap)
			spec, err := Parse("mutation.yaml", []byte(mutationSpec), DefaultKnown(reg))
			if err != nil {
				t.Fatal(err)
			}
			o := runSpec(t, spec, "mutant", reg, 1)
			r, _ := result(o, tt.check)
			if r.Verdict != verdict.Fail || !errors.Is(r.Err, tt.want) {
				t.Errorf("check %s: got %s (%v); want FAIL: %v", tt.check, r.Verdict, r.Err, tt.want)
			}
		})
	}
}

// countSpec is stale_cleanup's registry traffic on two instances, judged
// by every check that looks at the registry.
const countSpec = `name: mutation_count
description: registry across two instances, no fault
instances: 2
config:
  probe_interval: 100ms
  registry_ttl: 1s
  cleanup_interval: 250ms
workload:
  duration: 3s
  registry: {connections: 6, flows: 2, stop: 2, unregister: 1, stop_at: 1s}
checks:
  - name: registry
  - name: registry_count
  - name: budget
  - name: error_rate
  - name: round_trips
`

// TestCountMutationCaught runs a registry whose Count sees only its own
// instance's connections: the registry_count check must fail it with its
// guarantee, and no other check may fail (lookups are right).
func TestCountMutationCaught(t *testing.T) {
	needRedis(t)
	t.Parallel()
	reg := mutant(func(l *impl.Layer) { l.Registry = &localCount{Registry: l.Registry, ids: map[string]bool{}} })
	spec, err := Parse("mutation_count.yaml", []byte(countSpec), DefaultKnown(reg))
	if err != nil {
		t.Fatal(err)
	}
	o := runSpec(t, spec, "mutant", reg, 1)
	for _, r := range o.Results {
		switch {
		case r.Check == "registry_count":
			if r.Verdict != verdict.Fail || !errors.Is(r.Err, check.ErrCountMismatch) {
				t.Errorf("check registry_count: got %s (%v); want FAIL: %v", r.Verdict, r.Err, check.ErrCountMismatch)
			}
		case r.Verdict == verdict.Fail:
			t.Errorf("check %s: got FAIL (%v); want only registry_count to catch this mutant", r.Check, r.Err)
		}
	}
}

// slowBus pays a second round trip before each publish, under another op's
// tag (a history read), as a layer that reads before it writes would: the
// round-trip count of publishes stays 1.
type slowBus struct{ impl.Bus }

func (b slowBus) Publish(ctx context.Context, e impl.Event) error {
	if _, err := b.Bus.History(ctx, e.FlowID, 1, time.Time{}); err != nil {
		return err
	}
	return b.Bus.Publish(ctx, e)
}

// TestSecondRoundTripCaught runs remote_basic (20 ms RTT) with slowBus:
// the round_trips check cannot see the extra round trip, the latency
// check's p90 bound must.
func TestSecondRoundTripCaught(t *testing.T) {
	needRedis(t)
	t.Parallel()
	reg := mutant(func(l *impl.Layer) { l.Bus = slowBus{l.Bus} })
	spec, err := Load("remote_basic", DefaultKnown(reg))
	if err != nil {
		t.Fatal(err)
	}
	o := runSpec(t, spec, "mutant", reg, 1)
	if r, _ := result(o, "round_trips"); r.Verdict != verdict.Pass {
		t.Errorf("check round_trips: got %s (%v); the extra round trip is tagged history, so it should pass", r.Verdict, r.Err)
	}
	r, _ := result(o, "latency")
	if r.Verdict != verdict.Fail || r.Err == nil || !strings.Contains(r.Err.Error(), "publish_p90_ms") {
		t.Errorf("check latency: got %s (%v); want FAIL on publish_p90_ms", r.Verdict, r.Err)
	}
}

// TestRegistryResyncCaught runs registry_partition (an outage twice the
// registry TTL on two instances) against hardened and against a hardened
// that notices Redis is back only every 3 s, so it writes its
// connections back late: the registry check holds the heartbeats made
// during the outage from its end + Resync, and must pass the first and
// fail the second with ErrVanished.
func TestRegistryResyncCaught(t *testing.T) {
	needRedis(t)
	reg := &impl.Profiles{}
	reg.Register("hardened", hardened.New)
	reg.Register("late-resync", func(ctx context.Context, cfg impl.Config) (*impl.Layer, error) {
		cfg.ProbeInterval = 3 * time.Second
		return hardened.New(ctx, cfg)
	})
	spec, err := Load("registry_partition", DefaultKnown(reg))
	if err != nil {
		t.Fatal(err)
	}
	for profile, want := range map[string]verdict.Verdict{"hardened": verdict.Pass, "late-resync": verdict.Fail} {
		t.Run(profile, func(t *testing.T) {
			t.Parallel()
			o := runSpec(t, spec, profile, reg, 1)
			r, _ := result(o, "registry")
			if r.Verdict != want || (want == verdict.Fail && !errors.Is(r.Err, check.ErrVanished)) {
				t.Errorf("check registry: got %s (%v); want %s", r.Verdict, r.Err, want)
			}
		})
	}
}
