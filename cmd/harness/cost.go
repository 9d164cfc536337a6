package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gonogo/harness/bench"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/target"
)

const costSynopsis = `cost [--events-per-sec R] [--sse-connections N] [--heartbeat D] [--cache-reads-per-sec R]
       [--cache-writes-per-sec R] [--hit-rate F] [--instances N] [--profile seed,hardened]
       [--plan a,b] [--plans FILE] [--idle D] [--ops N] [--target process|remote-sim] [--rtt D] [--json]`

// costRun is what the cost flags configure.
type costRun struct {
	traffic bench.Traffic
	measure bench.CostConfig
	plans   []bench.Plan
	asJSON  bool
}

// runCost is `harness cost`: it measures each profile's commands per op
// and idle commands per second on a redis-server it starts, and prints the
// projection of the traffic for every profile and plan. Exit 0.
func runCost(ctx context.Context, args []string, e env) (int, error) {
	c, err := costConfig(args, e)
	if err != nil {
		return 0, err
	}
	removeStale(e.stderr, "cost")
	if !c.asJSON {
		fmt.Fprintf(e.stderr, "measuring %v: %s idle and %d calls per op each\n", c.measure.Profiles, c.measure.Idle, c.measure.Ops)
	}
	costs, err := bench.MeasureCosts(ctx, c.measure)
	if err != nil {
		return 0, err
	}
	r := bench.NewCostReport(c.traffic, string(c.measure.Kind), costs, c.plans)
	if c.asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return 0, exitcode.Harness(err)
		}
		return exitcode.Go, nil
	}
	r.WriteTable(e.stdout)
	return exitcode.Go, nil
}

// costConfig parses and range-checks the cost flags (bad input).
func costConfig(args []string, e env) (costRun, error) {
	def := bench.TrackerTraffic()
	fs := newFlags("cost", costSynopsis, e)
	events := fs.Float64("events-per-sec", def.EventsPerSec, "published events per second, all instances (the tracker states none: harness default)")
	sse := fs.Int("sse-connections", def.SSEConnections, "open SSE connections (the tracker states none: harness default)")
	hb := fs.Duration("heartbeat", def.HeartbeatEvery, "how often each SSE connection heartbeats its registry entry (TASK-008: every 1 s)")
	reads := fs.Float64("cache-reads-per-sec", def.CacheReadsPerSec, "flow-state cache reads per second (the tracker states none: harness default)")
	writes := fs.Float64("cache-writes-per-sec", def.CacheWritesPerSec, "cache invalidations per second (TASK-008: one per state update, as many as events)")
	hit := fs.Float64("hit-rate", def.HitRate, "cache hit rate; a miss fills the cache (Success Metrics: > 80%)")
	inst := fs.Int("instances", def.Instances, "layer instances, each with its measured idle cost (multi-instance SSE is the tracker's Phase 2)")
	prof := fs.String("profile", "seed,hardened", "comma-separated profiles to measure")
	planList := fs.String("plan", "", "comma-separated plans to project against (default: every plan of the plans file)")
	plansFile := fs.String("plans", "", "a plans `FILE` of your own (the shape of bench/plans.yaml) instead of the shipped one")
	idle := fs.Duration("idle", time.Minute, "idle window per profile: the layer's background commands are counted over it")
	ops := fs.Int("ops", 50, "calls per op measured")
	tgt := fs.String("target", string(target.KindProcess), "where the costs are measured: process (spawned redis-server) or remote-sim (TLS + injected RTT)")
	rtt := fs.Duration("rtt", 20*time.Millisecond, "remote-sim round-trip time")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of the tables")
	if err := parse(fs, args); err != nil {
		return costRun{}, err
	}
	if err := firstErr(
		inRange("idle", *idle, bench.MinCostIdle, bench.MaxCostIdle),
		inRange("ops", *ops, 1, bench.MaxCostOps),
		inRange("rtt", *rtt, minRTT, maxRTT),
		inRange("events-per-sec", *events, 0, 1e6),
		inRange("sse-connections", *sse, 0, 1_000_000),
		inRange("heartbeat", *hb, 100*time.Millisecond, time.Hour),
		inRange("cache-reads-per-sec", *reads, 0, 1e6),
		inRange("cache-writes-per-sec", *writes, 0, 1e6),
		inRange("hit-rate", *hit, 0, 1),
		inRange("instances", *inst, 1, 1000),
	); err != nil {
		return costRun{}, err
	}
	t := bench.Traffic{EventsPerSec: *events, SSEConnections: *sse, HeartbeatEvery: *hb, CacheReadsPerSec: *reads,
		CacheWritesPerSec: *writes, HitRate: *hit, Instances: *inst}
	if err := t.Validate(); err != nil {
		return costRun{}, err
	}
	switch k := target.Kind(*tgt); k {
	case target.KindProcess, target.KindRemoteSim:
	default:
		return costRun{}, exitcode.Configf("--target %q: want process or remote-sim (a metered URL would spend its own quota)", *tgt)
	}
	all, err := loadPlans(*plansFile)
	if err != nil {
		return costRun{}, err
	}
	names := splitList(*planList)
	if len(names) == 0 {
		names = bench.PlanNames(all)
	}
	var plans []bench.Plan
	for _, n := range names {
		p, ok := all[n]
		if !ok {
			return costRun{}, exitcode.Configf("--plan %q: not in the plans file (known: %v)", n, bench.PlanNames(all))
		}
		plans = append(plans, p)
	}
	reg := profiles.Default()
	for _, p := range splitList(*prof) {
		if !slices.Contains(reg.Names(), p) {
			return costRun{}, exitcode.Configf("--profile %q: unknown (known: %s)", p, strings.Join(reg.Names(), ", "))
		}
	}
	return costRun{traffic: t, plans: plans, asJSON: *asJSON,
		measure: bench.CostConfig{Kind: target.Kind(*tgt), RTT: *rtt, Layers: reg, Profiles: splitList(*prof), Idle: *idle, Ops: *ops}}, nil
}
