package bench

import (
	"context"
	"errors"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/target"
	"github.com/redis/go-redis/v9"
)

// CostConfig configures MeasureCosts.
type CostConfig struct {
	// Target is the Redis the costs are measured on (its INFO
	// commandstats: without it only the client's side is measured). Nil:
	// one is started of Kind (process or remote-sim, with RTT).
	Target   target.Target
	Kind     target.Kind
	RTT      time.Duration
	Layers   *impl.Profiles
	Profiles []string
	// Idle is the idle window per profile. Default 60s: it holds two
	// 30-second health checks and a cache lease renewal (hardened) and one
	// 60-second cleanup sweep.
	Idle time.Duration
	// Ops is the calls per op measured. Default 50.
	Ops int
	// CallBudget is the layers' publish and call budget. Default 1s: a
	// layer that fell back to memory on a slow target (remote-sim) would
	// not be measured.
	CallBudget time.Duration
}

// Limits of CostConfig.
const (
	MinCostIdle = time.Second
	MaxCostIdle = time.Hour
	MaxCostOps  = 100_000
)

// MeasureCosts measures, for each profile in turn on cfg.Target, one
// instance's connections and commands while idle, then the commands of
// each of CostOps (cfg.Ops calls each, sequential). The server's side is
// INFO commandstats around each phase; an op's share of the layer's
// background traffic (the idle rate times the phase's length) is taken
// out of it.
func MeasureCosts(ctx context.Context, cfg CostConfig) ([]ProfileCost, error) {
	if cfg.Idle == 0 {
		cfg.Idle = time.Minute
	}
	if cfg.Ops == 0 {
		cfg.Ops = 50
	}
	if cfg.CallBudget == 0 {
		cfg.CallBudget = time.Second
	}
	switch {
	case cfg.Idle < MinCostIdle || cfg.Idle > MaxCostIdle:
		return nil, exitcode.Configf("idle window %s: want %s to %s", cfg.Idle, MinCostIdle, MaxCostIdle)
	case cfg.Ops < 1 || cfg.Ops > MaxCostOps:
		return nil, exitcode.Configf("ops %d: want 1 to %d", cfg.Ops, MaxCostOps)
	case len(cfg.Profiles) == 0:
		return nil, exitcode.Configf("no profile to measure")
	}
	for _, p := range cfg.Profiles {
		if !contains(cfg.Layers.Names(), p) {
			return nil, exitcode.Configf("unknown profile %q (known: %v)", p, cfg.Layers.Names())
		}
	}
	if cfg.Target == nil {
		if cfg.Kind != "" && cfg.Kind != target.KindProcess && cfg.Kind != target.KindRemoteSim {
			return nil, exitcode.Configf("target %q: costs are measured on a process or remote-sim target", cfg.Kind)
		}
		tg, err := openTarget(ctx, &Config{Target: cfg.Kind, RTT: cfg.RTT})
		if err != nil {
			return nil, err
		}
		defer tg.Close()
		cfg.Target = tg
	}
	m, err := newServerMeter(ctx, cfg.Target, nil)
	switch {
	case errors.Is(err, errNoCommandstats):
		m = nil
	case err != nil:
		return nil, exitcode.Harnessf("server meter: %w", err)
	default:
		defer m.Close()
	}
	var out []ProfileCost
	for _, p := range cfg.Profiles {
		c, err := measureProfile(ctx, cfg, m, p)
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

// measureProfile measures one profile with a fresh layer whose
// connections carry their own client name.
func measureProfile(ctx context.Context, cfg CostConfig, m *serverMeter, profile string) (ProfileCost, error) {
	pc := ProfileCost{Profile: profile, Client: map[string]float64{}, IdleWindow: cfg.Idle}
	run := runID() + "-cost-" + profile
	hook := counter.New()
	lcfg := impl.Config{URL: cfg.Target.URL(), TLS: cfg.Target.TLS(), Enabled: true, EventBus: true, Cache: true, SSE: true,
		Hooks: []redis.Hook{hook}, KeyPrefix: cfg.Target.KeyPrefix() + run + ":", ClientName: "gonogo-" + run,
		PublishBudget: cfg.CallBudget, CallBudget: cfg.CallBudget}
	l, err := cfg.Layers.New(ctx, profile, lcfg)
	if err != nil {
		return pc, exitcode.Harnessf("profile %s: %w", profile, err)
	}
	defer l.Close()
	sm := &stepMeter{m: m, name: lcfg.ClientName}
	if m == nil {
		sm = nil
	}
	sm.started(ctx, 1)
	if sm != nil {
		pc.IdleConnections = sm.idle
	}
	watch := watchMode(l.Manager)
	// Idle: nothing but the layer's own background work.
	sent := func() int64 {
		var n int64
		for _, c := range hook.Snapshot() {
			n += c.Commands
		}
		return n
	}
	c0, before, t0 := readOpt(ctx, m), sent(), time.Now()
	select {
	case <-time.After(cfg.Idle):
	case <-ctx.Done():
		watch.stop()
		return pc, ctx.Err()
	}
	el := time.Since(t0).Seconds()
	c1 := readOpt(ctx, m)
	pc.IdleClientPerSec = float64(sent()-before) / el
	idleRate := 0.0
	if c0 != nil && c1 != nil {
		d := c1.since(c0)
		idleRate = float64(d.total()) / el
		pc.IdleServerPerSec = &idleRate
		pc.IdleByCommand = map[string]float64{}
		for name, n := range d {
			pc.IdleByCommand[name] = float64(n) / el
		}
		pc.Server = map[string]float64{}
	}
	for _, name := range CostOps {
		op, err := layerOp(ctx, name, l, run+"-"+name, 1, knobs{members: lookupConns})
		if err != nil {
			watch.stop()
			return pc, exitcode.Harnessf("%s %s: %w", profile, name, err)
		}
		c0, t0 := readOpt(ctx, m), time.Now()
		for i := 0; i < cfg.Ops; i++ {
			if err := op.Do(ctx, Call{Seq: int64(i)}); err != nil {
				watch.stop()
				return pc, exitcode.Harnessf("%s %s: call %d: %w", profile, name, i, err)
			}
		}
		el := time.Since(t0).Seconds()
		c1 := readOpt(ctx, m)
		pc.Client[name] = float64(hook.Snapshot()[name].Commands) / float64(cfg.Ops)
		if pc.Server != nil && c0 != nil && c1 != nil {
			pc.Server[name] = max(float64(c1.since(c0).total())-idleRate*el, 0) / float64(cfg.Ops)
		}
	}
	if memory, samples := watch.stop(); memory > 0 {
		return pc, exitcode.Harnessf("%s fell back to memory while it was measured (%d of %d mode samples): these would not be Redis's numbers", profile, memory, samples)
	}
	if sm != nil {
		if n, err := m.connections(ctx, sm.name); err == nil {
			pc.LoadConnections = &n
		}
	}
	return pc, nil
}

// readOpt is the meter's reading, nil without a meter or on error (the
// server's side is then left out).
func readOpt(ctx context.Context, m *serverMeter) commandCounts {
	if m == nil {
		return nil
	}
	c, err := m.read(ctx)
	if err != nil {
		return nil
	}
	return c
}
