package reports

import (
	"sort"
	"time"

	"github.com/gonogo/harness/internal/history"
)

// Series holds a scenario's time series for plots. T is the start of a
// bucket in ms since the scenario's base time.
type Series struct {
	BucketMs   float64         `json:"bucket_ms,omitempty"`
	Latency    []LatencySeries `json:"latency,omitempty"`    // per op kind
	Throughput []RateSeries    `json:"throughput,omitempty"` // successful ops/s per op kind
	Errors     []RateSeries    `json:"errors,omitempty"`     // failed ops/s per op kind
}

// LatencySeries is latency over time for one op kind.
type LatencySeries struct {
	Op     string         `json:"op"`
	Points []LatencyPoint `json:"points"`
}

// LatencyPoint summarises the calls made in one bucket (ms).
type LatencyPoint struct {
	TMs   float64 `json:"t_ms"`
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// RateSeries is a rate over time for one op kind.
type RateSeries struct {
	Op     string      `json:"op"`
	Points []RatePoint `json:"points"`
}

// RatePoint is a rate in one bucket.
type RatePoint struct {
	TMs    float64 `json:"t_ms"`
	PerSec float64 `json:"per_sec"`
}

// SeriesFrom buckets a history's operations by call time into series, one
// per op kind. Subscribe, redis_state, rss and instance_exit records are
// not calls and are left out. Buckets with no calls have no latency point and a zero rate; calls
// made at or after h.End count in the last bucket.
func SeriesFrom(h history.History, bucket time.Duration) Series {
	if bucket <= 0 {
		bucket = time.Second
	}
	n := max(int((h.End+bucket-1)/bucket), 1)
	type acc struct {
		lat      [][]float64
		ok, errs []int64
	}
	kinds := map[string]*acc{}
	for _, op := range h.Ops {
		if op.Kind == history.Subscribe || op.Kind == history.RedisState || op.Kind == history.RSS || op.Kind == history.InstanceExit {
			continue
		}
		a := kinds[op.Kind]
		if a == nil {
			a = &acc{lat: make([][]float64, n), ok: make([]int64, n), errs: make([]int64, n)}
			kinds[op.Kind] = a
		}
		i := min(max(int(op.Call/bucket), 0), n-1)
		a.lat[i] = append(a.lat[i], Ms(op.Latency()))
		if op.OK {
			a.ok[i]++
		} else {
			a.errs[i]++
		}
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	perSec := func(c int64) float64 { return float64(c) / bucket.Seconds() }
	s := Series{BucketMs: Ms(bucket)}
	for _, k := range names {
		a := kinds[k]
		ls := LatencySeries{Op: k}
		tp := RateSeries{Op: k}
		es := RateSeries{Op: k}
		var anyErr bool
		for i := range n {
			t := Ms(time.Duration(i) * bucket)
			if len(a.lat[i]) > 0 {
				d := Distribution(a.lat[i])
				ls.Points = append(ls.Points, LatencyPoint{TMs: t, Count: d.Count, P50: d.P50, P99: d.P99, Max: d.Max})
			}
			tp.Points = append(tp.Points, RatePoint{TMs: t, PerSec: perSec(a.ok[i])})
			es.Points = append(es.Points, RatePoint{TMs: t, PerSec: perSec(a.errs[i])})
			anyErr = anyErr || a.errs[i] > 0
		}
		s.Latency = append(s.Latency, ls)
		s.Throughput = append(s.Throughput, tp)
		if anyErr {
			s.Errors = append(s.Errors, es)
		}
	}
	return s
}
