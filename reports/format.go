package reports

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gonogo/harness/internal/verdict"
)

// fmtNum formats a number for people: integers exactly, others to about
// three significant digits, trailing zeros trimmed.
func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'f', -1, 64)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatInt(int64(v), 10)
	}
	a := math.Abs(v)
	var s string
	switch {
	case a >= 100:
		s = fmt.Sprintf("%.0f", v)
	case a >= 10:
		s = fmt.Sprintf("%.1f", v)
	case a >= 1:
		s = fmt.Sprintf("%.2f", v)
	case a >= 0.001:
		s = fmt.Sprintf("%.3f", v)
	default:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// withUnit formats v followed by its unit, if any.
func withUnit(v float64, unit string) string {
	if unit == "" {
		return fmtNum(v)
	}
	return fmtNum(v) + " " + unit
}

// fmtMs formats a time in ms, in seconds from one second up.
func fmtMs(ms float64) string {
	if math.Abs(ms) >= 1000 {
		return fmtNum(ms/1000) + " s"
	}
	return fmtNum(ms) + " ms"
}

// fmtSigned formats v with an explicit sign.
func fmtSigned(v float64, unit string) string {
	if v > 0 {
		return "+" + withUnit(v, unit)
	}
	return withUnit(v, unit)
}

// fmtMargin formats a criterion's margin: "+6.8 ms (+68 %)"; empty when the
// criterion has no measured value. A margin already in % (points) has no
// relative form, which would read as a second, different percentage.
func fmtMargin(r CriterionResult) string {
	if r.Verdict != verdict.Pass && r.Verdict != verdict.Fail {
		return ""
	}
	s := fmtSigned(r.Margin, r.Criterion.Unit)
	if r.MarginPct != nil && r.Margin != 0 && r.Criterion.Unit != "%" {
		s += " (" + fmtSigned(*r.MarginPct, "%") + ")"
	}
	return s
}

// fmtMeasured formats a criterion's measured value and sample count.
func fmtMeasured(r CriterionResult) string {
	if r.Verdict != verdict.Pass && r.Verdict != verdict.Fail {
		return "—"
	}
	s := withUnit(r.Measured, r.Criterion.Unit)
	if r.Samples > 1 {
		s += " (n=" + strconv.FormatInt(r.Samples, 10) + ")"
	}
	return s
}

// Headline is the one-line verdict: "NO-GO — release gate (2 of 14 criteria failed)".
func Headline(r Run) string {
	n := len(r.Criteria)
	failed := len(criteriaWith(r.Criteria, verdict.Fail))
	passed := len(criteriaWith(r.Criteria, verdict.Pass))
	unknown := n - failed - passed
	var detail string
	switch r.Verdict {
	case verdict.Go:
		detail = fmt.Sprintf("%d of %d criteria hold", passed, n)
	case verdict.NoGo:
		detail = fmt.Sprintf("%d of %d criteria failed", failed, n)
		if unknown > 0 {
			detail += fmt.Sprintf(", %d inconclusive", unknown)
		}
	case verdict.Incomplete:
		detail = fmt.Sprintf("run interrupted; %d of %d criteria judged", failed+passed, n)
		if failed > 0 {
			detail += fmt.Sprintf(", %d failed", failed)
		}
	default:
		detail = fmt.Sprintf("%d of %d criteria lack evidence", unknown, n)
		if n == 0 {
			detail = "no criteria judged"
		}
	}
	gate := r.Gate
	if gate == "" {
		gate = "no"
	}
	return fmt.Sprintf("%s — %s gate (%s)", orNone(string(r.Verdict)), gate, detail)
}

// envRows is the environment as label/value pairs, in display order.
func envRows(r Run) [][2]string {
	e := r.Environment
	rtt := "—"
	if e.RTTMs > 0 {
		rtt = fmtMs(e.RTTMs)
	}
	rows := [][2]string{
		{"Run", r.ID},
		{"Started", r.Started.UTC().Format("2006-01-02 15:04:05Z")},
		{"Duration", fmtMs(float64(r.Finished.Sub(r.Started).Milliseconds()))},
		{"Profile", orNone(e.Profile)},
	}
	if e.Implementation != "" {
		rows = append(rows, [2]string{"Implementation", e.Implementation + ": " + strings.Join(e.Services, ", ")})
	}
	rows = append(rows, [][2]string{
		{"Target", orNone(e.TargetKind) + " " + e.TargetURL},
		{"TLS", onOff(e.TLS)},
		{"RTT", rtt},
		{"Redis", orNone(e.RedisVersion)},
		{"Go", orNone(e.GoVersion)},
		{"Git SHA", orNone(e.GitSHA)},
		{"Seed", strconv.FormatInt(e.Seed, 10)},
		{"Command line", strings.Join(e.CommandLine, " ")},
	}...)
	if r.Interrupted {
		rows = append(rows, [2]string{"Interrupted", "yes — partial results"})
	}
	return rows
}
