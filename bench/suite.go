// Package bench measures Redis and the layer under load: raw Redis
// baselines (XADD, PUBLISH, GET, …) and each profile's layer ops, closed
// loop (a fixed number of workers, as fast as they go) or open loop (calls
// at a fixed rate, latency from each call's intended start), on a spawned
// redis-server, remote-sim or any URL. A row reports throughput, latency
// percentiles, round trips and commands per op (client side, and server
// side where the target answers INFO commandstats), and a run projects the
// command count of a plan (plans.yaml) under a command budget it never
// exceeds on a metered target. Run is the entry point; `harness bench`
// and a gate run's benchmarks (package gate) call it.
package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/redact"
	"github.com/gonogo/harness/target"
	"github.com/redis/go-redis/v9"
)

// Config is one bench invocation. Zero values mean the defaults stated.
type Config struct {
	// Target is target.KindProcess (default), KindRemoteSim or KindURL.
	Target target.Kind
	// URL is the url target's redis:// or rediss:// URL (a secret).
	URL string
	// RTT is remote-sim's round-trip time, half each way. Default 20ms.
	RTT time.Duration
	// Profiles are the layer profiles to run, in column order. Default
	// every profile Layers has.
	Profiles []string
	// Layers are the profile constructors.
	Layers *impl.Profiles
	// Ops are the op kinds to run (RawOps, LayerOps). Default: the
	// preset's, or every raw and layer op.
	Ops []string
	// Preset names a fixed set of steps (see Presets); it overrides Ops
	// and Load.
	Preset string
	// Load drives every step of the default preset.
	Load Load
	// SSEClients is the number of SSE clients of the sse op. Default 10.
	SSEClients int
	// MaxCommands is the command budget. On a url target it defaults to
	// the estimated need; 0 elsewhere means no budget.
	MaxCommands int64
	// Plan is the metered plan projections are made against. Default
	// UpstashFree.
	Plan Plan
	// EventRate is the event rate (per second) projections assume.
	// Default 1.
	EventRate float64
	// Progress receives progress (nil: none).
	Progress Progress
	// CallBudget, when set, is the layers' PublishBudget and CallBudget
	// (how long a call may wait for Redis before the layer falls back to
	// memory). Zero keeps each layer's default.
	CallBudget time.Duration
	// AckReplicas is the layers' impl.Config.AckReplicas (durable
	// acknowledgement: 0 auto, on for the sentinel target; -1 off).
	AckReplicas int
	// RedisBenchmark runs redis-benchmark with the raw xadd step's
	// clients and op count against the same server, before and after
	// the harness's xadd (process target only).
	RedisBenchmark bool
	// Rounds repeats the whole step list, interleaved (round 1's steps,
	// then round 2's, ...), and reports per row the round with the median
	// throughput, so a ratio is not decided by one noisy step. Default 1.
	Rounds int
	// Sweep, when set, runs its parameter's op at each of its values
	// instead of the preset's steps (see SweepParams).
	Sweep *Sweep
	// OutboxCap, when set, is the layers' outbox cap (impl.Config).
	OutboxCap int
	// SSEInstance, when set, runs the sse op's serving instance (B, the
	// one the SSE clients connect to) as a process of its own: the
	// command (argv) to which --profile P --addr 127.0.0.1:PORT are
	// appended, with the tracker's environment (REDIS_URL, …) pointing at
	// the target; `harness serve` is one. Its footprint is then the
	// instance's alone, and its connections' fds are not the clients'.
	// Process target only.
	SSEInstance []string
	// Shard, when set, runs this share of every step's load (rate, ops
	// and workers divided by the share count) and keeps each row's
	// latency histogram (Result.Hist) for Merge. ShardRun, when set,
	// names the run on the target: the shares meet there (an auto index
	// is claimed, and each waits up to ShardWait, default
	// DefaultShardWait, for all to be ready) before the first step.
	Shard     *Shard
	ShardRun  string
	ShardWait time.Duration
	// ClientProcs is the GOMAXPROCS the run's clients (and the layers
	// under test, which run in this process) get while the steps run. 0:
	// one CPU fewer than the machine has when Redis runs on this machine
	// (process and remote-sim targets), so that the load generator does
	// not take the server's CPU (redis-benchmark is one thread), unless
	// the GOMAXPROCS environment variable chose; unchanged otherwise.
	ClientProcs int
}

