package gate

import (
	"errors"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/scenarios"
	"github.com/gonogo/harness/scenarios/check"
)

// checkGuarantee maps each check to the DESIGN.md guarantee it judges.
var checkGuarantee = map[string]int{
	"budget": 1, "fallback_time": 1,
	"lost":       2,
	"duplicated": 3, "reordered": 3,
	"delivery":     4,
	"registry":     5,
	"stale_read":   6,
	"recover_time": 7,
	"health":       8,
	"round_trips":  9,
}

// scenarioModel maps one scenario run into the report model: its checks
// with their metrics and evidence, its fault windows and time series from
// the saved history, and the anomalies its evidence names. A run whose load
// before the first fault was below target, or that was not run because its
// target could not offer what it needs, is marked inconclusive.
func scenarioModel(name string, o scenarios.Outcome, h history.History) (reports.Scenario, []reports.Anomaly) {
	s := reports.Scenario{Name: name, Profile: o.Profile, Verdict: o.Verdict, DurationMs: reports.Ms(o.Elapsed)}
	var anomalies []reports.Anomaly
	for _, r := range o.Results {
		c := reports.Check{Name: r.Check, Guarantee: checkGuarantee[r.Check], Verdict: r.Verdict,
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
		anomalies = append(anomalies, anomaliesOf(name, r.Evidence)...)
	}
	if why := h.Meta[scenarios.MetaUnavailable]; why != "" {
		s.Inconclusive = "not run: " + why
	}
	for _, f := range h.Faults {
		s.Faults = append(s.Faults, reports.FaultFrom(f))
	}
	s.Series = reports.SeriesFrom(h, seriesBucket(h.End))
	return s, mergeAnomalies(anomalies)
}

// seriesBucket splits a run of length d into about 40 buckets of a round
// length (at least 100 ms).
func seriesBucket(d time.Duration) time.Duration {
	return max(100*time.Millisecond, (d / 40).Round(50*time.Millisecond))
}

// anomalyRE finds the event an evidence line names, by the anomaly kind it
// reports (the checkers' evidence formats).
var anomalyRE = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"lost", regexp.MustCompile(`^event (\S+) \(seq \d+.*missing from the history read`)},
	{"undelivered", regexp.MustCompile(`^event (\S+) \(.*never delivered to`)},
	{"duplicate", regexp.MustCompile(`^event (\S+) (?:appears|delivered) \d+ times`)},
	{"late", regexp.MustCompile(`^event (\S+) delivered to \S+ at .* after its publish`)},
	{"reordered", regexp.MustCompile(`^flow \S+ publisher \S+: event (\S+) \(seq`)},
}

// cappedRE is the line a checker ends capped evidence with.
var cappedRE = regexp.MustCompile(`^… and (\d+) more$`)

// anomaliesOf lists the event ids evidence lines name, by kind. Evidence is
// capped: an anomaly then says how many more lines were left out.
func anomaliesOf(scenario string, evidence []string) []reports.Anomaly {
	var out []reports.Anomaly
	byKind := map[string]int{}
	last := -1
	for _, line := range evidence {
		if m := cappedRE.FindStringSubmatch(line); m != nil && last >= 0 {
			out[last].Detail = "evidence capped: " + m[1] + " more lines not listed"
			continue
		}
		for _, a := range anomalyRE {
			m := a.re.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			i, ok := byKind[a.kind]
			if !ok {
				i = len(out)
				byKind[a.kind] = i
				out = append(out, reports.Anomaly{Scenario: scenario, Kind: a.kind})
			}
			out[i].IDs = append(out[i].IDs, m[1])
			last = i
			break
		}
	}
	return out
}

// mergeAnomalies folds anomalies of the same scenario and kind (found by
// different checks) into one, each id once.
func mergeAnomalies(as []reports.Anomaly) []reports.Anomaly {
	var out []reports.Anomaly
	at := map[string]int{}
	for _, a := range as {
		i, ok := at[a.Kind]
		if !ok {
			at[a.Kind] = len(out)
			a.IDs = slices.Compact(sortedCopy(a.IDs))
			out = append(out, a)
			continue
		}
		out[i].IDs = slices.Compact(sortedCopy(append(out[i].IDs, a.IDs...)))
		out[i].Detail = strings.Trim(out[i].Detail+"; "+a.Detail, "; ")
	}
	return out
}

func sortedCopy(xs []string) []string {
	out := slices.Clone(xs)
	sort.Strings(out)
	return out
}
