package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/gonogo/harness/bench"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/inputfile"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/target"
	"github.com/redis/go-redis/v9"
)

const benchSynopsis = `bench [--target process|remote-sim|sentinel|cluster|url] [--ack-replicas N] [--url URL | --url-env NAME] [--profile seed,hardened]
       [--preset standard|task011|publish|baseline] [--op xadd,publish,...]
       [--workers N] [--ops N | --duration D] [--rate R] [--warmup D]
       [--rtt D] [--max-commands N] [--plan NAME] [--plans FILE] [--plan-commands-month N] [--event-rate R] [--rounds N]
       [--client-procs N] [--json]
       [--sweep NAME=v1,v2,… [--report DIR]] [--outbox-cap N]
       [--shard i/N|auto/N --shard-out DIR [--shard-run NAME] [--shard-wait D]]`

// runBench is `harness bench`: it runs the benchmarks the flags configure
// and prints the table (or JSON). Exit 0, or 2 when a row could not be
// trusted (or the run was interrupted).
//
// A sweep (--sweep) is judged against the growth DESIGN.md promises: exit
// 0 GO, 1 NO-GO (a cost grows faster than promised), 2 INCONCLUSIVE; with
// --report its report.json, summary.md, report.html (curves) and
// junit.xml go to DIR/<run id>/. A share (--shard) writes its file to
// --shard-out for `harness report merge`.
func runBench(ctx context.Context, args []string, e env) (int, error) {
	cfg, o, err := benchConfig(args, e)
	if err != nil {
		return 0, err
	}
	asJSON := o.json
	removeStale(e.stderr, "bench")
	// go-redis logs failed dials; an outage point makes thousands.
	redis.SetLogger(redisLog{io.Discard})
	if !asJSON {
		cfg.Progress = bench.NewProgress(unwrap(e.stderr))
	}
	rep, err := bench.Run(ctx, cfg)
	if rep == nil {
		return 0, err
	}
	if o.shardOut != "" {
		if werr := writeShard(o.shardOut, rep, cfg); werr != nil {
			return 0, werr
		}
	}
	if asJSON {
		if werr := rep.WriteJSON(e.stdout); werr != nil {
			return 0, exitcode.Harness(werr)
		}
	} else {
		fmt.Fprintln(e.stdout)
		rep.WriteTable(e.stdout)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return exitcode.Inconclusive, nil
	case err != nil:
		return 0, err
	case cfg.Sweep != nil:
		if asJSON { // stdout holds the JSON alone
			e.stdout = e.stderr
		}
		return judgeSweep(rep, o.report, e)
	case rep.Inconclusive():
		return exitcode.Inconclusive, nil
	}
	return exitcode.Go, nil
}

// benchOut is what the bench flags say about the output.
type benchOut struct {
	json     bool
	report   string // --report DIR
	shardOut string // --shard-out DIR
}

// judgeSweep judges a sweep run against the design's promises, prints
// the verdict, writes the report files when dir is set and returns the
// verdict's exit code.
func judgeSweep(rep *bench.Report, dir string, e env) (int, error) {
	run := reports.Run{ID: reports.NewRunID(rep.Started), Started: rep.Started, Finished: rep.Started.Add(rep.Elapsed),
		Environment: reports.Environment{TargetKind: string(rep.Kind), TargetURL: rep.Target, TLS: rep.TLS,
			RTTMs: reports.Ms(rep.RTT), GoVersion: runtime.Version()},
		Sweeps: rep.Sweeps()}
	for _, r := range rep.Results {
		if r.Point == nil {
			run.Benchmarks = append(run.Benchmarks, r.Bench())
		}
	}
	run = reports.PromiseRun(run)
	fmt.Fprintf(e.stdout, "\n%s\n", reports.Headline(run))
	if dir != "" {
		out, err := reports.Write(dir, run)
		if err != nil {
			return 0, exitcode.Harness(err)
		}
		fmt.Fprintf(e.stdout, "report: %s\n", filepath.Join(out, reports.ReportHTML))
	}
	return run.Verdict.ExitCode(), nil
}