// clientProcs is the GOMAXPROCS to run the steps with; 0 leaves it alone.
func (c Config) clientProcs(getenv func(string) string) int {
	switch {
	case c.ClientProcs > 0:
		return c.ClientProcs
	case getenv("GOMAXPROCS") != "" || c.Target == target.KindURL:
		return 0
	}
	return max(1, runtime.NumCPU()-1)
}

// Step is one op driven with one load (once per profile for layer ops).
// Round numbers the repetitions of the step list (Config.Rounds) from 0;
// Point is the sweep value it runs at (nil outside a sweep).
type Step struct {
	Op    string
	Load  Load
	Round int
	Point *Point
}

// Presets lists the named step sets.
var Presets = map[string]string{
	"standard": "every raw op and every layer op with the given load (the default)",
	"task011":  "TASK-011: 100 concurrent publishes (100 workers, one event each on its own flow), 1 KB cache set and get",
	"publish":  "the hot path: raw XADD (k v, and the event's JSON: xadd_event) and publish per profile, with the given load",
	"baseline": "raw XADD only, with the given load (make bench-baseline)",
}

// steps expands the preset and ops into steps.
func (c Config) steps() ([]Step, error) {
	if c.Sweep != nil {
		return c.sweepSteps(), nil
	}
	one := func(ops []string) []Step {
		s := make([]Step, len(ops))
		for i, op := range ops {
			s[i] = Step{Op: op, Load: c.Load}
		}
		return s
	}
	switch c.Preset {
	case "", "standard":
		if len(c.Ops) > 0 {
			return one(c.Ops), nil
		}
		return one(append(append([]string(nil), RawOps...), LayerOps...)), nil
	case "task011":
		burst := Load{Workers: 100, Ops: 100, Interval: c.Load.Interval}
		single := Load{Workers: 1, Ops: 100, Interval: c.Load.Interval}
		return []Step{{Op: OpXAdd, Load: burst}, {Op: OpPublish, Load: burst}, {Op: OpSet, Load: single}, {Op: OpCacheSet, Load: single}, {Op: OpGet, Load: single}, {Op: OpCacheGet, Load: single}}, nil
	case "publish":
		return one([]string{OpXAdd, OpXAddEvent, OpPublish}), nil
	case "baseline":
		return one([]string{OpXAdd}), nil
	}
	return nil, fmt.Errorf("unknown preset %q (known: %s)", c.Preset, strings.Join(presetNames(), ", "))
}

func containsStep(steps []Step, op string) bool {
	for _, s := range steps {
		if s.Op == op {
			return true
		}
	}
	return false
}

func presetNames() []string {
	return []string{"baseline", "publish", "standard", "task011"}
}

