package bench

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// NewProgress returns a live progress bar (mpb) when w is a terminal, and
// plain lines (one per interval) otherwise.
func NewProgress(w io.Writer) Progress {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return &barProgress{w: w}
		}
	}
	return &lineProgress{w: w}
}

// lineProgress prints one line per tick.
type lineProgress struct{ w io.Writer }

func (p *lineProgress) Start(op string, l Load) {}

func (p *lineProgress) Update(t Tick) {
	fmt.Fprintln(p.w, tickLine(t))
}

func (p *lineProgress) Done(s *Stats) {}

func tickLine(t Tick) string {
	phase := ""
	if t.Warmup {
		phase = " (warm-up)"
	}
	s := fmt.Sprintf("%s%s %5.1fs  %d ops  %.0f ops/s  p99 %s", t.Op, phase, t.Elapsed.Seconds(), t.Ops, t.Rate, msf(t.P99)+"ms")
	if t.Errors > 0 {
		s += fmt.Sprintf("  %d errors", t.Errors)
	}
	if t.Late+t.Dropped > 0 {
		s += fmt.Sprintf("  %d late  %d dropped", t.Late, t.Dropped)
	}
	return s
}

// barProgress draws one mpb bar per run: elapsed time against the planned
// duration (or ops against the planned count), with the current rate and
// p99 beside it.
type barProgress struct {
	w     io.Writer
	p     *mpb.Progress
	bar   *mpb.Bar
	l     Load
	label atomic.Pointer[string] // read by mpb's render goroutine
	start time.Time
}

func (p *barProgress) Start(op string, l Load) {
	p.l, p.start = l, time.Now()
	p.p = mpb.New(mpb.WithOutput(p.w), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond))
	total := l.Ops
	if total == 0 || l.Rate > 0 {
		total = int64((l.Duration + l.Warmup) / time.Millisecond)
	}
	p.label.Store(new(string))
	p.bar = p.p.AddBar(total,
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-16s", op))),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return *p.label.Load() })))
}

func (p *barProgress) Update(t Tick) {
	line := tickLine(t)
	p.label.Store(&line)
	if p.l.Ops > 0 && p.l.Rate == 0 {
		if !t.Warmup {
			p.bar.SetCurrent(t.Ops)
		}
		return
	}
	p.bar.SetCurrent(int64(time.Since(p.start) / time.Millisecond))
}

func (p *barProgress) Done(s *Stats) {
	p.bar.SetTotal(-1, true)
	p.p.Wait()
}
