package bench

import (
	"fmt"
	"math"
)

// Plan is a metered Redis plan (Upstash bills per command).
type Plan struct {
	Name string `json:"name"`
	// CommandsPerMonth is the monthly command allowance; 0 means none.
	CommandsPerMonth int64 `json:"commands_per_month"`
	// CommandsPerSec is the throughput limit; 0 means none.
	CommandsPerSec int64 `json:"commands_per_sec"`
}

// UpstashFree is Upstash's free plan: 500K commands a month and 10K
// commands a second. (The tracker's Risk Mitigation still quotes an older
// "10K commands/day"; both are plans a user can state with flags.)
var UpstashFree = Plan{Name: "upstash-free", CommandsPerMonth: 500_000, CommandsPerSec: 10_000}

// Days in a month for projections.
const daysPerMonth = 30

// Projection is what one op costs at a stated rate under a plan.
type Projection struct {
	Op            string  `json:"op"`
	Profile       string  `json:"profile,omitempty"`
	Rate          float64 `json:"rate_per_sec"`
	CommandsPerOp float64 `json:"commands_per_op"`
	PerSec        float64 `json:"commands_per_sec"`
	PerDay        float64 `json:"commands_per_day"`
	PerMonth      float64 `json:"commands_per_month"`
	// MonthShare and SecShare are the fractions of the plan's allowances
	// used (0 when the plan has no such limit).
	MonthShare float64 `json:"month_share"`
	SecShare   float64 `json:"sec_share"`
	Warning    string  `json:"warning,omitempty"`
}

// Project computes the commands op would send per second, day and month
// at rate ops per second, with cmdsPerOp commands each, against plan.
func Project(op, profile string, rate, cmdsPerOp float64, plan Plan) Projection {
	p := Projection{Op: op, Profile: profile, Rate: rate, CommandsPerOp: cmdsPerOp}
	p.PerSec = rate * cmdsPerOp
	p.PerDay = p.PerSec * 86400
	p.PerMonth = p.PerDay * daysPerMonth
	if plan.CommandsPerMonth > 0 {
		p.MonthShare = p.PerMonth / float64(plan.CommandsPerMonth)
	}
	if plan.CommandsPerSec > 0 {
		p.SecShare = p.PerSec / float64(plan.CommandsPerSec)
	}
	switch {
	case p.MonthShare > 1:
		p.Warning = fmt.Sprintf("exceeds %s: %s commands/month at %g/s is %.1f× the %s allowed; it lasts %.1f days",
			plan.Name, human(p.PerMonth), rate, p.MonthShare, human(float64(plan.CommandsPerMonth)), daysPerMonth/p.MonthShare)
	case p.SecShare > 1:
		p.Warning = fmt.Sprintf("exceeds %s: %s commands/s is over the %s/s limit", plan.Name, human(p.PerSec), human(float64(plan.CommandsPerSec)))
	}
	return p
}

// MaxRate is the highest rate of an op costing cmdsPerOp commands that
// stays within plan (both limits), or +Inf without limits.
func MaxRate(cmdsPerOp float64, plan Plan) float64 {
	r := math.Inf(1)
	if cmdsPerOp <= 0 {
		return r
	}
	if plan.CommandsPerMonth > 0 {
		r = float64(plan.CommandsPerMonth) / (daysPerMonth * 86400) / cmdsPerOp
	}
	if plan.CommandsPerSec > 0 {
		r = math.Min(r, float64(plan.CommandsPerSec)/cmdsPerOp)
	}
	return r
}

// human prints n with a K/M/G suffix.
func human(n float64) string {
	switch a := math.Abs(n); {
	case a >= 1e9:
		return trimFloat(n/1e9) + "G"
	case a >= 1e6:
		return trimFloat(n/1e6) + "M"
	case a >= 1e3:
		return trimFloat(n/1e3) + "K"
	}
	return trimFloat(n)
}

func trimFloat(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.3g", f)
}
