package bench

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histograms record latency in microseconds, from 1 µs to 10 min, with 3
// significant digits. Longer values are clamped to the maximum.
const (
	histMin  = 1
	histMax  = int64(10 * time.Minute / time.Microsecond)
	histFigs = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histFigs) }

func recordHist(h *hdrhistogram.Histogram, d time.Duration) {
	v := int64(d / time.Microsecond)
	if v < histMin {
		v = histMin
	}
	if v > histMax {
		v = histMax
	}
	h.RecordValue(v) //nolint:errcheck // v is within range
}

// Recorder is one goroutine's latency record: one HdrHistogram per op kind
// for the whole run, and one per op kind for the current progress interval.
// The owning goroutine records; the progress reporter swaps intervals out
// under the same (uncontended) lock.
type Recorder struct {
	mu       sync.Mutex
	total    map[string]*hdrhistogram.Histogram
	interval map[string]*hdrhistogram.Histogram
}

func newRecorder() *Recorder {
	return &Recorder{total: map[string]*hdrhistogram.Histogram{}, interval: map[string]*hdrhistogram.Histogram{}}
}

// Record adds one latency sample under kind.
func (r *Recorder) Record(kind string, d time.Duration) {
	r.mu.Lock()
	h := r.total[kind]
	if h == nil {
		h = newHist()
		r.total[kind] = h
		r.interval[kind] = newHist()
	}
	recordHist(h, d)
	recordHist(r.interval[kind], d)
	r.mu.Unlock()
}

// drainInterval merges this recorder's interval histograms into into and
// resets them.
func (r *Recorder) drainInterval(into map[string]*hdrhistogram.Histogram) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for kind, h := range r.interval {
		if h.TotalCount() == 0 {
			continue
		}
		dst := into[kind]
		if dst == nil {
			dst = newHist()
			into[kind] = dst
		}
		dst.Merge(h)
		h.Reset()
	}
}

// recorders is the set of recorders of one run, merged at the end.
type recorders struct {
	mu   sync.Mutex
	list []*Recorder
}

// New returns a recorder that is part of the set.
func (rs *recorders) New() *Recorder {
	r := newRecorder()
	rs.mu.Lock()
	rs.list = append(rs.list, r)
	rs.mu.Unlock()
	return r
}

func (rs *recorders) snapshot() []*Recorder {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]*Recorder(nil), rs.list...)
}

// merged returns one histogram per kind over every recorder.
func (rs *recorders) merged() map[string]*hdrhistogram.Histogram {
	out := map[string]*hdrhistogram.Histogram{}
	for _, r := range rs.snapshot() {
		r.mu.Lock()
		for kind, h := range r.total {
			dst := out[kind]
			if dst == nil {
				dst = newHist()
				out[kind] = dst
			}
			dst.Merge(h)
		}
		r.mu.Unlock()
	}
	return out
}

// interval drains every recorder's interval histograms into one per kind.
func (rs *recorders) interval() map[string]*hdrhistogram.Histogram {
	out := map[string]*hdrhistogram.Histogram{}
	for _, r := range rs.snapshot() {
		r.drainInterval(out)
	}
	return out
}

// Latency summarises a histogram. Durations marshal as nanoseconds; the
// table and the report model show milliseconds.
type Latency struct {
	Count int64         `json:"count"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

func summarize(h *hdrhistogram.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Latency{
		Count: h.TotalCount(),
		Mean:  time.Duration(h.Mean() * float64(time.Microsecond)),
		P50:   us(h.ValueAtQuantile(50)),
		P90:   us(h.ValueAtQuantile(90)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		Max:   us(h.Max()),
	}
}
