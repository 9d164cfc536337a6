package check

import (
	"errors"
	"testing"

	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
)

func TestRoundTrips(t *testing.T) {
	ops := []history.Op{pub("p0", "f1", 1, 0.1, 0.11, true), pub("p0", "f1", 2, 0.2, 0.21, true)}
	withMeta := func(rt, cmds string) history.History {
		h := hist(nil, ops...)
		h.Meta = map[string]string{"counter.publish.round_trips": rt, "counter.publish.commands": cmds}
		return h
	}
	for _, tt := range []struct {
		name    string
		h       history.History
		verdict verdict.Verdict
		err     error
		rt      float64
	}{
		{"one per publish", withMeta("2", "4"), verdict.Pass, nil, 1},
		{"within the slack", withMeta("2.1", "4"), verdict.Pass, nil, 1.05},
		{"three per publish", withMeta("6", "6"), verdict.Fail, ErrRoundTrips, 3},
		{"no counts", hist(nil, ops...), verdict.Inconclusive, ErrNoData, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := RoundTrips(tt.h, Config{})
			if r.Verdict != tt.verdict || !errors.Is(r.Err, tt.err) || (tt.err == nil) != (r.Err == nil) {
				t.Fatalf("got %s (%v); want %s (%v)", r.Verdict, r.Err, tt.verdict, tt.err)
			}
			if tt.rt > 0 && r.Metrics["round_trips_publish"] != tt.rt {
				t.Errorf("round_trips_publish: got %g; want %g", r.Metrics["round_trips_publish"], tt.rt)
			}
			if r.Guarantee != ErrRoundTrips.Error() || GuaranteeNumber(r.Check) != 9 {
				t.Errorf("guarantee %q, number %d; want the round-trip guarantee, 9", r.Guarantee, GuaranteeNumber(r.Check))
			}
		})
	}
}