// validate checks the configuration before anything starts. Every error
// is bad input (exit 3).
func (c *Config) validate() error {
	if c.Target == "" {
		c.Target = target.KindProcess
	}
	if c.RTT == 0 {
		c.RTT = 20 * time.Millisecond
	}
	if c.SSEClients == 0 {
		c.SSEClients = 10
	}
	if c.Plan.Name == "" {
		c.Plan = UpstashFree
	}
	if c.EventRate == 0 {
		c.EventRate = 1
	}
	if c.ShardWait == 0 {
		c.ShardWait = DefaultShardWait
	}
	if c.Layers != nil && len(c.Profiles) == 0 {
		c.Profiles = c.Layers.Names()
	}
	switch {
	case c.Target != target.KindProcess && c.Target != target.KindRemoteSim && c.Target != target.KindURL && c.Target != target.KindSentinel && c.Target != target.KindCluster:
		return exitcode.Configf("unknown target %q (want process, remote-sim, sentinel, cluster or url)", c.Target)
	case c.AckReplicas < -1 || c.AckReplicas > impl.MaxAckReplicas:
		return exitcode.Configf("ack-replicas %d: want -1 (off), 0 (auto) or 1 to %d", c.AckReplicas, impl.MaxAckReplicas)
	case c.Target == target.KindURL && c.URL == "":
		return exitcode.Configf("target url needs --url (or REDIS_URL)")
	case c.Target != target.KindURL && c.URL != "":
		return exitcode.Configf("--url is only for --target url")
	case c.RTT < 0:
		return exitcode.Configf("rtt %s: must not be negative", c.RTT)
	case c.ClientProcs < 0:
		return exitcode.Configf("client-procs %d: must not be negative", c.ClientProcs)
	case c.CallBudget < 0:
		return exitcode.Configf("call-budget %s: must not be negative", c.CallBudget)
	case c.MaxCommands < 0:
		return exitcode.Configf("max-commands %d: must not be negative", c.MaxCommands)
	case c.EventRate < 0:
		return exitcode.Configf("event-rate %g: must be > 0", c.EventRate)
	case c.Plan.CommandsPerMonth < 0 || c.Plan.CommandsPerSec < 0:
		return exitcode.Configf("plan limits must not be negative")
	case c.SSEClients < 0:
		return exitcode.Configf("sse clients %d: must not be negative", c.SSEClients)
	case c.Rounds < 0:
		return exitcode.Configf("rounds %d: must not be negative", c.Rounds)
	case c.RedisBenchmark && c.Target != target.KindProcess:
		return exitcode.Configf("--redis-benchmark needs --target process")
	case c.Shard != nil && c.Shard.Index < 0 && c.ShardRun == "":
		return exitcode.Configf("--shard auto/N claims its index on the target: it needs --shard-run NAME")
	case c.ShardRun != "" && !shardRunRE.MatchString(c.ShardRun):
		return exitcode.Configf("--shard-run %q: want 1 to 64 letters, digits, _ . -", c.ShardRun)
	case c.ShardRun != "" && c.Shard == nil:
		return exitcode.Configf("--shard-run needs --shard")
	case c.Shard != nil && (c.Shard.Count < 1 || c.Shard.Index >= c.Shard.Count):
		return exitcode.Configf("shard %s: out of range", c.Shard)
	case c.Shard != nil && c.Sweep != nil && c.Sweep.Param == SweepOutage:
		return exitcode.Configf("the outage sweep takes Redis away: it cannot be sharded")
	case len(c.SSEInstance) > 0 && c.Target != target.KindProcess:
		return exitcode.Configf("an SSE instance process needs --target process")
	case c.OutboxCap < 0:
		return exitcode.Configf("outbox cap %d: must not be negative", c.OutboxCap)
	}
	if err := c.validateSweep(); err != nil {
		return exitcode.Config(err)
	}
	if err := c.Load.Validate(); err != nil {
		return exitcode.Config(err)
	}
	if c.Load.Rate == 0 && c.Load.Ops == 0 && c.Load.Duration == 0 && c.Preset != "task011" {
		c.Load.Duration = 5 * time.Second
	}
	steps, err := c.steps()
	if err != nil {
		return exitcode.Config(err)
	}
	if c.RedisBenchmark && !containsStep(steps, OpXAdd) {
		return exitcode.Configf("--redis-benchmark compares with the xadd op, which this run does not have")
	}
	for _, s := range steps {
		if !isRaw(s.Op) && !contains(LayerOps, s.Op) {
			return exitcode.Configf("unknown op %q (known: %s, %s)", s.Op, strings.Join(RawOps, ","), strings.Join(LayerOps, ","))
		}
		if !isRaw(s.Op) && len(c.Profiles) == 0 {
			return exitcode.Configf("op %s needs a profile (--profile)", s.Op)
		}
	}
	if c.Layers != nil {
		known := c.Layers.Names()
		for _, p := range c.Profiles {
			if !contains(known, p) {
				return exitcode.Configf("unknown profile %q (known: %s)", p, strings.Join(known, ", "))
			}
		}
	}
	if c.metered() {
		for _, s := range steps {
			if s.Load.Rate == 0 && s.Load.Ops == 0 {
				return exitcode.Configf("a metered target needs a known op count: give --ops (closed loop) or --rate (open loop), not only --duration")
			}
		}
	}
	return nil
}

