package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/gonogo/harness/internal/counter"
)

// Call says which call of a run an Op is making.
type Call struct {
	// Worker is 0..Load.Workers-1.
	Worker int
	// Seq counts this worker's calls in the current phase, from 0.
	Seq int64
	// Warmup is true for calls of the warm-up phase, which are not
	// recorded.
	Warmup bool
}

// Op is one operation a load drives.
type Op struct {
	// Name is the op kind: the histogram and the result row it feeds.
	Name string
	// Do performs one call. Its latency is measured by the load model.
	Do func(ctx context.Context, c Call) error
	// Mark, when set, is called at the measured phase's start (end false)
	// and end (true), with every worker idle: the server's side of the
	// step is read there.
	Mark func(ctx context.Context, end bool)
}

// Load says how an Op is driven. Zero values mean the defaults stated.
type Load struct {
	// Workers is the number of goroutines issuing calls. Default 1.
	Workers int
	// Duration of the measured phase. With Ops set, the phase ends at
	// whichever comes first; with neither, Duration defaults to 10s.
	Duration time.Duration
	// Ops is the number of measured calls (all workers together). In the
	// open loop it sets Duration to Ops/Rate.
	Ops int64
	// Warmup is the warm-up phase's length; its calls are not measured.
	// Default 0 (none).
	Warmup time.Duration
	// WarmupOps, when set, makes the closed loop's warm-up a number of
	// calls instead of a duration (so the command count is known in
	// advance on metered targets).
	WarmupOps int64
	// Rate (calls per second), when > 0, selects the open loop: calls are
	// scheduled at a constant rate whatever the latency, and each call's
	// latency runs from its intended start.
	Rate float64
	// Queue bounds scheduled calls waiting for a worker (open loop); a
	// call that finds it full is dropped. Default 10000.
	Queue int
	// LateAfter is how long after its intended start a call may start
	// before it counts as late (open loop). Default 10ms.
	LateAfter time.Duration
	// MaxMissed is the fraction of offered calls that may be late or
	// dropped before the run fails with ErrMissedRate (open loop).
	// Default 0.01; -1 disables the check.
	MaxMissed float64
	// Interval is the progress and timeline interval. Default 1s.
	Interval time.Duration
}

func (l Load) withDefaults() Load {
	if l.Workers <= 0 {
		l.Workers = 1
	}
	if l.Rate > 0 && l.Ops > 0 {
		l.Duration = time.Duration(float64(l.Ops) / l.Rate * float64(time.Second))
	}
	if l.Duration == 0 && l.Ops == 0 {
		l.Duration = 10 * time.Second
	}
	if l.Queue <= 0 {
		l.Queue = 10000
	}
	if l.LateAfter == 0 {
		l.LateAfter = 10 * time.Millisecond
	}
	if l.MaxMissed == 0 {
		l.MaxMissed = 0.01
	}
	if l.Interval <= 0 {
		l.Interval = time.Second
	}
	return l
}

// Validate rejects a load that cannot run (exit 3 in the CLI).
func (l Load) Validate() error {
	switch {
	case l.Rate < 0:
		return fmt.Errorf("rate %g: must be > 0 (or 0 for the closed loop)", l.Rate)
	case l.Duration < 0:
		return fmt.Errorf("duration %s: must not be negative", l.Duration)
	case l.Warmup < 0:
		return fmt.Errorf("warm-up %s: must not be negative", l.Warmup)
	case l.Ops < 0 || l.WarmupOps < 0:
		return fmt.Errorf("op count %d: must not be negative", min(l.Ops, l.WarmupOps))
	case l.Workers < 0:
		return fmt.Errorf("workers %d: must not be negative", l.Workers)
	}
	return nil
}

// Model is "open" for a constant arrival rate, else "closed".
func (l Load) Model() string {
	if l.Rate > 0 {
		return "open"
	}
	return "closed"
}

// ErrMissedRate is returned by Drive when more of the offered calls than
// Load.MaxMissed were late or dropped: the target (or the load generator)
// could not sustain the rate, so the latencies describe queueing.
var ErrMissedRate = errors.New("open loop missed its rate: too many calls late or dropped")

