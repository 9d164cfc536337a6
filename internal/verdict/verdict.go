// Package verdict is the one verdict type of the harness and its one fold,
// used at every level: a checker's result, a threshold, a scenario run, a
// gate criterion, the gate run itself and the process exit code.
//
// A check, threshold, scenario or criterion is judged PASS, FAIL or
// INCONCLUSIVE (the evidence is missing or could not be trusted; nothing
// failed). A gate run says the same in its own words: GO, NO-GO,
// INCONCLUSIVE, or INCOMPLETE when the run was interrupted (Gate).
package verdict

import "github.com/gonogo/harness/internal/exitcode"

// Verdict is a judgement. Its text is what reports and results files carry.
type Verdict string

// The verdicts of a check, threshold, scenario or criterion.
const (
	Pass         Verdict = "PASS"         // held
	Fail         Verdict = "FAIL"         // broken
	Inconclusive Verdict = "INCONCLUSIVE" // evidence missing; nothing failed
)

// The verdicts of a gate run (Gate).
const (
	Go         Verdict = "GO"         // every criterion holds
	NoGo       Verdict = "NO-GO"      // at least one criterion failed
	Incomplete Verdict = "INCOMPLETE" // the run was interrupted
)

// Fold is the verdict of a whole from the verdicts of its parts: FAIL when
// any part failed (FAIL or NO-GO), else INCONCLUSIVE when any part is
// neither passed nor failed or there are no parts, else PASS. A whole with
// no evidence never passes.
func Fold(parts ...Verdict) Verdict {
	if len(parts) == 0 {
		return Inconclusive
	}
	v := Pass
	for _, p := range parts {
		switch p {
		case Fail, NoGo:
			return Fail
		case Pass, Go:
		default:
			v = Inconclusive
		}
	}
	return v
}

// Gate is v said of a gate run: INCOMPLETE when the run was interrupted,
// else GO for PASS, NO-GO for FAIL and INCONCLUSIVE for anything else.
func (v Verdict) Gate(interrupted bool) Verdict {
	switch {
	case interrupted:
		return Incomplete
	case v == Pass || v == Go:
		return Go
	case v == Fail || v == NoGo:
		return NoGo
	}
	return Inconclusive
}

// ExitCode is the process exit code for v: 0 for PASS or GO, 1 for FAIL or
// NO-GO, 2 for INCONCLUSIVE, INCOMPLETE and any other value.
func (v Verdict) ExitCode() int {
	switch v {
	case Pass, Go:
		return exitcode.Go
	case Fail, NoGo:
		return exitcode.NoGo
	}
	return exitcode.Inconclusive
}