// metered reports whether the run counts against a command budget.
func (c *Config) metered() bool { return c.Target == target.KindURL || c.MaxCommands > 0 }

// meteredLoad makes the closed loop's warm-up a count (a tenth of the ops,
// at most 100) so the command count is known before the run.
func meteredLoad(l Load) Load {
	if l.Rate == 0 && l.Warmup > 0 {
		l.Warmup, l.WarmupOps = 0, min(l.Ops/10, 100)
	}
	return l
}

// Run runs the bench: it opens the target, computes and checks the command
// budget on metered targets, runs every step (raw ops once, layer ops once
// per profile), and returns the report. Bad configuration, an unreachable
// URL or a budget below the estimated need are exit-3 errors returned
// before any traffic to the target.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	steps, _ := cfg.steps()
	steps = repeat(steps, cfg.Rounds)
	whole := steps
	if cfg.Shard != nil {
		// Until an auto index is claimed, share 0 (the largest) stands
		// in for the estimate.
		steps = share(whole, Shard{Index: max(cfg.Shard.Index, 0), Count: cfg.Shard.Count})
	}
	if cfg.metered() {
		for i := range steps {
			steps[i].Load = meteredLoad(steps[i].Load)
		}
	}
	tg, err := openTarget(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer tg.Close()
	var estimate int64
	if cfg.metered() {
		if estimate, err = estimateCommands(ctx, cfg, steps); err != nil {
			return nil, err
		}
		if cfg.ShardRun != "" {
			estimate += shardCommands(cfg.ShardWait)
		}
		estimate += cleanupReserve(estimate)
		if cfg.MaxCommands == 0 {
			cfg.MaxCommands = estimate
		} else if cfg.MaxCommands < estimate {
			return nil, exitcode.Configf("--max-commands %d is below the %d commands this run needs (estimated); raise it or lower --ops/--rate", cfg.MaxCommands, estimate)
		}
	}
	rep := &Report{Target: tg.Redacted(), Kind: cfg.Target, TLS: tg.TLS() != nil, Started: time.Now(), Plan: cfg.Plan, Sweep: cfg.Sweep,
		EventRate: cfg.EventRate}
	if need := cfg.fdNeed(); need > 0 {
		got, err := raiseNoFile(need)
		rep.NoFile = got
		if err != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("this run needs about %d file descriptors and may open only %d: %v", need, got, err))
		}
	}
	if cfg.Target == target.KindRemoteSim {
		rep.RTT = cfg.RTT
	}
	var guard *Guard
	if cfg.metered() {
		// The target's own connect check and key clean-up (SCAN + UNLINK)
		// do not pass the guard: keep a reserve for them.
		guard = NewGuard(cfg.MaxCommands - cleanupReserve(estimate))
		rep.Budget = &Budget{Max: cfg.MaxCommands, Estimated: estimate}
	}
	rep.CPUs, rep.ClientProcs = runtime.NumCPU(), runtime.GOMAXPROCS(0)
	if n := cfg.clientProcs(os.Getenv); n > 0 {
		prev := runtime.GOMAXPROCS(n)
		rep.ClientProcs = n
		defer func() {
			if os.Getenv("GOMAXPROCS") == "" {
				runtime.SetDefaultGOMAXPROCS()
			} else {
				runtime.GOMAXPROCS(prev)
			}
		}()
	}
	s := &session{cfg: cfg, tg: tg, guard: guard, run: runID()}
	if cfg.ShardRun != "" {
		if err := s.meet(ctx, cfg.ShardRun, cfg.ShardWait); err != nil {
			return nil, exitcode.Harness(err)
		}
	}
	if cfg.Shard != nil {
		rep.Shard = *cfg.Shard
		steps = share(whole, *cfg.Shard)
		if cfg.metered() {
			for i := range steps {
				steps[i].Load = meteredLoad(steps[i].Load)
			}
		}
	}
	if s.meter, err = newServerMeter(ctx, tg, guard); err != nil {
		rep.Warnings = append(rep.Warnings, "no server-side accounting or connection counts: "+redact.Text(err.Error(), redact.Password(cfg.URL)))
	} else {
		defer s.meter.Close()
	}
	err = s.runSteps(ctx, steps, rep)
	if guard != nil {
		rep.Budget.Used, rep.Budget.Exhausted = guard.Used(), guard.Exhausted()
	}
	rep.Results = medianRounds(rep.Results)
	sortResults(rep.Results, append([]string{Raw}, cfg.Profiles...))
	rep.finish(cfg.Profiles, cfg.EventRate)
	rep.Elapsed = time.Since(rep.Started)
	return rep, err
}

