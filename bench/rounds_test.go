package bench

import (
	"slices"
	"testing"
)

func TestRepeatMarksRounds(t *testing.T) {
	steps := []Step{{Op: OpXAdd}, {Op: OpPublish}}
	got := repeat(steps, 3)
	if len(got) != 6 {
		t.Fatalf("%d steps; want 6", len(got))
	}
	for i, st := range got {
		if want := steps[i%2].Op; st.Op != want || st.Round != i/2 {
			t.Errorf("step %d: %s round %d; want %s round %d", i, st.Op, st.Round, want, i/2)
		}
	}
	if got := repeat(steps, 0); len(got) != 2 || got[1].Round != 0 {
		t.Errorf("repeat(0) = %+v; want the steps once", got)
	}
}

func TestMedianRounds(t *testing.T) {
	rows := []Result{
		{Op: OpXAdd, Profile: Raw, OpsPerSec: 90, Ops: 1},
		{Op: OpPublish, Profile: "hardened", OpsPerSec: 50, Ops: 2},
		{Op: OpXAdd, Profile: Raw, OpsPerSec: 70, Ops: 3},
		{Op: OpPublish, Profile: "hardened", OpsPerSec: 60, Ops: 4},
		{Op: OpXAdd, Profile: Raw, OpsPerSec: 80, Ops: 5},
		{Op: OpPublish, Profile: "hardened", OpsPerSec: 10, Ops: 6, Inconclusive: "fell back"},
	}
	got := medianRounds(rows)
	if len(got) != 2 {
		t.Fatalf("%d rows; want 2: %+v", len(got), got)
	}
	x, p := got[0], got[1]
	if x.Op != OpXAdd || x.Ops != 5 || !slices.Equal(x.RoundsOpsPerSec, []float64{90, 70, 80}) {
		t.Errorf("xadd: %+v; want the 80 ops/s round (ops 5) with rounds 90, 70, 80", x)
	}
	if p.Op != OpPublish || p.Ops != 2 || p.Inconclusive != "fell back" {
		t.Errorf("publish: %+v; want the 50 ops/s round (ops 2), inconclusive from round 3", p)
	}
	// One round: rows unchanged, no per-round list.
	one := medianRounds(rows[:2])
	if len(one) != 2 || one[0].RoundsOpsPerSec != nil {
		t.Errorf("one round: %+v", one)
	}
}
