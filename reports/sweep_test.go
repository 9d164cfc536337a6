package reports

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/gonogo/harness/internal/verdict"
)

// decades are sweep sizes 10 to 10,000.
var decades = []float64{10, 100, 1000, 10000}

func curve(xs []float64, f func(x float64) float64) []float64 {
	ys := make([]float64, len(xs))
	for i, x := range xs {
		ys[i] = f(x)
	}
	return ys
}

func TestClassifySyntheticCurves(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	noisy := func(y float64) float64 { return y * (1 + 0.3*(rng.Float64()-0.5)) } // ±15 %
	fine := []float64{10, 30, 100, 300, 1000, 3000, 10000}
	for _, tc := range []struct {
		name   string
		xs, ys []float64
		want   Growth
	}{
		{"constant", decades, curve(decades, func(float64) float64 { return 1 }), Flat},
		{"constant with noise", fine, curve(fine, func(float64) float64 { return noisy(2.5) }), Flat},
		{"latency-like noise (×3 spread over 3 decades)", decades, []float64{1.2, 0.9, 2.1, 2.7}, Flat},
		{"all zero (no errors)", decades, []float64{0, 0, 0, 0}, Flat},
		{"logarithmic", fine, curve(fine, func(x float64) float64 { return 5 + math.Log10(x) }), Flat},
		{"proportional", decades, curve(decades, func(x float64) float64 { return 3 * x }), Linear},
		{"1 + N (seed's lookup)", decades, curve(decades, func(x float64) float64 { return 1 + x }), Linear},
		{"offset + N (memory per instance + per connection)", decades, curve(decades, func(x float64) float64 { return 5e6 + 4e3*x }), Linear},
		{"square root", fine, curve(fine, math.Sqrt), Linear},
		{"N log N", fine, curve(fine, func(x float64) float64 { return x * math.Log(x) }), Linear},
		{"linear with noise", fine, curve(fine, func(x float64) float64 { return noisy(x) }), Linear},
		{"quadratic", decades, curve(decades, func(x float64) float64 { return x * x }), Worse},
		{"N^1.5", fine, curve(fine, func(x float64) float64 { return math.Pow(x, 1.5) }), Worse},
		{"flat, then quadratic at the top", fine, []float64{1, 1, 1, 1, 1, 9, 100}, Worse},
		{"exponential-ish", []float64{1, 2, 4, 8, 16}, []float64{1, 4, 16, 256, 65536}, Worse},
	} {
		got, slope, ok := Classify(tc.xs, tc.ys)
		if !ok || got != tc.want {
			t.Errorf("%s: got %s (slope %.2f, ok %v); want %s", tc.name, got, slope, ok, tc.want)
		}
	}
	if _, _, ok := Classify([]float64{10}, []float64{1}); ok {
		t.Error("one point classified; want not ok")
	}
	if _, _, ok := Classify([]float64{0, -1, 10}, []float64{1, 2, math.NaN()}); ok {
		t.Error("no usable point classified; want not ok")
	}
}

func TestGrowthRankOrders(t *testing.T) {
	if !(Flat.Rank() < Linear.Rank() && Linear.Rank() < Worse.Rank()) {
		t.Errorf("ranks %d %d %d; want increasing", Flat.Rank(), Linear.Rank(), Worse.Rank())
	}
}

// lookupSweep is a registry lookup sweep: round trips 1 + N (seed) or 1.
func lookupSweep(profile string, rt func(x float64) float64) Sweep {
	s := Sweep{Param: "members", Unit: "registry members", Op: "reg_lookup", Profile: profile,
		Promise: map[string]Growth{FieldRoundTrips: Flat}}
	for _, x := range decades {
		s.Points = append(s.Points, SweepPoint{X: x, Values: map[string]float64{FieldRoundTrips: rt(x), FieldP99: 0.5 + x/1000}})
	}
	return s
}

