package reports

import (
	"math"
	"sort"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Stat summarises one metric: a single value (Count 1) or a distribution of
// samples. The aggregations of the gates file read its fields.
type Stat struct {
	Count int64   `json:"count"` // samples behind the summary
	Value float64 `json:"value"` // the single value, or the mean of the samples
	Rate  float64 `json:"rate"`  // percentage (0–100) of samples that are non-zero
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
	// Growth is a sweep metric's growth class (Growth.Rank).
	Growth float64 `json:"growth,omitempty"`
}

// Aggregations a criterion may apply to a metric.
const (
	AggCount = "count" // number of samples
	AggRate  = "rate"  // % of samples that are non-zero (hits, errors)
	AggValue = "value" // the single value, or the mean
	AggP50   = "p50"
	AggP90   = "p90"
	AggP99   = "p99"
	AggP999  = "p99.9"
	AggMax   = "max"
	// AggGrowth is a sweep's growth class: 0 flat, 1 linear, 2 worse.
	AggGrowth = "growth"
)

// aggregations lists every aggregation, in display order.
var aggregations = []string{AggCount, AggRate, AggValue, AggP50, AggP90, AggP99, AggP999, AggMax, AggGrowth}

// Get returns the aggregation agg of s; ok is false for an unknown name.
func (s Stat) Get(agg string) (v float64, ok bool) {
	switch agg {
	case AggCount:
		return float64(s.Count), true
	case AggRate:
		return s.Rate, true
	case AggValue:
		return s.Value, true
	case AggP50:
		return s.P50, true
	case AggP90:
		return s.P90, true
	case AggP99:
		return s.P99, true
	case AggP999:
		return s.P999, true
	case AggMax:
		return s.Max, true
	case AggGrowth:
		return s.Growth, true
	}
	return 0, false
}

// Value is a single-valued metric (a count of lost events, a time to recover).
func Value(v float64) Stat {
	return Distribution([]float64{v})
}

// Distribution summarises samples (latencies in ms, 1/0 hit or error flags).
// Percentiles are nearest-rank. No samples give the zero Stat (Count 0).
func Distribution(samples []float64) Stat {
	if len(samples) == 0 {
		return Stat{}
	}
	xs := append([]float64(nil), samples...)
	sort.Float64s(xs)
	var sum float64
	var nonzero int
	for _, x := range xs {
		sum += x
		if x != 0 {
			nonzero++
		}
	}
	n := len(xs)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(n)-1e-9)) - 1 // ε: 99.9/100*1000 is not exactly 999
		return xs[max(0, min(i, n-1))]
	}
	return Stat{
		Count: int64(n),
		Value: sum / float64(n),
		Rate:  100 * float64(nonzero) / float64(n),
		P50:   rank(50), P90: rank(90), P99: rank(99), P999: rank(99.9),
		Max: xs[n-1],
	}
}

// Durations summarises latencies, converting them to ms.
func Durations(ds []time.Duration) Stat {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = Ms(d)
	}
	return Distribution(xs)
}

// HistogramStat summarises an HdrHistogram whose recorded values are in
// units of unit (time.Microsecond when it records µs), in ms. Rate is 100
// when any value was recorded (an HdrHistogram holds latencies, not flags).
func HistogramStat(h *hdrhistogram.Histogram, unit time.Duration) Stat {
	if h.TotalCount() == 0 {
		return Stat{}
	}
	ms := func(v int64) float64 { return float64(v) * float64(unit) / float64(time.Millisecond) }
	return Stat{
		Count: h.TotalCount(),
		Value: h.Mean() * float64(unit) / float64(time.Millisecond),
		Rate:  100,
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
	}
}
