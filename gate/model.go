package gate

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/scenarios"
	"github.com/gonogo/harness/scenarios/check"
)

// scenarioModel maps one scenario run into the report model: its checks
// with their metrics and evidence, its fault windows and time series from
// the saved history, and the anomalies its checkers found. A run whose load
// before the first fault was below target, or that was not run because its
// target could not offer what it needs, is marked inconclusive.
func scenarioModel(name string, o scenarios.Outcome, h history.History) (reports.Scenario, []reports.Anomaly) {
	s := reports.Scenario{Name: name, Profile: o.Profile, Verdict: o.Verdict, DurationMs: reports.Ms(o.Elapsed),
		Timing: o.Timing, Episodes: o.Episodes}
	for _, r := range o.Results {
		c := reports.Check{Name: r.Check, Guarantee: check.GuaranteeNumber(r.Check), Verdict: r.Verdict,
			Error: r.Error, Evidence: r.Evidence, Metrics: r.Metrics, Sensitivity: r.Sensitivity}
		if r.Sensitivity != "" {
			c.Evidence = append(slices.Clip(c.Evidence), "sensitivity: "+r.Sensitivity)
		}
		if r.ReportOnly {
			c.Evidence = append([]string{"reported only: does not decide the scenario's verdict"}, c.Evidence...)
		}
		if errors.Is(r.Err, check.ErrLowLoad) && s.Inconclusive == "" {
			s.Inconclusive = firstLine(r.Error)
		}
		s.Checks = append(s.Checks, c)
	}
	if why := h.Meta[scenarios.MetaUnavailable]; why != "" {
		s.Inconclusive = "not run: " + why
	}
	for _, f := range h.Faults {
		s.Faults = append(s.Faults, reports.FaultFrom(f))
	}
	s.Series = reports.SeriesFrom(h, seriesBucket(h.End))
	return s, anomaliesOf(name, o.Results)
}

// seriesBucket splits a run of length d into about 40 buckets of a round
// length (at least 100 ms).
func seriesBucket(d time.Duration) time.Duration {
	return max(100*time.Millisecond, (d / 40).Round(50*time.Millisecond))
}

// anomaliesOf gathers the anomalies the checkers found, one per kind in
// the order first found, each event id once (sorted) and each event seen
// by an operation once. A result that listed only some says so in the
// detail of the kind it listed last.
func anomaliesOf(scenario string, results []scenarios.Result) []reports.Anomaly {
	var out []reports.Anomaly
	at := map[string]int{}
	seen := map[string]bool{}
	for _, r := range results {
		for _, a := range r.Anomalies {
			i, ok := at[a.Kind]
			if !ok {
				i = len(out)
				at[a.Kind] = i
				out = append(out, reports.Anomaly{Scenario: scenario, Kind: a.Kind})
			}
			if k := a.Kind + "\x00" + a.ID; !seen[k] {
				seen[k] = true
				out[i].IDs = append(out[i].IDs, a.ID)
			}
			if k := fmt.Sprint(a.Kind, "\x00", a.ID, "\x00", a.Op, "\x00", a.At); !seen[k] {
				seen[k] = true
				out[i].Events = append(out[i].Events, reports.AnomalyEvent{ID: a.ID, Op: a.Op, AtMs: reports.Ms(a.At), Expected: a.Expected, Seen: a.Seen})
			}
		}
		if n := len(r.Anomalies); r.AnomaliesLeft > 0 && n > 0 {
			i := at[r.Anomalies[n-1].Kind]
			out[i].Detail = strings.Trim(out[i].Detail+"; "+fmt.Sprintf("%s: %d more not listed", r.Check, r.AnomaliesLeft), "; ")
		}
	}
	for i := range out {
		sort.Strings(out[i].IDs)
	}
	return out
}
