package reports

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gonogo/harness/internal/verdict"
)

// NoiseRule states when a metric moved beyond noise; Compare applies it.
const NoiseRule = "a metric moved when |new − old| > max(10 % of |old|, a floor per unit: 1 ms, 1 percentage point, 0 otherwise)"

// Trend compares a run with the previous run of the same gate.
type Trend struct {
	PreviousID      string          `json:"previous_id"`
	PreviousVerdict verdict.Verdict `json:"previous_verdict"`
	Flipped         []Flip          `json:"flipped,omitempty"`
	Moved           []Move          `json:"moved,omitempty"`
	Rule            string          `json:"rule"`
}

// Flip is a criterion whose verdict changed.
type Flip struct {
	ID   string          `json:"id"`
	Expr string          `json:"expr"`
	From verdict.Verdict `json:"from"`
	To   verdict.Verdict `json:"to"`
}

// Move is a metric that moved beyond noise.
type Move struct {
	Metric string  `json:"metric"`
	Unit   string  `json:"unit,omitempty"`
	Old    float64 `json:"old"`
	New    float64 `json:"new"`
	Delta  float64 `json:"delta"`
	// DeltaPct is Delta as a percentage of |Old|; nil when Old is 0.
	DeltaPct *float64 `json:"delta_pct,omitempty"`
	// Better says whether it moved the way that is good (lower latency,
	// higher throughput, toward or past the criterion's bound).
	Better bool `json:"better"`
}

// noiseFloor is the smallest change worth reporting, per unit.
func noiseFloor(unit string) float64 {
	switch unit {
	case "ms", "%":
		return 1
	}
	return 0
}

// beyondNoise applies NoiseRule.
func beyondNoise(old, cur float64, unit string) bool {
	return math.Abs(cur-old) > max(0.1*math.Abs(old), noiseFloor(unit))
}

// trendValue is one comparable number of a run.
type trendValue struct {
	unit string
	v    float64
	// better reports whether going from a to b is an improvement.
	better func(a, b float64) bool
}

func lower(a, b float64) bool  { return b < a }
func higher(a, b float64) bool { return b > a }

// trendValues collects a run's comparable numbers: each judged criterion's
// measured value (but not check: and env: yes/no values, whose change is a
// flip), and each benchmark's latency, throughput, round trips and
// commands per op.
func trendValues(r Run) (map[string]trendValue, []string) {
	vals := map[string]trendValue{}
	var order []string
	add := func(k string, v trendValue) {
		if _, dup := vals[k]; !dup {
			order = append(order, k)
		}
		vals[k] = v
	}
	for _, c := range r.Criteria {
		cr := c.Criterion
		if (c.Verdict != verdict.Pass && c.Verdict != verdict.Fail) || strings.HasPrefix(cr.Metric, "check:") || strings.HasPrefix(cr.Metric, "env:") {
			continue // unmeasured, or a yes/no whose change is a flip
		}
		better := lower
		switch cr.Comparator {
		case ">", ">=":
			better = higher
		case "==":
			better = func(a, b float64) bool { return math.Abs(b-cr.Bound) < math.Abs(a-cr.Bound) }
		}
		add(cr.ID+": "+cr.Expr(), trendValue{cr.Unit, c.Measured, better})
	}
	for _, b := range r.Benchmarks {
		suffix := ""
		if b.Profile != "" {
			suffix = " [" + b.Profile + "]"
		}
		p := "bench:" + b.Op + ":"
		add("p50("+p+"latency_ms)"+suffix, trendValue{"ms", b.Latency.P50, lower})
		add("p99("+p+"latency_ms)"+suffix, trendValue{"ms", b.Latency.P99, lower})
		add(p+"ops_per_sec"+suffix, trendValue{"ops/s", b.OpsPerSec, higher})
		add(p+"round_trips_per_op"+suffix, trendValue{"", b.RoundTripsPerOp, lower})
		add(p+"commands_per_op"+suffix, trendValue{"", b.CommandsPerOp, lower})
		if v := b.ServerCommandsPerOp; v != nil {
			add(p+"server_commands_per_op"+suffix, trendValue{"", *v, lower})
		}
		add(p+"bytes_out_per_op"+suffix, trendValue{"B", b.BytesOutPerOp, lower})
		add(p+"bytes_in_per_op"+suffix, trendValue{"B", b.BytesInPerOp, lower})
	}
	return vals, order
}

// Compare reports what changed from old to cur: criteria whose verdict
// flipped, and metrics that moved beyond noise (NoiseRule: |Δ| > max(10 % of
// |old|, 1 ms for ms, 1 point for %, 0 otherwise)).
func Compare(old, cur Run) Trend {
	t := Trend{PreviousID: old.ID, PreviousVerdict: old.Verdict, Rule: NoiseRule}
	was := map[string]verdict.Verdict{}
	for _, c := range old.Criteria {
		was[c.Criterion.ID] = c.Verdict
	}
	for _, c := range cur.Criteria {
		if from, ok := was[c.Criterion.ID]; ok && from != c.Verdict {
			t.Flipped = append(t.Flipped, Flip{ID: c.Criterion.ID, Expr: c.Criterion.Expr(), From: from, To: c.Verdict})
		}
	}
	ov, _ := trendValues(old)
	nv, order := trendValues(cur)
	for _, k := range order {
		o, ok := ov[k]
		n := nv[k]
		if !ok || !beyondNoise(o.v, n.v, n.unit) {
			continue
		}
		mv := Move{Metric: k, Unit: n.unit, Old: o.v, New: n.v, Delta: n.v - o.v, Better: n.better(o.v, n.v)}
		if o.v != 0 {
			pct := 100 * mv.Delta / math.Abs(o.v)
			mv.DeltaPct = &pct
		}
		t.Moved = append(t.Moved, mv)
	}
	return t
}

// Previous finds the newest run in the reports directory dir that started
// before cur (by run id), judged the same gate (any gate when cur.Gate is
// empty) and tested the same profile (any when cur's Environment.Profile is
// empty) of the same implementation: a seed run is not the baseline of a
// hardened one, nor a service reached by URL that of the in-process
// profile. Directories
// that are not run ids, or whose report.json does not load, are skipped.
// ok is false when there is none.
func Previous(dir string, cur Run) (prev Run, ok bool, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("find previous run: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && IsRunID(e.Name()) && e.Name() < cur.ID {
			ids = append(ids, e.Name())
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	for _, id := range ids {
		r, err := LoadRun(filepath.Join(dir, id, ReportJSON))
		if err != nil || (cur.Gate != "" && r.Gate != cur.Gate) ||
			(cur.Environment.Profile != "" && r.Environment.Profile != cur.Environment.Profile) ||
			r.Environment.Implementation != cur.Environment.Implementation {
			continue
		}
		return r, true, nil
	}
	return Run{}, false, nil
}
