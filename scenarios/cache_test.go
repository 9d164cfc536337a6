package scenarios

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/scenarios/check"
)

// nearCache keeps a copy of every state this instance filled and serves it
// before asking Redis; an invalidation drops only this instance's copy, as
// a per-instance cache in front of the shared one would.
type nearCache struct {
	impl.Cache
	mu    sync.Mutex
	local map[string]map[string]any
}

func (c *nearCache) Get(ctx context.Context, flow string) (impl.Entry, error) {
	c.mu.Lock()
	st, ok := c.local[flow]
	c.mu.Unlock()
	if ok {
		return impl.Entry{State: maps.Clone(st), Hit: true}, nil
	}
	return c.Cache.Get(ctx, flow)
}

func (c *nearCache) Set(ctx context.Context, flow string, state map[string]any, status, lease string) error {
	err := c.Cache.Set(ctx, flow, state, status, lease)
	if err == nil {
		c.mu.Lock()
		c.local[flow] = maps.Clone(state)
		c.mu.Unlock()
	}
	return err
}

func (c *nearCache) Invalidate(ctx context.Context, flow string) error {
	c.mu.Lock()
	delete(c.local, flow)
	c.mu.Unlock()
	return c.Cache.Invalidate(ctx, flow)
}

// TestNearCacheCaught: a cache that invalidates only on the instance that
// was told passed every scenario while none sent cache traffic to two
// instances; cache_instances must fail it on stale_read, and no other
// check needs to.
func TestNearCacheCaught(t *testing.T) {
	needRedis(t)
	t.Parallel()
	reg := mutant(func(l *impl.Layer) { l.Cache = &nearCache{Cache: l.Cache, local: map[string]map[string]any{}} })
	spec, err := Load("cache_instances", DefaultKnown(reg))
	if err != nil {
		t.Fatal(err)
	}
	o := runSpec(t, spec, "mutant", reg, 1)
	for _, r := range o.Results {
		switch {
		case r.Check == "stale_read":
			if r.Verdict != verdict.Fail || !errors.Is(r.Err, check.ErrStaleRead) {
				t.Errorf("check stale_read: got %s (%v); want FAIL: %v", r.Verdict, r.Err, check.ErrStaleRead)
			}
		case r.Verdict == verdict.Fail:
			t.Errorf("check %s: got FAIL (%v); want only stale_read to catch this mutant", r.Check, r.Err)
		}
	}
}
