package reports

import (
	"math"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/gonogo/harness/internal/history"
)

func TestDistribution(t *testing.T) {
	xs := make([]float64, 1000)
	for i := range xs {
		xs[len(xs)-1-i] = float64(i + 1) // 1 … 1000, shuffled order does not matter
	}
	got := Distribution(xs)
	want := Stat{Count: 1000, Value: 500.5, Rate: 100, P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000}
	if got != want {
		t.Errorf("got %+v; want %+v", got, want)
	}
	if got := Distribution([]float64{1, 0, 0, 1}); got.Rate != 50 || got.Value != 0.5 {
		t.Errorf("flags: rate %v mean %v; want 50, 0.5", got.Rate, got.Value)
	}
	if got := Distribution(nil); got != (Stat{}) {
		t.Errorf("no samples: got %+v; want zero", got)
	}
	if got := Value(7); got.Count != 1 || got.Value != 7 || got.P99 != 7 || got.Max != 7 {
		t.Errorf("Value(7): got %+v", got)
	}
	if got := Durations([]time.Duration{time.Millisecond, 3 * time.Millisecond}); got.Max != 3 || got.Value != 2 {
		t.Errorf("Durations: got %+v; want max 3 ms, mean 2 ms", got)
	}
	for _, agg := range aggregations {
		if _, ok := want.Get(agg); !ok {
			t.Errorf("Get(%q) unknown", agg)
		}
	}
	if _, ok := want.Get("p95"); ok {
		t.Error("Get(p95) known")
	}
}

func TestHistogramStat(t *testing.T) {
	h := hdrhistogram.New(1, 10_000_000, 3)
	for v := int64(1); v <= 1000; v++ {
		_ = h.RecordValue(v * 10) // 10 µs … 10 ms
	}
	got := HistogramStat(h, time.Microsecond)
	near := func(a, b float64) bool { return math.Abs(a-b) <= 0.01*b }
	if got.Count != 1000 || !near(got.P50, 5) || !near(got.P99, 9.9) || !near(got.Max, 10) || !near(got.Value, 5.005) {
		t.Errorf("got %+v; want count 1000, p50 5, p99 9.9, max 10, mean 5.005 (ms, ±1 %%)", got)
	}
	if got := HistogramStat(hdrhistogram.New(1, 1000, 3), time.Microsecond); got != (Stat{}) {
		t.Errorf("empty histogram: got %+v; want zero", got)
	}
}

func TestSeriesFrom(t *testing.T) {
	s := SeriesFrom(fixtureHistory(), time.Second)
	if s.BucketMs != 1000 || len(s.Latency) != 2 || s.Latency[0].Op != "cache_get" || s.Latency[1].Op != "publish" {
		t.Fatalf("got bucket %v and ops %+v; want 1000 ms, cache_get and publish", s.BucketMs, s.Latency)
	}
	pub := s.Latency[1].Points
	if len(pub) != 10 {
		t.Fatalf("got %d publish latency points; want 10", len(pub))
	}
	if pub[0].TMs != 0 || pub[0].Count != 20 || pub[0].Max != 1.4 {
		t.Errorf("first bucket: got %+v; want t 0, 20 calls, max 1.4 ms", pub[0])
	}
	if pub[6].P50 < 30 {
		t.Errorf("bucket 6 s (during the fault): p50 %v; want ≥ 30 ms", pub[6].P50)
	}
	tp := s.Throughput[1].Points
	if len(tp) != 10 || tp[0].PerSec != 20 || tp[6].PerSec != 15 {
		t.Errorf("publish throughput: %d points, %v and %v ok/s; want 10, 20, 15", len(tp), tp[0].PerSec, tp[6].PerSec)
	}
	if len(s.Errors) != 1 || s.Errors[0].Op != "publish" || s.Errors[0].Points[6].PerSec != 5 || s.Errors[0].Points[2].PerSec != 0 {
		t.Errorf("errors: got %+v; want publish only, 5/s at 6 s, 0 at 2 s", s.Errors)
	}
	skip := SeriesFrom(history.History{End: time.Second, Ops: []history.Op{{Kind: history.Subscribe}, {Kind: history.RedisState}}}, 0)
	if len(skip.Latency) != 0 || skip.BucketMs != 1000 {
		t.Errorf("subscribe and redis_state: got %+v; want no series, bucket 1 s", skip)
	}
}