func TestPromiseRunFlagsWorseThanPromised(t *testing.T) {
	good := lookupSweep("hardened", func(float64) float64 { return 1 })
	bad := lookupSweep("seed", func(x float64) float64 { return 1 + x })
	for _, tc := range []struct {
		name   string
		sweeps []Sweep
		want   verdict.Verdict
	}{
		{"flat as promised", []Sweep{good}, verdict.Go},
		{"1 + N round trips", []Sweep{bad}, verdict.NoGo},
		{"both", []Sweep{good, bad}, verdict.NoGo},
	} {
		r := PromiseRun(Run{Sweeps: tc.sweeps})
		if r.Verdict != tc.want {
			t.Errorf("%s: verdict %s; want %s (%+v)", tc.name, r.Verdict, tc.want, r.Criteria)
		}
	}
	r := PromiseRun(Run{Sweeps: []Sweep{bad}})
	if c := r.Criteria[0]; c.Verdict != verdict.Fail || !strings.Contains(c.Reason, "WORSE THAN PROMISED") || c.Measured != 1 {
		t.Errorf("criterion %+v; want FAIL, measured 1 (linear), reason saying worse than promised", c)
	}
	half := good
	half.Points = append([]SweepPoint(nil), good.Points...)
	half.Points[2].Inconclusive = "the layer fell back to memory"
	if r := PromiseRun(Run{Sweeps: []Sweep{half}}); r.Verdict != verdict.Inconclusive {
		t.Errorf("a sweep with an inconclusive point: verdict %s; want INCONCLUSIVE", r.Verdict)
	}
	// A point that only missed its rate leaves its counts standing: the
	// seed's round trips still fail, its latency lacks evidence.
	late := bad
	late.Points = append([]SweepPoint(nil), bad.Points...)
	late.Points[3].Inconclusive, late.Points[3].TimingOnly = "open loop missed its rate", true
	if r := PromiseRun(Run{Sweeps: []Sweep{late}}); r.Verdict != verdict.NoGo {
		t.Errorf("a point late only: verdict %s; want NO-GO on round trips (%+v)", r.Verdict, r.Criteria)
	}
	m := Measure(Run{Sweeps: []Sweep{late}})
	if rt, p99 := m["sweep:members:reg_lookup:round_trips_per_op"], m["sweep:members:reg_lookup:p99_ms"]; rt.Missing != "" || p99.Missing == "" {
		t.Errorf("round trips missing %q, p99 missing %q; want only p99 missing", rt.Missing, p99.Missing)
	}
}

const sweepGates = `version: 1
gates:
  scale:
    description: registry lookups stay one round trip
    sweeps: ["members=10,100,1000,10000"]
    criteria:
      - id: lookup_flat
        metric: sweep:members:reg_lookup:round_trips_per_op
        aggregation: growth
        comparator: "<="
        bound: 0
        why: guarantee 9
      - id: lookup_rt_max
        metric: sweep:members:reg_lookup:round_trips_per_op
        aggregation: max
        comparator: "<="
        bound: 1
        why: guarantee 9
`

func TestGateCriterionOnASweep(t *testing.T) {
	gs, err := ParseGates("g.yaml", []byte(sweepGates))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := gs.Gate("scale")
	if len(g.Sweeps) != 1 || g.Sweeps[0] != "members=10,100,1000,10000" {
		t.Fatalf("sweeps %q", g.Sweeps)
	}
	cat := Catalogue{Sweeps: []string{"members"}}
	if err := gs.Validate(cat.Has); err != nil {
		t.Fatalf("validate: %v", err)
	}
	for _, tc := range []struct {
		profile string
		rt      func(float64) float64
		want    verdict.Verdict
	}{
		{"hardened", func(float64) float64 { return 1 }, verdict.Go},
		{"seed", func(x float64) float64 { return 1 + x }, verdict.NoGo},
	} {
		r := Run{Environment: Environment{Profile: tc.profile}, Sweeps: []Sweep{lookupSweep(tc.profile, tc.rt)}}
		r.Judge(g)
		if r.Verdict != tc.want {
			t.Errorf("%s: %s; want %s (%+v)", tc.profile, r.Verdict, tc.want, r.Criteria)
		}
	}
	// Without the sweep in the run the criteria lack evidence.
	r := Run{Environment: Environment{Profile: "hardened"}}
	r.Judge(g)
	if r.Verdict != verdict.Inconclusive {
		t.Errorf("no sweep measured: %s; want INCONCLUSIVE", r.Verdict)
	}
}

