package bench

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
)

// Traffic is the load a team expects in production, the input of a cost
// projection (harness cost).
type Traffic struct {
	// EventsPerSec is publishes per second, over all instances.
	EventsPerSec float64 `json:"events_per_sec"`
	// SSEConnections are the open SSE streams, each heartbeating its
	// registry entry every HeartbeatEvery.
	SSEConnections int           `json:"sse_connections"`
	HeartbeatEvery time.Duration `json:"heartbeat_every_ns"`
	// CacheReadsPerSec are flow-state reads; a miss (1-HitRate of them)
	// fills the cache (a set). CacheWritesPerSec are invalidations (the
	// tracker's update_flow_state invalidates, then publishes).
	CacheReadsPerSec  float64 `json:"cache_reads_per_sec"`
	CacheWritesPerSec float64 `json:"cache_writes_per_sec"`
	HitRate           float64 `json:"cache_hit_rate"`
	// Instances run the layer, each with its idle cost.
	Instances int `json:"instances"`
}

// TrackerTraffic is the traffic the tracker's plan assumes, where it
// states it, else a stated harness default (the tracker gives no rates):
//   - events/s 1 and cache reads/s 1: not stated by the tracker; its one
//     number is the quota it expects to fit in ("Free tier = 10K
//     commands/day", Risk Mitigation): 0.116 commands/s in all;
//   - SSE connections 10: not stated (the bench's default SSE clients);
//   - heartbeat every 1 s: TASK-008's SSE endpoint heartbeats its
//     registry entry, then sleeps 1 s, in a loop;
//   - cache writes = events: TASK-008's update_flow_state invalidates the
//     cache and publishes one event per update;
//   - hit rate 0.8: the Success Metrics' "Cache hit rate: > 80%";
//   - 1 instance: multi-instance SSE is a Phase 2 (post-Alpha) feature.
func TrackerTraffic() Traffic {
	return Traffic{EventsPerSec: 1, SSEConnections: 10, HeartbeatEvery: time.Second,
		CacheReadsPerSec: 1, CacheWritesPerSec: 1, HitRate: 0.8, Instances: 1}
}

// Validate range-checks every field (bad input).
func (t Traffic) Validate() error {
	for _, c := range []struct {
		name      string
		v, lo, hi float64
	}{
		{"events-per-sec", t.EventsPerSec, 0, 1e6},
		{"sse-connections", float64(t.SSEConnections), 0, 1e6},
		{"heartbeat (seconds)", t.HeartbeatEvery.Seconds(), 0.1, 3600},
		{"cache-reads-per-sec", t.CacheReadsPerSec, 0, 1e6},
		{"cache-writes-per-sec", t.CacheWritesPerSec, 0, 1e6},
		{"hit-rate", t.HitRate, 0, 1},
		{"instances", float64(t.Instances), 1, 1000},
	} {
		if math.IsNaN(c.v) || c.v < c.lo || c.v > c.hi {
			return exitcode.Configf("--%s %g: want %g to %g", c.name, c.v, c.lo, c.hi)
		}
	}
	return nil
}

// ProfileCost is what one profile's operations and idle instance cost, as
// measured against a redis-server (MeasureCosts): commands per op as the
// client sent them and as the server executed them (INFO commandstats,
// script-internal commands included), and the commands an idle instance
// sends per second (health checks, probes, leases, metric flushes).
type ProfileCost struct {
	Profile string `json:"profile"`
	// Client and Server are commands per op by op (CostOps); Server is nil
	// when the target gave no INFO commandstats.
	Client map[string]float64 `json:"client_per_op"`
	Server map[string]float64 `json:"server_per_op,omitempty"`
	// IdleClientPerSec and IdleServerPerSec are one idle instance's
	// commands per second over IdleWindow; IdleByCommand the server's by
	// command (per second).
	IdleClientPerSec float64            `json:"idle_client_per_sec"`
	IdleServerPerSec *float64           `json:"idle_server_per_sec,omitempty"`
	IdleByCommand    map[string]float64 `json:"idle_server_by_command,omitempty"`
	IdleWindow       time.Duration      `json:"idle_window_ns"`
	// IdleConnections and LoadConnections are one instance's connections
	// (CLIENT LIST) idle after start-up and after the measured ops.
	IdleConnections *int `json:"idle_connections,omitempty"`
	LoadConnections *int `json:"load_connections,omitempty"`
}

