package check

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/gonogo/harness/internal/history"
)

// Period is where an instant falls relative to the run's faults.
type Period string

// Periods, in the order a run goes through them.
const (
	Before Period = "before" // before the first fault starts; the whole run when there is no fault
	During Period = "during" // inside any fault window [Start, End)
	After  Period = "after"  // after a fault ended and outside every window, including between faults
)

// Periods lists every period in run order.
var Periods = []Period{Before, During, After}

// forever stands for the end of a fault that was never undone.
const forever = time.Duration(math.MaxInt64)

// faultsOf returns h's fault windows sorted by start. A fault whose End is
// before its Start was never undone: it lasts to the end of the run.
func faultsOf(h history.History) []history.Fault {
	fs := append([]history.Fault(nil), h.Faults...)
	for i := range fs {
		if fs[i].End < fs[i].Start {
			fs[i].End = forever
		}
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Start < fs[j].Start })
	return fs
}

// Phase says where t falls: During when inside any fault window, Before when
// before the first fault's start (or when there is no fault), After
// otherwise. A zero-length fault window contains nothing; it only separates
// Before from After.
func Phase(h history.History, t time.Duration) Period {
	return phaseIn(faultsOf(h), t)
}

func phaseIn(fs []history.Fault, t time.Duration) Period {
	if len(fs) == 0 || t < fs[0].Start {
		return Before
	}
	for _, f := range fs {
		if f.Contains(t) {
			return During
		}
	}
	return After
}

// window is a span covered by one or more overlapping faults.
type window struct {
	Start, End time.Duration
	Names      []string
}

// windowAt is the window of ws that holds t, if one does.
func windowAt(ws []window, t time.Duration) (window, bool) {
	for _, w := range ws {
		if t >= w.Start && t < w.End {
			return w, true
		}
	}
	return window{}, false
}

// overlapsAny reports whether op o's span [Call, Return] meets a window of
// ws.
func overlapsAny(ws []window, o history.Op) bool {
	for _, w := range ws {
		if o.Call < w.End && o.Return >= w.Start {
			return true
		}
	}
	return false
}

// only is the faults of fs that keep holds for.
func only(fs []history.Fault, keep func(history.Fault) bool) []history.Fault {
	var out []history.Fault
	for _, f := range fs {
		if keep(f) {
			out = append(out, f)
		}
	}
	return out
}

// windowsOf merges overlapping or touching fault windows.
func windowsOf(fs []history.Fault) []window {
	var ws []window
	for _, f := range fs {
		if n := len(ws); n > 0 && f.Start <= ws[n-1].End {
			if f.End > ws[n-1].End {
				ws[n-1].End = f.End
			}
			ws[n-1].Names = append(ws[n-1].Names, f.Name)
			continue
		}
		ws = append(ws, window{Start: f.Start, End: f.End, Names: []string{f.Name}})
	}
	return ws
}

func (w window) name() string { return strings.Join(w.Names, "+") }

// where describes t for evidence: "before the first fault", "during fault
// x", "after the faults".
func where(fs []history.Fault, t time.Duration) string {
	switch phaseIn(fs, t) {
	case Before:
		if len(fs) == 0 {
			return "no fault"
		}
		return "before the first fault"
	case During:
		var names []string
		for _, f := range fs {
			if f.Contains(t) {
				names = append(names, f.Name)
			}
		}
		return "during fault " + strings.Join(names, "+")
	}
	return "after a fault"
}

// Percentile returns the p-th percentile (0 ≤ p ≤ 100, nearest rank) of xs,
// or 0 when xs is empty. xs is not modified.
func Percentile(xs []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return rank(s, p)
}

// rank is Percentile over an already sorted slice.
func rank(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(n))) - 1
	if i < 0 {
		i = 0
	}
	if i >= n {
		i = n - 1
	}
	return sorted[i]
}
