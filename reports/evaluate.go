package reports

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/gonogo/harness/internal/verdict"
)

// Measurement is the evidence for one metric.
type Measurement struct {
	Stat
	// Missing, when set, says why there is no trustworthy evidence (the
	// scenario did not run, quota exhausted, load below target); criteria on
	// the metric are then INCONCLUSIVE.
	Missing  string   `json:"missing,omitempty"`
	Evidence []string `json:"evidence,omitempty"`
}

// Measurements maps a criterion metric name (scenario:…, check:…, bench:…,
// env:…) to its evidence.
type Measurements map[string]Measurement

// Measure collects every metric a run's scenarios, checks, benchmarks and
// environment produced, under the names criteria use:
//
//   - scenario:<s>:<m> for each Scenario.Metrics entry, and for each check
//     metric not also in Scenario.Metrics (first check wins); the metrics of
//     a check that reached no verdict (INCONCLUSIVE) are missing evidence;
//   - check:<s>:<c> as 1 for PASS and 0 for FAIL (any other verdict is
//     missing evidence), with the check's evidence;
//   - bench:<op>:<field> for benchmarks of the run's profile (or of any
//     profile when Environment.Profile is empty);
//   - sweep:<param>:<op>:<field> for sweeps (see measureSweeps);
//   - env:tls, env:remote (1 or 0) and env:rtt_ms.
//
// A scenario or benchmark marked Inconclusive makes all of its metrics
// missing, with that reason.
func Measure(r Run) Measurements {
	m := Measurements{}
	for _, s := range r.Scenarios {
		evidence := scenarioEvidence(r, s)
		put := func(name string, st Stat, ev []string) {
			mm := Measurement{Stat: st, Evidence: ev, Missing: s.Inconclusive}
			if mm.Missing != "" {
				mm.Missing = "scenario " + s.Name + ": " + mm.Missing
			}
			m[name] = mm
		}
		for k, st := range s.Metrics {
			put("scenario:"+s.Name+":"+k, st, evidence)
		}
		for _, c := range s.Checks {
			ev := prefixed("check "+c.Name+": ", c.Evidence)
			judged := c.Verdict == verdict.Pass || c.Verdict == verdict.Fail
			unjudged := fmt.Sprintf("check %s of scenario %s is %s", c.Name, s.Name, orNone(string(c.Verdict)))
			if c.Error != "" {
				unjudged += ": " + firstLine(c.Error)
			}
			missing := func(name string) {
				if mm := m[name]; mm.Missing == "" {
					mm.Missing = unjudged
					m[name] = mm
				}
			}
			for k, v := range c.Metrics {
				name := "scenario:" + s.Name + ":" + k
				if _, done := m[name]; !done {
					put(name, Value(v), slices.Concat(ev, evidence))
					if !judged {
						missing(name)
					}
				}
			}
			name := "check:" + s.Name + ":" + c.Name
			switch c.Verdict {
			case verdict.Pass:
				put(name, Value(1), ev)
			case verdict.Fail:
				put(name, Value(0), ev)
			default:
				put(name, Stat{}, ev)
				missing(name)
			}
		}
	}
	for _, b := range r.Benchmarks {
		if r.Environment.Profile != "" && b.Profile != "" && b.Profile != r.Environment.Profile {
			continue
		}
		missing := ""
		if b.Inconclusive != "" {
			missing = "benchmark " + b.Op + ": " + b.Inconclusive
		}
		ev := []string{fmt.Sprintf("benchmark %s: %s ops at %s ops/s, %d errors", b.Op, fmtNum(float64(b.Latency.Count)), fmtNum(b.OpsPerSec), b.Errors)}
		for field, st := range map[string]Stat{
			"latency_ms":         b.Latency,
			"ops_per_sec":        Value(b.OpsPerSec),
			"round_trips_per_op": Value(b.RoundTripsPerOp),
			"commands_per_op":    Value(b.CommandsPerOp),
			"bytes_out_per_op":   Value(b.BytesOutPerOp),
			"bytes_in_per_op":    Value(b.BytesInPerOp),
			"errors":             Value(float64(b.Errors)),
		} {
			m["bench:"+b.Op+":"+field] = Measurement{Stat: st, Missing: missing, Evidence: ev}
		}
		for field, v := range b.serverSide() {
			mm := Measurement{Missing: missing, Evidence: ev}
			if v == nil && missing == "" {
				mm.Missing = "benchmark " + b.Op + ": " + field + " not measured (the target did not answer INFO commandstats or CLIENT LIST)"
			} else if v != nil {
				mm.Stat = Value(*v)
			}
			m["bench:"+b.Op+":"+field] = mm
		}
	}
	measureSweeps(r, m)
	costMeasurements(m, r.Cost, r.Environment.Profile)
	env := r.Environment
	m["env:tls"] = Measurement{Stat: Value(b2f(env.TLS)), Evidence: []string{"target TLS: " + onOff(env.TLS)}}
	m["env:remote"] = Measurement{Stat: Value(b2f(env.Remote())), Evidence: []string{"target kind: " + orNone(env.TargetKind)}}
	m["env:rtt_ms"] = Measurement{Stat: Value(env.RTTMs)}
	return m
}