// CostOps are the ops a cost projection prices, measured one by one.
var CostOps = []string{OpPublish, OpCacheGet, OpCacheSet, OpCacheInvalidate, OpRegHeartbeat}

// CostLine is one item of a projection: an op's rate and commands.
type CostLine struct {
	Item          string  `json:"item"`
	Rate          float64 `json:"rate_per_sec"`
	CommandsPerOp float64 `json:"commands_per_op"`
	PerSec        float64 `json:"commands_per_sec"`
}

// CostProjection is a profile's traffic priced under one plan.
type CostProjection struct {
	Profile string `json:"profile"`
	Plan    string `json:"plan"`
	// Basis is "server" (executed commands, the conservative rule) or
	// "client" (sent: a plan known not to bill script-internal commands,
	// or no commandstats).
	Basis    string     `json:"basis"`
	Lines    []CostLine `json:"lines"`
	PerSec   float64    `json:"commands_per_sec"`
	PerMonth float64    `json:"commands_per_month"`
	// IdlePerMonth is the idle instances' share of PerMonth.
	IdlePerMonth float64 `json:"idle_commands_per_month"`
	// CostMonth and IdleCostMonth are USD a month (the idle part: what it
	// adds at the per-command price); nil when the plan's price is
	// unknown.
	CostMonth     *float64 `json:"cost_month_usd,omitempty"`
	IdleCostMonth *float64 `json:"idle_cost_month_usd,omitempty"`
	// DaysToQuota is the days until the plan's command quota runs out
	// (under 1: within each day, for a daily quota); nil when it has none
	// or it is unknown (Quota says which).
	DaysToQuota *float64 `json:"days_to_quota,omitempty"`
	Quota       string   `json:"quota"`
	// OverRate says PerSec is over the plan's commands/s cap.
	OverRate bool `json:"over_rate,omitempty"`
	// Connections is the instances' idle connections; ConnectionCap the
	// plan's (0 none or unknown).
	Connections   *int  `json:"connections,omitempty"`
	ConnectionCap int64 `json:"connection_cap,omitempty"`
}

// ProjectCost prices traffic t for a profile whose costs are c under plan.
func ProjectCost(t Traffic, c ProfileCost, plan Plan) CostProjection {
	per, idle, basis := c.Client, c.IdleClientPerSec, "client"
	if plan.billsServer() && c.Server != nil && c.IdleServerPerSec != nil {
		per, idle, basis = c.Server, *c.IdleServerPerSec, "server"
	}
	p := CostProjection{Profile: c.Profile, Plan: plan.Name, Basis: basis, ConnectionCap: plan.Connections}
	add := func(item string, rate, cmds float64) {
		p.Lines = append(p.Lines, CostLine{Item: item, Rate: rate, CommandsPerOp: cmds, PerSec: rate * cmds})
		p.PerSec += rate * cmds
	}
	add(OpPublish, t.EventsPerSec, per[OpPublish])
	add(OpCacheGet, t.CacheReadsPerSec, per[OpCacheGet])
	add(OpCacheSet+" (misses)", t.CacheReadsPerSec*(1-t.HitRate), per[OpCacheSet])
	add(OpCacheInvalidate, t.CacheWritesPerSec, per[OpCacheInvalidate])
	hb := 0.0
	if t.HeartbeatEvery > 0 {
		hb = float64(t.SSEConnections) / t.HeartbeatEvery.Seconds()
	}
	add(OpRegHeartbeat, hb, per[OpRegHeartbeat])
	add("idle instance", float64(t.Instances), idle)
	const month = daysPerMonth * 86400
	p.PerMonth = p.PerSec * month
	p.IdlePerMonth = float64(t.Instances) * idle * month
	if plan.known("price_month_usd") && plan.known("price_per_100k_commands_usd") {
		c := plan.PricePerMonth + plan.PricePer100K*p.PerMonth/100_000
		ic := plan.PricePer100K * p.IdlePerMonth / 100_000
		p.CostMonth, p.IdleCostMonth = &c, &ic
	}
	perDay := p.PerSec * 86400
	switch {
	case plan.CommandsPerMonth > 0 || plan.CommandsPerDay > 0:
		days, daily := math.Inf(1), false
		if plan.CommandsPerMonth > 0 && perDay > 0 {
			days = float64(plan.CommandsPerMonth) / perDay
		}
		if d := float64(plan.CommandsPerDay) / perDay; plan.CommandsPerDay > 0 && perDay > float64(plan.CommandsPerDay) && d < days {
			days, daily = d, true
		}
		switch {
		case daily:
			p.DaysToQuota, p.Quota = &days, fmt.Sprintf("runs out after %.1f h each day", days*24)
		case days < 1:
			p.DaysToQuota, p.Quota = &days, fmt.Sprintf("runs out after %.1f h", days*24)
		case days < daysPerMonth:
			p.DaysToQuota, p.Quota = &days, fmt.Sprintf("runs out after %.1f days", days)
		default:
			p.Quota = "lasts the month"
			if !math.IsInf(days, 1) {
				p.DaysToQuota = &days
			}
		}
	case !plan.known("commands_month") || !plan.known("commands_day"):
		p.Quota = ScriptUnknown
	default:
		p.Quota = quantityNone
	}
	p.OverRate = plan.CommandsPerSec > 0 && p.PerSec > float64(plan.CommandsPerSec)
	if c.IdleConnections != nil {
		n := *c.IdleConnections * t.Instances
		p.Connections = &n
	}
	return p
}