// Window is one progress interval of the measured phase.
type Window struct {
	// At is the end of the window, from the start of the measured phase.
	At   time.Duration `json:"at_ns"`
	Ops  int64         `json:"ops"`
	Rate float64       `json:"ops_per_sec"`
	P50  time.Duration `json:"p50_ns"`
	P99  time.Duration `json:"p99_ns"`
	Max  time.Duration `json:"max_ns"`
}

// Stats is what one Run measured (warm-up excluded).
type Stats struct {
	Op      string        `json:"op"`
	Model   string        `json:"model"`
	Workers int           `json:"workers"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Ops counts completed calls (successful or not); Errors the failed.
	Ops      int64  `json:"ops"`
	Errors   int64  `json:"errors"`
	FirstErr string `json:"first_error,omitempty"`
	// Open loop: calls scheduled in the measured phase, those that started
	// more than LateAfter after their intended start, and those never
	// started (queue full, or still queued when the phase ended).
	// Offered = Ops + Dropped (+ calls cut short by cancellation).
	Offered      int64   `json:"offered,omitempty"`
	Late         int64   `json:"late,omitempty"`
	Dropped      int64   `json:"dropped,omitempty"`
	OfferedRate  float64 `json:"offered_rate,omitempty"`
	AchievedRate float64 `json:"achieved_rate"`
	// Latency per op kind: Op's own, and any kinds side recorders added;
	// Hists the histograms they summarise (microseconds).
	Latency  map[string]Latency                 `json:"latency"`
	Hists    map[string]*hdrhistogram.Histogram `json:"-"`
	Timeline []Window                           `json:"timeline,omitempty"`
	// Counts is the Redis traffic of the measured phase per counted op
	// kind, and Dials the connections dialled during it (with a hook).
	Counts map[string]counter.Counts `json:"counts,omitempty"`
	Dials  int64                     `json:"dials"`
	// BytesOut and BytesIn are what the hook's connections wrote and
	// read during the measured phase.
	BytesOut int64 `json:"bytes_out"`
	BytesIn  int64 `json:"bytes_in"`
}

// Tick is one progress update.
type Tick struct {
	Op      string
	Warmup  bool
	Elapsed time.Duration
	// Total is the planned measured duration; Ops the measured calls so far.
	Total   time.Duration
	Ops     int64
	Rate    float64
	P99     time.Duration
	Errors  int64
	Late    int64
	Dropped int64
}

// Progress receives ticks while a run goes on. Drive calls it from one
// goroutine at a time, in order.
type Progress interface {
	Start(op string, l Load)
	Update(t Tick)
	Done(s *Stats)
}

// phase is the shared state of one phase (warm-up or measured).
type phase struct {
	warmup  bool
	ops     atomic.Int64 // completed calls
	errs    atomic.Int64
	late    atomic.Int64
	dropped atomic.Int64
	firstMu sync.Mutex
	first   string
}

func (p *phase) fail(err error) {
	p.errs.Add(1)
	p.firstMu.Lock()
	if p.first == "" {
		p.first = err.Error()
	}
	p.firstMu.Unlock()
}

// Drive drives op with l: a warm-up phase, then the measured phase. Latency
// goes into one histogram per worker, merged at the end. hook, when not
// nil, is snapshotted at the phase boundaries so Stats.Counts holds exactly
// the measured phase's traffic (every worker is idle at each boundary).
// progress may be nil. When ctx ends, Drive stops promptly and returns what
// it measured with ctx's error; an open loop that missed its rate returns
// its stats with ErrMissedRate.
func Drive(ctx context.Context, op Op, l Load, hook *counter.Hook, progress Progress) (*Stats, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	l = l.withDefaults()
	if progress != nil {
		progress.Start(op.Name, l)
	}
	if l.Warmup > 0 || l.WarmupOps > 0 {
		w := l
		w.Duration, w.Ops = l.Warmup, l.WarmupOps
		if w.Rate > 0 {
			w.Ops = 0
		}
		runPhase(ctx, op, w, &phase{warmup: true}, nil, progress)
	}
	var before map[string]counter.Counts
	var dials, out, in int64
	if hook != nil {
		before, dials = hook.Snapshot(), hook.Dials()
		out, in = hook.Bytes()
	}
	if op.Mark != nil {
		op.Mark(ctx, false)
	}
	recs := &recorders{}
	ph := &phase{}
	st := runPhase(ctx, op, l, ph, recs, progress)
	if op.Mark != nil {
		op.Mark(ctx, true)
	}
	if hook != nil {
		st.Counts = diffCounts(hook.Snapshot(), before)
		st.Dials = hook.Dials() - dials
		o, i := hook.Bytes()
		st.BytesOut, st.BytesIn = o-out, i-in
	}
	st.Latency = map[string]Latency{}
	st.Hists = recs.merged()
	for kind, h := range st.Hists {
		st.Latency[kind] = summarize(h)
	}
	if progress != nil {
		progress.Done(st)
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if st.Model == "open" && l.MaxMissed >= 0 && st.Offered > 0 &&
		float64(st.Late+st.Dropped) > l.MaxMissed*float64(st.Offered) {
		return st, fmt.Errorf("%w: %d of %d offered late (> %s) or dropped (%d)",
			ErrMissedRate, st.Late+st.Dropped, st.Offered, l.LateAfter, st.Dropped)
	}
	return st, nil
}

// runPhase runs one phase and returns its counts (latency not yet merged).
// recs is nil in the warm-up, which records nothing.
func runPhase(ctx context.Context, op Op, l Load, ph *phase, recs *recorders, progress Progress) *Stats {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st := &Stats{Op: op.Name, Model: l.Model(), Workers: l.Workers}
	start := time.Now()
	var offered atomic.Int64
	var wg sync.WaitGroup
	if l.Rate > 0 {
		runOpen(ctx, op, l, ph, recs, start, &offered, &wg)
	} else {
		runClosed(ctx, op, l, ph, recs, start, &wg)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(l.Interval)
	defer tick.Stop()
	var lastOps int64
	lastAt := start
	window := func(now time.Time) {
		ops := ph.ops.Load()
		dt := now.Sub(lastAt).Seconds()
		w := Window{At: now.Sub(start), Ops: ops - lastOps}
		if dt > 0 {
			w.Rate = float64(w.Ops) / dt
		}
		if recs != nil {
			lat := summarize(recs.interval()[op.Name])
			w.P50, w.P99, w.Max = lat.P50, lat.P99, lat.Max
			st.Timeline = append(st.Timeline, w)
		}
		lastOps, lastAt = ops, now
		if progress != nil {
			progress.Update(Tick{Op: op.Name, Warmup: ph.warmup, Elapsed: now.Sub(start), Total: l.Duration,
				Ops: ops, Rate: w.Rate, P99: w.P99, Errors: ph.errs.Load(), Late: ph.late.Load(), Dropped: ph.dropped.Load()})
		}
	}
	for running := true; running; {
		select {
		case now := <-tick.C:
			window(now)
		case <-done:
			running = false
		}
	}
	end := time.Now()
	if end.Sub(lastAt) > 0 && ph.ops.Load() > lastOps {
		window(end)
	}
	st.Elapsed = end.Sub(start)
	st.Ops, st.Errors, st.FirstErr = ph.ops.Load(), ph.errs.Load(), ph.first
	st.Late, st.Dropped, st.Offered = ph.late.Load(), ph.dropped.Load(), offered.Load()
	if secs := st.Elapsed.Seconds(); secs > 0 {
		st.AchievedRate = float64(st.Ops) / secs
	}
	if st.Model == "open" {
		st.OfferedRate = l.Rate
	}
	return st
}

// do makes one call and records its latency from from.
func do(ctx context.Context, op Op, c Call, from time.Time, ph *phase, rec *Recorder) {
	err := op.Do(ctx, c)
	d := time.Since(from)
	if ctx.Err() != nil && err != nil {
		return // cut short by cancellation: neither a result nor an error
	}
	ph.ops.Add(1)
	if err != nil {
		ph.fail(err)
	}
	if rec != nil {
		rec.Record(op.Name, d)
	}
}

// runClosed starts l.Workers workers that each call op back to back until
// the phase's duration or op count is reached.
func runClosed(ctx context.Context, op Op, l Load, ph *phase, recs *recorders, start time.Time, wg *sync.WaitGroup) {
	var deadline time.Time
	if l.Duration > 0 {
		deadline = start.Add(l.Duration)
	}
	var tickets atomic.Int64
	spawn(l.Workers, recs, wg, func(w int, rec *Recorder) {
		for seq := int64(0); ctx.Err() == nil; seq++ {
			if l.Ops > 0 && tickets.Add(1) > l.Ops {
				return
			}
			now := time.Now()
			if !deadline.IsZero() && !now.Before(deadline) {
				return
			}
			do(ctx, op, Call{Worker: w, Seq: seq, Warmup: ph.warmup}, now, ph, rec)
		}
	})
}

// spawn starts n workers on wg, each with its own recorder (nil when recs
// is nil).
func spawn(n int, recs *recorders, wg *sync.WaitGroup, work func(w int, rec *Recorder)) {
	for w := 0; w < n; w++ {
		var rec *Recorder
		if recs != nil {
			rec = recs.New()
		}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			work(w, rec)
		}(w)
	}
}

// runOpen schedules calls at l.Rate into a bounded queue that l.Workers
// workers drain. A call's latency runs from its intended start, so time
// spent queued is part of it. When the phase ends, calls still queued are
// counted as dropped.
func runOpen(ctx context.Context, op Op, l Load, ph *phase, recs *recorders, start time.Time, offered *atomic.Int64, wg *sync.WaitGroup) {
	queue := make(chan time.Time, l.Queue)
	spawn(l.Workers, recs, wg, func(w int, rec *Recorder) {
		var seq int64
		for intended := range queue {
			if ctx.Err() != nil {
				ph.dropped.Add(1)
				continue
			}
			if time.Since(intended) > l.LateAfter {
				ph.late.Add(1)
			}
			do(ctx, op, Call{Worker: w, Seq: seq, Warmup: ph.warmup}, intended, ph, rec)
			seq++
		}
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(queue)
		period := float64(time.Second) / l.Rate
		n := int64(float64(l.Duration) / period)
		if l.Ops > 0 && l.Ops < n {
			n = l.Ops
		}
		timer := time.NewTimer(0)
		defer timer.Stop()
		for i := int64(0); i < n; {
			now := time.Now()
			for ; i < n; i++ {
				intended := start.Add(time.Duration(float64(i) * period))
				if intended.After(now) {
					break
				}
				offered.Add(1)
				select {
				case queue <- intended:
				default:
					ph.dropped.Add(1)
				}
			}
			if i == n {
				break
			}
			timer.Reset(time.Until(start.Add(time.Duration(float64(i) * period))))
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		// Calls queued at the end get a grace of LateAfter (at least
		// 100ms) to start; what is still queued after it is taken out
		// here and dropped. (A call a worker has received is its own: a
		// flag the worker checked after receiving dropped the last call
		// handed straight to an idle worker.)
		grace := time.Now().Add(max(l.LateAfter, 100*time.Millisecond))
		for len(queue) > 0 && time.Now().Before(grace) && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		for {
			select {
			case <-queue:
				ph.dropped.Add(1)
			default:
				return
			}
		}
	}()
}

// diffCounts returns after minus before, per op kind, dropping kinds with
// no traffic in between.
func diffCounts(after, before map[string]counter.Counts) map[string]counter.Counts {
	out := map[string]counter.Counts{}
	for op, a := range after {
		b := before[op]
		d := counter.Counts{RoundTrips: a.RoundTrips - b.RoundTrips, Commands: a.Commands - b.Commands,
			Errors: a.Errors - b.Errors, ByCommand: map[string]int64{}}
		for c, n := range a.ByCommand {
			if n -= b.ByCommand[c]; n != 0 {
				d.ByCommand[c] = n
			}
		}
		if d.RoundTrips != 0 || d.Commands != 0 {
			out[op] = d
		}
	}
	return out
}