// cleanupReserve is the commands kept back for the target's connect check
// and clean-up: SCAN and UNLINK per 500 keys, assuming no more keys than
// commands (and a database not much larger than what the run writes).
func cleanupReserve(commands int64) int64 {
	return 10 + 2*(commands/500+1)
}

// runID is a short id that keeps event, connection and flow ids of this
// run apart from any other run's on a shared server.
func runID() string {
	return "b" + strconv.FormatInt(time.Now().UnixNano()%(1<<40), 36)
}

// session is one Run's shared state.
type session struct {
	cfg   Config
	tg    target.Target
	guard *Guard
	// meter reads the server's side of each step; nil when the target
	// does not answer INFO commandstats (and while estimating).
	meter *serverMeter
	run   string
	n     int // steps run, for unique ids
	// Commands sent by every step (set-up and teardown included; the
	// connection set-up apart) and connections dialled.
	sent, initSent, dials int64
}

// runSteps runs every step, appending rows; it stops at the first budget
// refusal or cancellation.
func (s *session) runSteps(ctx context.Context, steps []Step, rep *Report) error {
	for _, st := range steps {
		for _, p := range stepProfiles(st, s.cfg.Profiles) {
			ext := s.cfg.RedisBenchmark && st.Op == OpXAdd
			if ext {
				if err := s.external(ctx, st, rep); err != nil {
					return err
				}
			}
			rows, err := s.step(ctx, st, p)
			rep.Results = append(rep.Results, rows...)
			if err != nil {
				return err
			}
			if ext {
				rep.External.addHarness(rows[0].OpsPerSec)
				if st.Round == max(s.cfg.Rounds, 1)-1 {
					if err := s.external(ctx, st, rep); err != nil {
						return err
					}
				}
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if s.guard != nil && s.guard.Exhausted() {
				return nil
			}
		}
	}
	return nil
}

// hooks returns the hooks of one step's clients: the guard (outermost, so
// refused commands are not counted) and a fresh counting hook.
func (s *session) hooks() (*counter.Hook, []redis.Hook) {
	h := counter.New()
	if s.guard == nil {
		return h, []redis.Hook{h}
	}
	return h, []redis.Hook{s.guard, h}
}

// step runs one op of one profile (Raw for a raw op) and returns its rows.
// Errors that prevent the step from running at all (a layer that cannot be
// built) are returned; failures of calls are counted in the rows.
func (s *session) step(ctx context.Context, st Step, profile string) ([]Result, error) {
	s.n++
	hook, hooks := s.hooks()
	rows, err := s.drive(ctx, st, profile, s.run+"s"+strconv.Itoa(s.n), hook, hooks)
	for op, c := range hook.Snapshot() {
		if op == counter.ConnInit {
			s.initSent += c.Commands
		} else {
			s.sent += c.Commands
		}
	}
	s.dials += hook.Dials()
	return rows, err
}

// drive sets up, drives and tears down one step; every client it made is
// closed when it returns.
func (s *session) drive(ctx context.Context, st Step, profile, id string, hook *counter.Hook, hooks []redis.Hook) ([]Result, error) {
	var op Op
	var closeFn func() error
	var layer *impl.Layer
	var side *sseRun
	var out *outage
	var err error
	k := s.knobs(st)
	var base int64
	if st.Point != nil {
		base = settledRSS()
	}
	sm := s.newStepMeter(id)
	lcfg := s.layerConfig(hooks)
	lcfg.ClientName = sm.clientName()
	if k.outage > 0 {
		emb := chaos.NewEmbedded(ctx)
		defer emb.Close()
		if out, err = newOutage(emb, s.tg.Addr(), &lcfg, k.outage); err != nil {
			return nil, exitcode.Harnessf("outage: %w", err)
		}
	}
	switch {
	case profile == Raw:
		var rdb redis.UniversalClient
		rdb, err = s.rawClient(hooks, st.Load.Workers, sm.clientName())
		if err != nil {
			return nil, err
		}
		closeFn = rdb.Close
		sm.started(ctx, 1)
		op, err = rawOp(ctx, st.Op, rdb, s.tg.KeyPrefix()+id+":", max(st.Load.Workers, 1))
	case st.Op == OpSSE:
		side, err = startSSE(ctx, s.cfg.Layers, profile, lcfg, id, k.sseClients, k.eventBytes, s.cfg.SSEInstance)
		switch {
		case err != nil && st.Point != nil && ctx.Err() == nil:
			// A size the instance cannot take is a finding of the sweep
			// (the seed's Pub/Sub connection per client runs out of file
			// descriptors at 10,000), not the end of it.
			return []Result{{Op: OpSSE, Profile: profile, Target: s.cfg.Target, Model: st.Load.Model(), Point: pointOf(st),
				Inconclusive: "set-up failed: " + err.Error()}}, nil
		case err != nil:
			return nil, exitcode.Harnessf("sse %s: %w", profile, err)
		}
		closeFn, op = side.close, side.op()
		sm.started(ctx, len(side.layers))
	default:
		layer, err = s.cfg.Layers.New(ctx, profile, lcfg)
		if err != nil {
			return nil, exitcode.Harnessf("profile %s: %w", profile, err)
		}
		closeFn = layer.Close
		if out != nil {
			out.attach(layer)
		}
		sm.started(ctx, 1)
		op, err = layerOp(ctx, st.Op, layer, id, max(st.Load.Workers, 1), k)
	}
	var proc *ProcStats
	op.Mark = s.marks(st, sm, out, func() {
		switch {
		case side != nil && side.inst != nil:
			proc = side.inst.sample(k.sseClients)
		case side != nil:
			proc = sampleProc(base, k.sseClients)
		default:
			proc = sampleProc(base, 0)
		}
	})
	defer closeFn()
	if out != nil {
		defer out.close()
	}
	if err != nil {
		return []Result{{Op: st.Op, Profile: profile, Target: s.cfg.Target, Model: st.Load.Model(), Point: pointOf(st),
			Inconclusive: "set-up failed: " + err.Error()}}, nil
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.guard != nil {
		defer s.guard.OnExhaust(cancel)()
	}
	var watch *modeWatch
	if layer != nil && out == nil {
		watch = watchMode(layer.Manager)
	}
	stats, runErr := Drive(dctx, op, st.Load, hook, s.cfg.Progress)
	if stats == nil {
		return nil, exitcode.Config(runErr)
	}
	memory, samples := watch.stop()
	var ost *OutageStats
	var outErr error
	if out != nil {
		o, err := out.drain(ctx)
		ost, outErr = &o, err
	}
	kinds := []string{st.Op}
	if side != nil {
		kinds = side.finish(stats)
	}
	var rows []Result
	for _, kind := range kinds {
		r := resultOf(stats, kind, profile, s.cfg.Target)
		r.Point, r.Process = pointOf(st), proc
		if s.cfg.Shard != nil {
			if r.Hist, err = encodeHist(stats.Hists[kind]); err != nil {
				return rows, exitcode.Harnessf("histogram of %s: %w", kind, err)
			}
		}
		switch {
		case s.guard != nil && s.guard.Exhausted():
			r.Inconclusive = "command budget reached: the run was stopped before it could exceed --max-commands"
		case ctx.Err() != nil:
			r.Inconclusive = "interrupted"
		case errors.Is(runErr, ErrMissedRate):
			r.Inconclusive, r.TimingOnly = runErr.Error(), true
		case outErr != nil:
			r.Inconclusive = "the outage could not be injected: " + outErr.Error()
		case memory > 0:
			r.Inconclusive = fmt.Sprintf("the layer fell back to memory during the run (%d of %d mode samples): these are not Redis numbers (see --call-budget)", memory, samples)
		}
		if side != nil {
			side.annotate(&r)
		}
		if kind == stats.Op { // the row with the client's accounting
			sm.annotate(&r)
			r.Outage = ost
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// marks is a step's Mark: the server meter's readings, the outage's
// timeline, and the process footprint at the measured phase's end (sweep
// points only).
func (s *session) marks(st Step, sm *stepMeter, out *outage, atEnd func()) func(context.Context, bool) {
	return func(ctx context.Context, end bool) {
		if sm != nil {
			sm.mark(ctx, end)
		}
		if out != nil {
			out.mark(ctx, end)
		}
		if end && st.Point != nil {
			atEnd()
		}
	}
}

// pointOf is the step's sweep value, nil outside a sweep.
func pointOf(st Step) *int64 {
	if st.Point == nil {
		return nil
	}
	v := st.Point.Value
	return &v
}

// layerConfig is the impl.Config of a layer on the target.
func (s *session) layerConfig(hooks []redis.Hook) impl.Config {
	return impl.Config{URL: s.tg.URL(), TLS: s.tg.TLS(), Enabled: true, EventBus: true, Cache: true, SSE: true,
		Hooks: hooks, KeyPrefix: s.tg.KeyPrefix(), PublishBudget: s.cfg.CallBudget, CallBudget: s.cfg.CallBudget,
		OutboxCap: s.cfg.OutboxCap, AckReplicas: s.cfg.AckReplicas}
}

// rawClient is a client for the raw ops: a pool as large as the workers,
// no retries (so counts are exact).
func (s *session) rawClient(hooks []redis.Hook, workers int, name string) (redis.UniversalClient, error) {
	return impl.NewUniversalClient(impl.Config{URL: s.tg.URL(), TLS: s.tg.TLS(), Hooks: hooks, PoolSize: max(workers, 10), ClientName: name},
		func(o *redis.Options) { o.MaxRetries = -1 })
}

// external runs redis-benchmark once for step st and adds it to the
// report's External: before each round's harness xadd and after the last.
func (s *session) external(ctx context.Context, st Step, rep *Report) error {
	n := st.Load.Ops
	if n == 0 {
		n = 100000
	}
	clients := max(st.Load.Workers, 1)
	rps, cmd, err := redisBenchmark(ctx, s.tg.Addr(), clients, n, s.tg.KeyPrefix()+s.run+":rb:stream")
	if err != nil {
		return err
	}
	if rep.External == nil {
		rep.External = &External{Command: cmd, Clients: clients, Requests: n}
	}
	rep.External.addRun(rps)
	return nil
}

// modeWatch samples a layer's mode while a step runs, so a fallback to
// memory and back is not missed.
type modeWatch struct {
	done            chan struct{}
	wg              sync.WaitGroup
	memory, samples int
}

// modeEvery is the mode sampling interval.
const modeEvery = 5 * time.Millisecond

func watchMode(m impl.Manager) *modeWatch {
	w := &modeWatch{done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(modeEvery)
		defer t.Stop()
		for {
			w.samples++
			if m.Mode() != impl.ModeRedis {
				w.memory++
			}
			select {
			case <-t.C:
			case <-w.done:
				return
			}
		}
	}()
	return w
}

// stop ends the watch and returns how many samples saw memory mode, of
// how many. A nil watch saw nothing.
func (w *modeWatch) stop() (memory, samples int) {
	if w == nil {
		return 0, 0
	}
	close(w.done)
	w.wg.Wait()
	return w.memory, w.samples
}
