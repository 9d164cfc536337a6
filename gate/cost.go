package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gonogo/harness/bench"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/target"
)

// gateCostIdle is a gate's idle window: one 30-second health interval
// (harness cost measures over 60s).
const gateCostIdle = 30 * time.Second

// CostJSON is the cost benchmark's full result in a run directory.
const CostJSON = "cost.json"

// runCost measures the plan's profile's costs on the benchmarks' target
// (process or remote-sim), projects the tracker's traffic under every
// shipped plan, and sets run.Cost (judged under bench.UpstashFree, the
// plan the bench projects against by default). A target it cannot measure
// on leaves run.Cost inconclusive with the reason.
func (p Plan) runCost(ctx context.Context, run *reports.Run, runDir string) error {
	t := bench.TrackerTraffic()
	plans := bench.Plans()
	c := &reports.Cost{Traffic: describeTraffic(t), Plan: bench.UpstashFree.Name}
	run.Cost = c
	if p.Bench.Kind != target.KindProcess && p.Bench.Kind != target.KindRemoteSim {
		c.Inconclusive = fmt.Sprintf("costs are measured on a process or remote-sim target, not %s", p.Bench.Kind)
		return nil
	}
	idle := p.CostIdle
	if idle == 0 {
		idle = gateCostIdle
	}
	costs, err := bench.MeasureCosts(ctx, bench.CostConfig{Kind: p.Bench.Kind, RTT: p.Bench.RTT, Layers: p.Registry,
		Profiles: p.Profiles[:1], Idle: idle})
	if err != nil {
		// The criteria on it are INCONCLUSIVE with the reason; the run
		// goes on.
		c.Inconclusive = firstLine(err.Error())
		return nil
	}
	var list []bench.Plan
	for _, n := range bench.PlanNames(plans) {
		list = append(list, plans[n])
	}
	rep := bench.NewCostReport(t, string(p.Bench.Kind), costs, list)
	for _, pc := range rep.Costs {
		cp := reports.CostProfile{Profile: pc.Profile, PublishClient: pc.Client[bench.OpPublish], IdlePerSec: pc.IdleClientPerSec,
			IdleWindowMs: reports.Ms(pc.IdleWindow), ConnectionsIdle: pc.IdleConnections, ConnectionsLoad: pc.LoadConnections}
		if pc.Server != nil {
			v := pc.Server[bench.OpPublish]
			cp.PublishServer = &v
		}
		if pc.IdleServerPerSec != nil {
			cp.IdlePerSec = *pc.IdleServerPerSec
		}
		c.Profiles = append(c.Profiles, cp)
	}
	for _, x := range rep.Projections {
		c.Rows = append(c.Rows, reports.CostRow{Profile: x.Profile, Plan: x.Plan, Basis: x.Basis, CommandsPerSec: x.PerSec,
			CommandsPerMonth: x.PerMonth, IdlePerMonth: x.IdlePerMonth, USDMonth: x.CostMonth, IdleUSDMonth: x.IdleCostMonth,
			Quota: x.Quota, DaysToQuota: x.DaysToQuota, OverRate: x.OverRate, Connections: x.Connections, ConnectionCap: x.ConnectionCap})
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return exitcode.Harness(err)
	}
	return saveFile(runDir, CostJSON, append(data, '\n'))
}

// describeTraffic is the traffic in one line.
func describeTraffic(t bench.Traffic) string {
	return fmt.Sprintf("the tracker's (harness cost defaults): %g events/s, %d SSE connections heartbeating every %s, %g cache reads/s at a %.0f%% hit rate, %g cache writes/s, %d instance(s)",
		t.EventsPerSec, t.SSEConnections, t.HeartbeatEvery, t.CacheReadsPerSec, 100*t.HitRate, t.CacheWritesPerSec, t.Instances)
}
