package bench

import (
	"slices"
	"sort"
)

// repeat returns steps n times over (n <= 1: once), each copy marked with
// its round.
func repeat(steps []Step, n int) []Step {
	out := make([]Step, 0, len(steps)*max(n, 1))
	for r := range max(n, 1) {
		for _, st := range steps {
			st.Round = r
			out = append(out, st)
		}
	}
	return out
}

// medianRounds collapses the rows of repeated rounds: per op, profile and
// model it keeps the row of the round with the median throughput (the
// lower middle one for an even count) and records every round's
// throughput on it. A row that any round found inconclusive stays
// inconclusive: a median must not hide a round that could not be trusted.
// Rows appear in the order of their first round.
func medianRounds(rows []Result) []Result {
	type key struct {
		op, profile, model string
		point              int64
	}
	groups := map[key][]Result{}
	var order []key
	for _, r := range rows {
		k := key{r.Op, r.Profile, r.Model, -1}
		if r.Point != nil {
			k.point = *r.Point
		}
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Result, 0, len(order))
	for _, k := range order {
		g := groups[k]
		if len(g) == 1 {
			out = append(out, g[0])
			continue
		}
		rates := make([]float64, len(g))
		for i, r := range g {
			rates[i] = r.OpsPerSec
		}
		byRate := slices.Clone(g)
		sort.SliceStable(byRate, func(i, j int) bool { return byRate[i].OpsPerSec < byRate[j].OpsPerSec })
		m := byRate[(len(byRate)-1)/2]
		m.RoundsOpsPerSec = rates
		for _, r := range g {
			m.inconclusiveFrom(r, "")
		}
		out = append(out, m)
	}
	return out
}