// scenarioEvidence is what every metric of s carries: its fault windows
// and its anomalies.
func scenarioEvidence(r Run, s Scenario) []string {
	var ev []string
	for _, f := range s.Faults {
		ev = append(ev, fmt.Sprintf("fault %s from %s to %s", f.Name, fmtMs(f.StartMs), fmtMs(f.EndMs)))
	}
	for _, a := range r.Anomalies {
		if a.Scenario == s.Name && len(a.IDs) > 0 {
			ev = append(ev, fmt.Sprintf("%d %s: %s", len(a.IDs), a.Kind, elide(a.IDs, 10)))
		}
	}
	return ev
}

// Evaluate judges each criterion of g against what was measured, in the
// gate's order. A criterion is INCONCLUSIVE when its metric was not
// measured, its evidence is marked missing, it has fewer samples than it
// needs, or it is a precondition that does not hold; otherwise PASS or FAIL.
func Evaluate(g Gate, measured Measurements) []CriterionResult {
	out := make([]CriterionResult, 0, len(g.Criteria))
	for _, c := range g.Criteria {
		out = append(out, evaluate(c, measured))
	}
	return out
}

func evaluate(c Criterion, measured Measurements) CriterionResult {
	r := CriterionResult{Criterion: c, Verdict: verdict.Inconclusive}
	m, ok := measured[c.Metric]
	if !ok {
		r.Reason = "not measured: nothing in this run produced " + c.Metric
		return r
	}
	r.Evidence = m.Evidence
	if m.Missing != "" {
		r.Reason = m.Missing
		return r
	}
	r.Samples = m.Count
	if need := c.minSamples(); m.Count < need {
		r.Reason = fmt.Sprintf("too few samples: %d, %s needs at least %d", m.Count, c.Aggregation, need)
		return r
	}
	v, _ := m.Get(c.Aggregation)
	r.Measured = v
	r.Margin = margin(c.Comparator, v, c.Bound)
	if c.Bound != 0 {
		pct := 100 * r.Margin / math.Abs(c.Bound)
		r.MarginPct = &pct
	}
	holds := compare(c.Comparator, v, c.Bound)
	measuredText := fmt.Sprintf("%s = %s", c.Expr(), withUnit(v, c.Unit))
	switch {
	case holds:
		r.Verdict = verdict.Pass
		r.Reason = measuredText + ", " + c.Threshold()
	case c.Precondition:
		r.Reason = "precondition not met: " + measuredText + ", not " + c.Threshold()
	default:
		r.Verdict = verdict.Fail
		r.Reason = measuredText + ", not " + c.Threshold()
	}
	return r
}

// compare reports whether v cmp bound holds.
func compare(cmp string, v, bound float64) bool {
	switch cmp {
	case "<":
		return v < bound
	case "<=":
		return v <= bound
	case ">":
		return v > bound
	case ">=":
		return v >= bound
	case "==":
		return v == bound
	}
	return false
}

// margin is the signed distance of v from bound: positive on the side the
// comparator wants, negative on the other; for == it is -|v - bound|.
func margin(cmp string, v, bound float64) float64 {
	switch cmp {
	case "<", "<=":
		return bound - v
	case ">", ">=":
		return v - bound
	}
	return -math.Abs(v - bound)
}

// Judge evaluates gate g over what r measured and sets r's gate, criteria
// and verdict: the fold of the criteria's verdicts, said of a gate run
// (INCOMPLETE when the run was interrupted; no criteria is INCONCLUSIVE).
func (r *Run) Judge(g Gate) {
	r.Gate = g.Name
	r.GateDescription = g.Description
	r.Criteria = Evaluate(g, Measure(*r))
	vs := make([]verdict.Verdict, len(r.Criteria))
	for i, c := range r.Criteria {
		vs[i] = c.Verdict
	}
	r.Verdict = verdict.Fold(vs...).Gate(r.Interrupted)
}

// criteriaWith returns the results with verdict v.
func criteriaWith(results []CriterionResult, v verdict.Verdict) []CriterionResult {
	var out []CriterionResult
	for _, r := range results {
		if r.Verdict == v {
			out = append(out, r)
		}
	}
	return out
}

func prefixed(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + x
	}
	return out
}

// elide joins up to n ids and says how many more there were.
func elide(ids []string, n int) string {
	s := append([]string(nil), ids...)
	sort.Strings(s)
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(" … (%d more)", len(s)-n)
}

// firstLine is s up to its first line break.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
