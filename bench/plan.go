package bench

import (
	"fmt"
	"math"
)

// Plan is a Redis plan (Upstash bills per command), as plans.yaml states
// it. A zero limit or price means none, or unknown when the field is in
// Unknown.
type Plan struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// CommandsPerMonth and CommandsPerDay are the command allowances.
	CommandsPerMonth int64 `json:"commands_per_month"`
	CommandsPerDay   int64 `json:"commands_per_day,omitempty"`
	// CommandsPerSec is the throughput limit.
	CommandsPerSec int64 `json:"commands_per_sec"`
	// Connections is the concurrent connection cap, RequestBytes the
	// largest request.
	Connections  int64 `json:"connections,omitempty"`
	RequestBytes int64 `json:"request_bytes,omitempty"`
	// PricePerMonth (fixed) and PricePer100K (per 100K commands), USD.
	PricePerMonth float64 `json:"price_month_usd,omitempty"`
	PricePer100K  float64 `json:"price_per_100k_commands_usd,omitempty"`
	// ScriptCommands says whether the commands a script runs are billed
	// (yes, no, unknown).
	ScriptCommands string `json:"script_commands,omitempty"`
	// Unknown lists the fields no public source gave (plans.yaml keys).
	Unknown []string `json:"unknown,omitempty"`
}

// UpstashFree is Upstash's free plan (plans.yaml): 500K commands a month
// and 10K commands a second. (The tracker's Risk Mitigation still quotes an
// older "10K commands/day": plan upstash-free-2024.)
var UpstashFree = Plans()["upstash-free"]

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
	DayShare   float64 `json:"day_share,omitempty"`
	SecShare   float64 `json:"sec_share"`
	// Basis is what CommandsPerOp counts: "server" (executed, script-
	// internal commands included: the conservative rule) or "client"
	// (sent: a plan known not to bill script-internal commands, or a
	// target that did not report INFO commandstats).
	Basis string `json:"basis"`
	// CostPerMonth is the plan's price for that traffic (USD); nil when a
	// price is unknown, or the traffic is over a quota (the plan stops it).
	CostPerMonth *float64 `json:"cost_per_month_usd,omitempty"`
	Warning      string   `json:"warning,omitempty"`
}

// Project computes the commands op would send per second, day and month
// at rate ops per second, with cmdsPerOp commands each, against plan.
func Project(op, profile string, rate, cmdsPerOp float64, plan Plan) Projection {
	p := Projection{Op: op, Profile: profile, Rate: rate, CommandsPerOp: cmdsPerOp, Basis: "client"}
	p.PerSec = rate * cmdsPerOp
	p.PerDay = p.PerSec * 86400
	p.PerMonth = p.PerDay * daysPerMonth
	if plan.CommandsPerMonth > 0 {
		p.MonthShare = p.PerMonth / float64(plan.CommandsPerMonth)
	}
	if plan.CommandsPerDay > 0 {
		p.DayShare = p.PerDay / float64(plan.CommandsPerDay)
	}
	if plan.CommandsPerSec > 0 {
		p.SecShare = p.PerSec / float64(plan.CommandsPerSec)
	}
	if plan.known("price_month_usd") && plan.known("price_per_100k_commands_usd") && p.MonthShare <= 1 && p.DayShare <= 1 {
		c := plan.PricePerMonth + plan.PricePer100K*p.PerMonth/100_000
		p.CostPerMonth = &c
	}
	switch {
	case p.MonthShare > 1:
		p.Warning = fmt.Sprintf("exceeds %s: %s commands/month at %g/s is %.1f× the %s allowed; it lasts %.1f days",
			plan.Name, human(p.PerMonth), rate, p.MonthShare, human(float64(plan.CommandsPerMonth)), daysPerMonth/p.MonthShare)
	case p.DayShare > 1:
		p.Warning = fmt.Sprintf("exceeds %s: %s commands/day at %g/s is %.1f× the %s allowed; it lasts %.1f hours",
			plan.Name, human(p.PerDay), rate, p.DayShare, human(float64(plan.CommandsPerDay)), 24/p.DayShare)
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