// CostReport is what harness cost prints: the traffic, each profile's
// measured costs and the projections for every profile and plan.
type CostReport struct {
	Traffic     Traffic          `json:"traffic"`
	Target      string           `json:"target"`
	Costs       []ProfileCost    `json:"costs"`
	Projections []CostProjection `json:"projections"`
}

// NewCostReport projects every profile's costs under every plan (in the
// order given).
func NewCostReport(t Traffic, targetDesc string, costs []ProfileCost, plans []Plan) *CostReport {
	r := &CostReport{Traffic: t, Target: targetDesc, Costs: costs}
	for _, c := range costs {
		for _, pl := range plans {
			r.Projections = append(r.Projections, ProjectCost(t, c, pl))
		}
	}
	return r
}

// WriteTable prints the measured costs and the projections.
func (r *CostReport) WriteTable(w io.Writer) {
	t := r.Traffic
	fmt.Fprintf(w, "traffic: %g events/s, %d SSE connections heartbeating every %s, %g cache reads/s (hit rate %.0f%%), %g cache writes/s, %d instance(s)\n",
		t.EventsPerSec, t.SSEConnections, t.HeartbeatEvery, t.CacheReadsPerSec, 100*t.HitRate, t.CacheWritesPerSec, t.Instances)
	fmt.Fprintf(w, "measured on %s\n\n", r.Target)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "profile\t")
	for _, op := range CostOps {
		fmt.Fprintf(tw, "%s client/server\t", op)
	}
	fmt.Fprintln(tw, "idle cmds/s client/server\tidle window\tconnections idle/after ops\t")
	for _, c := range r.Costs {
		fmt.Fprintf(tw, "%s\t", c.Profile)
		for _, op := range CostOps {
			fmt.Fprintf(tw, "%.2f/%s\t", c.Client[op], optF(c.Server, op))
		}
		fmt.Fprintf(tw, "%.3f/%s\t%s\t%s/%s\t\n", c.IdleClientPerSec, optP(c.IdleServerPerSec), c.IdleWindow, optI(c.IdleConnections), optI(c.LoadConnections))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "profile\tplan\tbasis\tcmds/s\tcmds/month\tof which idle\tUSD/month\tidle USD/month\tquota\tcmds/s cap\tconnections (cap)\t")
	for _, p := range r.Projections {
		rate := "ok"
		if p.OverRate {
			rate = "OVER"
		}
		conns := optI(p.Connections)
		if p.ConnectionCap > 0 {
			conns += fmt.Sprintf(" (%d)", p.ConnectionCap)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.3g\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", p.Profile, p.Plan, p.Basis, p.PerSec, human(p.PerMonth),
			human(p.IdlePerMonth), usd(p.CostMonth), usd(p.IdleCostMonth), p.Quota, rate, conns)
	}
	tw.Flush()
}

func optF(m map[string]float64, k string) string {
	if m == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", m[k])
}

func optP(f *float64) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f", *f)
}

func optI(n *int) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}

func usd(f *float64) string {
	if f == nil {
		return ScriptUnknown
	}
	return fmt.Sprintf("%.2f", *f)
}
