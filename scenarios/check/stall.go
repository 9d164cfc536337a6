package check

import (
	"sort"
	"time"

	"github.com/gonogo/harness/internal/history"
)

// stallsOf returns h's harness stalls sorted and merged: overlapping or
// touching windows become one, so no instant counts twice. Empty or
// reversed windows are dropped.
func stallsOf(h history.History) []history.Stall {
	var ss []history.Stall
	for _, st := range h.Stalls {
		if st.End > st.Start {
			ss = append(ss, st)
		}
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].Start < ss[j].Start })
	var out []history.Stall
	for _, st := range ss {
		if n := len(out); n > 0 && st.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, st.End)
			continue
		}
		out = append(out, st)
	}
	return out
}

// stalled is how much of [from, to] the merged stalls ss cover.
func stalled(ss []history.Stall, from, to time.Duration) time.Duration {
	var d time.Duration
	i := sort.Search(len(ss), func(i int) bool { return ss[i].End > from })
	for ; i < len(ss) && ss[i].Start < to; i++ {
		d += min(ss[i].End, to) - max(ss[i].Start, from)
	}
	return d
}