// writeShard writes a share's file, dir/shard-<i>-of-<N>.json, atomically.
func writeShard(dir string, rep *bench.Report, cfg bench.Config) error {
	b, err := json.Marshal(bench.NewShardFile(rep, *cfg.Shard, cfg.ShardRun))
	if err != nil {
		return exitcode.Harness(err)
	}
	name := fmt.Sprintf("shard-%d-of-%d.json", cfg.Shard.Index, cfg.Shard.Count)
	if err := history.WriteFileAtomic(filepath.Join(dir, name), b); err != nil {
		return exitcode.Harnessf("--shard-out: %w", err)
	}
	return nil
}

// benchConfig parses and range-checks the bench flags into the benchmarks'
// configuration; asJSON is --json. Every error is bad input.
func benchConfig(args []string, e env) (cfg bench.Config, o benchOut, err error) {
	fs := newFlags("bench", benchSynopsis, e)
	tgt := fs.String("target", string(target.KindProcess), "where Redis comes from: process (spawned redis-server), remote-sim (TLS + injected RTT), sentinel (a primary, a replica, three sentinels), cluster (three primaries with a replica each) or url")
	acks := fs.Int("ack-replicas", 0, "the layers' durable acknowledgement: replicas a publish waits for (WAIT) before it is acknowledged; 0 auto (1 on --target sentinel, else none), -1 off")
	rawURL := fs.String("url", "", "redis:// or rediss:// URL for --target url (not given: --url-env, else $"+redisURLEnv+"); never printed")
	urlEnv := fs.String("url-env", "", "read the URL of --target url from the environment `variable` NAME, so that its password is not on the command line")
	prof := fs.String("profile", "seed,hardened", "comma-separated profiles to run the layer ops with")
	preset := fs.String("preset", "standard", "step set: "+presetHelp())
	opList := fs.String("op", "", "comma-separated ops (default: the preset's): "+strings.Join(append(append([]string(nil), bench.RawOps...), bench.LayerOps...), ","))
	workers := fs.Int("workers", 50, "concurrent workers (closed loop) or the worker pool (open loop)")
	ops := fs.Int64("ops", 0, "measured ops per step (all workers together); 0: run for --duration")
	rate := fs.Float64("rate", 0, "open loop: arrivals per second (must be > 0 when given)")
	dur := fs.Duration("duration", 5*time.Second, "measured time per step")
	warm := fs.Duration("warmup", time.Second, "warm-up per step, not measured")
	lateAfter := fs.Duration("late-after", 10*time.Millisecond, "open loop: a call starting later than this after its intended start is late")
	queue := fs.Int("queue", 10000, "open loop: calls waiting for a worker beyond this are dropped")
	rtt := fs.Duration("rtt", 20*time.Millisecond, "remote-sim round-trip time")
	maxCmds := fs.Int64("max-commands", 0, "command budget; never exceeded (url target: default the estimated need)")
	planName := fs.String("plan", bench.UpstashFree.Name, "the plan the command projection is made against (--plans lists them: "+strings.Join(bench.PlanNames(bench.Plans()), ", ")+")")
	plansFile := fs.String("plans", "", "a plans `FILE` of your own (the shape of bench/plans.yaml) instead of the shipped one")
	planMonth := fs.Int64("plan-commands-month", bench.UpstashFree.CommandsPerMonth, "override the plan's commands per month")
	planSec := fs.Int64("plan-commands-sec", bench.UpstashFree.CommandsPerSec, "override the plan's commands per second")
	eventRate := fs.Float64("event-rate", 1, "events per second the command projection assumes")
	sseClients := fs.Int("sse-clients", 10, "SSE clients of the sse op")
	callBudget := fs.Duration("call-budget", 0, "the layers' publish/call budget before they fall back to memory (default: each profile's own, 50ms)")
	rounds := fs.Int("rounds", 1, "repeat the steps this many times, interleaved, and report each row's median round (a noisy machine then decides no ratio by one step)")
	procs := fs.Int("client-procs", 0, "GOMAXPROCS while the steps run (default: one CPU fewer than the machine's when Redis runs here, unless $GOMAXPROCS is set)")
	rb := fs.Bool("redis-benchmark", false, "also run redis-benchmark for the xadd step against the same server and print the ratio")
	sweep := fs.String("sweep", "", "run the parameter's op at each value and fit how its cost grows: NAME=v1,v2,… with NAME one of "+sweepHelp())
	sseProcess := fs.Bool("sse-instance-process", false, "run the sse op's serving instance as a `harness serve` process of its own (process target): its RSS and fds are then the instance's alone, and 10,000 connections fit in two processes' file descriptor limits")
	outboxCap := fs.Int("outbox-cap", 0, "the layers' outbox cap (events held for replay while Redis is down; default the layer's, 100000)")
	shard := fs.String("shard", "", "run share i of N of every step's load (i/N, 0 ≤ i < N; auto/N claims i on the target, with --shard-run)")
	shardRun := fs.String("shard-run", "", "a name the shares of one run share: they meet on the target (claim auto indexes, start together)")
	shardWait := fs.Duration("shard-wait", bench.DefaultShardWait, "how long a share waits on the target for the others")
	fs.StringVar(&o.shardOut, "shard-out", "", "with --shard: write the share's histograms and counters to `DIR`/shard-<i>-of-<N>.json")
	fs.StringVar(&o.report, "report", "", "with --sweep: write report.json, summary.md, report.html and junit.xml under `DIR`/<run id>/")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON instead of the table")
	if err := parse(fs, args); err != nil {
		return cfg, o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	checks := []error{
		inRange("workers", *workers, 1, 10_000),
		inRange("ops", *ops, 0, 1_000_000_000),
		inRange("duration", *dur, 0, time.Hour),
		inRange("warmup", *warm, 0, 10*time.Minute),
		inRange("late-after", *lateAfter, 100*time.Microsecond, time.Minute),
		inRange("queue", *queue, 1, 1_000_000),
		inRange("rtt", *rtt, minRTT, maxRTT),
		inRange("max-commands", *maxCmds, 0, 1_000_000_000_000),
		inRange("plan-commands-month", *planMonth, 1, 1_000_000_000_000),
		inRange("plan-commands-sec", *planSec, 1, 1_000_000_000),
		inRange("event-rate", *eventRate, 0.001, 1_000_000),
		inRange("sse-clients", *sseClients, 1, 10_000),
		inRange("call-budget", *callBudget, 0, time.Minute),
		inRange("rounds", *rounds, 1, 100),
		inRange("client-procs", *procs, 0, 256),
		inRange("outbox-cap", *outboxCap, 0, 100_000_000),
		inRange("shard-wait", *shardWait, time.Second, time.Hour),
		inRange("ack-replicas", *acks, -1, impl.MaxAckReplicas),
	}
	if set["rate"] { // not given: the closed loop
		checks = append(checks, inRange("rate", *rate, 1, 1_000_000))
	}
	if err := firstErr(checks...); err != nil {
		return cfg, o, err
	}
	if *sweep != "" {
		sw, err := bench.ParseSweep(*sweep)
		if err != nil {
			return cfg, o, exitcode.Config(err)
		}
		cfg.Sweep = &sw
	} else if o.report != "" {
		return cfg, o, exitcode.Configf("--report writes a sweep's report: it needs --sweep")
	}
	if *shard != "" {
		sh, err := bench.ParseShard(*shard)
		if err != nil {
			return cfg, o, exitcode.Config(err)
		}
		if o.shardOut == "" {
			return cfg, o, exitcode.Configf("--shard needs --shard-out DIR (where the share's file goes)")
		}
		cfg.Shard = &sh
	} else if o.shardOut != "" {
		return cfg, o, exitcode.Configf("--shard-out needs --shard")
	}
	if target.Kind(*tgt) == target.KindURL || set["url"] || set["url-env"] {
		t := targetOptions{url: *rawURL, urlEnv: *urlEnv, getenv: e.getenv}
		ok, err := t.resolveURL(set)
		switch {
		case err != nil:
			return cfg, o, err
		case !ok && target.Kind(*tgt) == target.KindURL:
			return cfg, o, errNoURL("--target url")
		}
		*rawURL = t.url
	}
	plan, err := choosePlan(*plansFile, *planName)
	if err != nil {
		return cfg, o, err
	}
	if set["plan-commands-month"] || set["plan-commands-sec"] {
		plan.Name += " (custom limits)"
		if set["plan-commands-month"] {
			plan.CommandsPerMonth = *planMonth
		}
		if set["plan-commands-sec"] {
			plan.CommandsPerSec = *planSec
		}
	}
	sw, sh := cfg.Sweep, cfg.Shard
	var inst []string
	if *sseProcess {
		exe, err := os.Executable()
		if err != nil {
			return cfg, o, exitcode.Harnessf("--sse-instance-process: %w", err)
		}
		inst = []string{exe, "serve"}
	}
	cfg = bench.Config{
		SSEInstance: inst,
		Sweep:       sw, Shard: sh, ShardRun: *shardRun, ShardWait: *shardWait, OutboxCap: *outboxCap,
		Target: target.Kind(*tgt), URL: *rawURL, RTT: *rtt, Layers: profiles.Default(), Profiles: splitList(*prof),
		Ops: splitList(*opList), Preset: *preset, SSEClients: *sseClients, MaxCommands: *maxCmds,
		Plan:      plan,
		EventRate: *eventRate, RedisBenchmark: *rb, CallBudget: *callBudget, Rounds: *rounds,
		ClientProcs: *procs, AckReplicas: *acks,
		Load: bench.Load{Workers: *workers, Ops: *ops, Rate: *rate, Duration: *dur, Warmup: *warm,
			LateAfter: *lateAfter, Queue: *queue},
	}
	if *ops > 0 && !set["duration"] {
		cfg.Load.Duration = 0 // the op count alone ends the step
	}
	return cfg, o, nil
}

func sweepHelp() string {
	var b strings.Builder
	for _, p := range bench.SweepParams {
		fmt.Fprintf(&b, "\n  %s (%d to %d): %s", p.Name, p.Min, p.Max, p.Doc)
	}
	return b.String()
}

func presetHelp() string {
	names := make([]string, 0, len(bench.Presets))
	for n := range bench.Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "\n  %s: %s", n, bench.Presets[n])
	}
	return b.String()
}

// choosePlan reads the plans (file, else the shipped ones) and returns
// the named one. A file that cannot be read or parsed, or a name it does
// not hold, is bad input.
func choosePlan(file, name string) (bench.Plan, error) {
	plans, err := loadPlans(file)
	if err != nil {
		return bench.Plan{}, err
	}
	p, ok := plans[name]
	if !ok {
		return bench.Plan{}, exitcode.Configf("--plan %q: not in the plans file (known: %s)", name, strings.Join(bench.PlanNames(plans), ", "))
	}
	return p, nil
}

// loadPlans reads a plans file, or the shipped plans without one; a file
// that cannot be read or parsed is bad input.
func loadPlans(file string) (map[string]bench.Plan, error) {
	if file == "" {
		return bench.Plans(), nil
	}
	data, err := inputfile.Read(file, inputfile.MaxYAML)
	if err != nil {
		return nil, exitcode.Configf("--plans: %w", err)
	}
	plans, err := bench.ParsePlans(file, data)
	if err != nil {
		return nil, exitcode.Config(err)
	}
	return plans, nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