func TestGateSweepMistakesAreBadInput(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"sweep not run", `sweeps: ["members=10,100,1000,10000"]`, `sweeps: ["flows=1,10"]`, "does not run"},
		{"unknown field", "reg_lookup:round_trips_per_op\n        aggregation: growth", "reg_lookup:nope\n        aggregation: growth", "unknown sweep field"},
		{"bad aggregation", "aggregation: max", "aggregation: p99", "growth, max or value"},
		{"growth off a sweep", "metric: sweep:members:reg_lookup:round_trips_per_op\n        aggregation: max", "metric: env:rtt_ms\n        aggregation: growth", "sweep metrics only"},
	} {
		_, err := ParseGates("g.yaml", []byte(strings.Replace(sweepGates, tc.from, tc.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v; want one saying %q", tc.name, err, tc.want)
		}
	}
	gs, _ := ParseGates("g.yaml", []byte(sweepGates))
	if err := gs.Validate(Catalogue{}.Has); err == nil || !strings.Contains(err.Error(), "unknown sweep") {
		t.Errorf("validate against a catalogue without the sweep: %v; want unknown sweep", err)
	}
}

func TestSweepRenderings(t *testing.T) {
	r := PromiseRun(Run{ID: "20261206T000000Z-0000", Sweeps: []Sweep{
		lookupSweep("seed", func(x float64) float64 { return 1 + x }),
		lookupSweep("hardened", func(float64) float64 { return 1 })}})
	page := string(HTML(r))
	for _, want := range []string{"<h2>Sweeps</h2>", "registry members (log scale)", ">10000<", "round_trips_per_op over members",
		"reg_lookup over members (seed)", "WORSE THAN PROMISED"} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Error("report.html has a script")
	}
	// Four decades: the points sit a quarter of the axis apart.
	md := string(Markdown(r))
	for _, want := range []string{"## Sweeps", "| members | p99 ms | RTT/op | note |", "| 10000 | 10.5 | 10001.00 |  |",
		"- round_trips_per_op: linear (slope 1.00; promised flat) — WORSE THAN PROMISED", "- round_trips_per_op: flat (slope 0.00; promised flat)"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}
}

func TestLogXPlotPlacesDecadesEvenly(t *testing.T) {
	svg := logXPlot("t", "x", "y", []plotLine{{label: "a", color: "#000", xs: decades, ys: []float64{1, 1, 1, 1}}})
	var cx []string
	for _, part := range strings.Split(svg, `<circle cx="`)[1:] {
		cx = append(cx, part[:strings.IndexByte(part, '"')])
	}
	want := []string{"64.0", "277.3", "490.7", "704.0"} // padL + k × innerW/3
	if strings.Join(cx, " ") != strings.Join(want, " ") {
		t.Errorf("points at x %v; want %v (evenly spaced decades)", cx, want)
	}
}

func TestAxisNumIsShort(t *testing.T) {
	for v, want := range map[float64]string{3e8: "300M", 150000: "150k", 12000: "12k", 9000: "9000", 2.5e9: "2.5G", 500: "500", 0.25: "0.25"} {
		if got := axisNum(v); got != want {
			t.Errorf("axisNum(%g) = %q; want %q", v, got, want)
		}
	}
}
