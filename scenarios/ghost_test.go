package scenarios

import (
	"context"
	"errors"
	"testing"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/scenarios/check"
)

// lateUnregister acknowledges an unregister without removing the
// connection, which then lingers until its TTL runs out, as a registry
// that only stops heartbeating on unregister would.
type lateUnregister struct{ impl.Registry }

func (lateUnregister) Unregister(context.Context, string) error { return nil }

// TestLateUnregisterCaught: with the test TTL of 1 s such a ghost is gone
// within TTL + cleanup, which the lingered rule allows; the registry
// check's ghost rule must fail it (after an unregister returns, no lookup
// may list the connection), and the count check with it (the ghost is
// counted); nothing else may fail.
func TestLateUnregisterCaught(t *testing.T) {
	needRedis(t)
	t.Parallel()
	reg := mutant(func(l *impl.Layer) { l.Registry = lateUnregister{l.Registry} })
	spec, err := Parse("mutation_count.yaml", []byte(countSpec), DefaultKnown(reg))
	if err != nil {
		t.Fatal(err)
	}
	o := runSpec(t, spec, "mutant", reg, 1)
	want := map[string]error{"registry": check.ErrGhost, "registry_count": check.ErrCountMismatch}
	for _, r := range o.Results {
		if w, ok := want[r.Check]; ok {
			if r.Verdict != verdict.Fail || !errors.Is(r.Err, w) {
				t.Errorf("check %s: got %s (%v); want FAIL: %v", r.Check, r.Verdict, r.Err, w)
			}
			continue
		}
		if r.Verdict == verdict.Fail {
			t.Errorf("check %s: got FAIL (%v); want only registry and registry_count to catch this mutant", r.Check, r.Err)
		}
	}
}
