package verdict

import (
	"testing"

	"github.com/gonogo/harness/internal/exitcode"
)

func TestFold(t *testing.T) {
	for _, tt := range []struct {
		name  string
		parts []Verdict
		want  Verdict
	}{
		{"nothing judged is inconclusive", nil, Inconclusive},
		{"all pass", []Verdict{Pass, Pass}, Pass},
		{"a failure decides", []Verdict{Pass, Inconclusive, Fail, Pass}, Fail},
		{"a gap makes it inconclusive", []Verdict{Pass, Inconclusive}, Inconclusive},
		{"an unknown word is not a pass", []Verdict{Pass, "ERROR"}, Inconclusive},
		{"gate words fold like their judgements", []Verdict{Go, Go}, Pass},
		{"NO-GO is a failure", []Verdict{Go, NoGo}, Fail},
		{"INCOMPLETE is not a pass", []Verdict{Go, Incomplete}, Inconclusive},
	} {
		if got := Fold(tt.parts...); got != tt.want {
			t.Errorf("%s: Fold(%v) = %s; want %s", tt.name, tt.parts, got, tt.want)
		}
	}
}

func TestGate(t *testing.T) {
	for _, tt := range []struct {
		v           Verdict
		interrupted bool
		want        Verdict
	}{
		{Pass, false, Go},
		{Fail, false, NoGo},
		{Inconclusive, false, Inconclusive},
		{"", false, Inconclusive},
		{Pass, true, Incomplete},
		{Fail, true, Incomplete},
		{Go, false, Go},
		{NoGo, false, NoGo},
	} {
		if got := tt.v.Gate(tt.interrupted); got != tt.want {
			t.Errorf("%q.Gate(%v) = %s; want %s", tt.v, tt.interrupted, got, tt.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	for v, want := range map[Verdict]int{
		Pass: exitcode.Go, Go: exitcode.Go,
		Fail: exitcode.NoGo, NoGo: exitcode.NoGo,
		Inconclusive: exitcode.Inconclusive, Incomplete: exitcode.Inconclusive, "": exitcode.Inconclusive,
	} {
		if got := v.ExitCode(); got != want {
			t.Errorf("%q.ExitCode() = %d; want %d", v, got, want)
		}
	}
}

// TestGateOfCriteria is a gate run's verdict from its criteria's verdicts
// (reports.Run.Judge): the fold, said of a gate run, and its exit code.
func TestGateOfCriteria(t *testing.T) {
	for _, tc := range []struct {
		name        string
		criteria    []Verdict
		interrupted bool
		want        Verdict
		code        int
	}{
		{"all pass", []Verdict{Pass, Pass}, false, Go, 0},
		{"one fails", []Verdict{Pass, Fail}, false, NoGo, 1},
		{"fail beats inconclusive", []Verdict{Inconclusive, Fail, Pass}, false, NoGo, 1},
		{"inconclusive", []Verdict{Pass, Inconclusive}, false, Inconclusive, 2},
		{"nothing judged", nil, false, Inconclusive, 2},
		{"interrupted", []Verdict{Pass, Pass}, true, Incomplete, 2},
		{"interrupted with a failure", []Verdict{Fail}, true, Incomplete, 2},
	} {
		got := Fold(tc.criteria...).Gate(tc.interrupted)
		if got != tc.want || got.ExitCode() != tc.code {
			t.Errorf("%s: got %s (exit %d); want %s (exit %d)", tc.name, got, got.ExitCode(), tc.want, tc.code)
		}
	}
}
