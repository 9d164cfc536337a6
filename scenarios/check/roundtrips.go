package check

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
)

// ErrRoundTrips is the guarantee the round_trips check judges.
var ErrRoundTrips = errors.New("a publish, a cache read and a registry lookup must each take one Redis round trip")

// roundTripKinds are the op kinds held to one round trip each.
var roundTripKinds = []string{history.Publish, history.CacheGet, history.RegLookup}

// roundTripSlack tolerates the odd retry on a healthy server.
const roundTripSlack = 1.05

// roundTripMetrics are the metrics RoundTrips produces.
func roundTripMetrics() []Metric {
	var out []Metric
	for _, k := range roundTripKinds {
		out = append(out,
			Metric{"round_trips_" + k, "count", "round_trips", "Redis round trips per " + k + " call (the engine's counts)"},
			Metric{"commands_" + k, "count", "round_trips", "Redis commands per " + k + " call (the engine's counts)"})
	}
	return out
}

// RoundTrips judges ErrRoundTrips from the counts the engine saved in the
// history's meta (counter.<kind>.round_trips and .commands) divided by the
// number of recorded ops of that kind. Commands per op are reported too
// (Upstash bills per command).
func RoundTrips(h history.History, _ Config) Result {
	r := result("round_trips", ErrRoundTrips.Error())
	n := map[string]int{}
	for _, o := range h.Ops {
		n[o.Kind]++
	}
	var fails []error
	judged := 0
	for _, k := range roundTripKinds {
		rt, err1 := strconv.ParseFloat(h.Meta["counter."+k+".round_trips"], 64)
		cmds, err2 := strconv.ParseFloat(h.Meta["counter."+k+".commands"], 64)
		if n[k] == 0 || err1 != nil || err2 != nil {
			continue
		}
		judged++
		per := rt / float64(n[k])
		r.Metrics["round_trips_"+k] = per
		r.Metrics["commands_"+k] = cmds / float64(n[k])
		if per > roundTripSlack {
			fails = append(fails, fmt.Errorf("%w: %s takes %.2f", ErrRoundTrips, k, per))
			r.Evidence = append(r.Evidence, fmt.Sprintf("%s: %.0f round trips carrying %.0f commands for %d calls (%.2f round trips, %.2f commands per call)", k, rt, cmds, n[k], per, cmds/float64(n[k])))
		}
	}
	switch {
	case len(fails) > 0:
		r.Verdict, r.Err = verdict.Fail, errors.Join(fails...)
	case judged == 0:
		r.Verdict, r.Err = verdict.Inconclusive, fmt.Errorf("%w: no round-trip counts for publish, cache_get or reg_lookup", ErrNoData)
	default:
		r.Verdict = verdict.Pass
	}
	return r
}
