package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gonogo/harness/bench"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/inputfile"
	"github.com/gonogo/harness/target"
)

const benchSynopsis = `bench [--target process|remote-sim|url] [--url URL | --url-env NAME] [--profile seed,hardened]
       [--preset standard|task011|publish|baseline] [--op xadd,publish,...]
       [--workers N] [--ops N | --duration D] [--rate R] [--warmup D]
       [--rtt D] [--max-commands N] [--plan NAME] [--plans FILE] [--plan-commands-month N] [--event-rate R] [--rounds N]
       [--client-procs N] [--json]`

// runBench is `harness bench`: it runs the benchmarks the flags configure
// and prints the table (or JSON). Exit 0, or 2 when a row could not be
// trusted (or the run was interrupted).
func runBench(ctx context.Context, args []string, e env) (int, error) {
	cfg, asJSON, err := benchConfig(args, e)
	if err != nil {
		return 0, err
	}
	removeStale(e.stderr, "bench")
	if !asJSON {
		cfg.Progress = bench.NewProgress(unwrap(e.stderr))
	}
	rep, err := bench.Run(ctx, cfg)
	if rep == nil {
		return 0, err
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
	case rep.Inconclusive():
		return exitcode.Inconclusive, nil
	}
	return exitcode.Go, nil
}

// benchConfig parses and range-checks the bench flags into the benchmarks'
// configuration; asJSON is --json. Every error is bad input.
func benchConfig(args []string, e env) (cfg bench.Config, asJSON bool, err error) {
	fs := newFlags("bench", benchSynopsis, e)
	tgt := fs.String("target", string(target.KindProcess), "where Redis comes from: process (spawned redis-server), remote-sim (TLS + injected RTT) or url")
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
	fs.BoolVar(&asJSON, "json", false, "print the results as JSON instead of the table")
	if err := parse(fs, args); err != nil {
		return cfg, false, err
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
	}
	if set["rate"] { // not given: the closed loop
		checks = append(checks, inRange("rate", *rate, 1, 1_000_000))
	}
	if err := firstErr(checks...); err != nil {
		return cfg, false, err
	}
	if target.Kind(*tgt) == target.KindURL || set["url"] || set["url-env"] {
		t := targetOptions{url: *rawURL, urlEnv: *urlEnv, getenv: e.getenv}
		ok, err := t.resolveURL(set)
		switch {
		case err != nil:
			return cfg, false, err
		case !ok && target.Kind(*tgt) == target.KindURL:
			return cfg, false, errNoURL("--target url")
		}
		*rawURL = t.url
	}
	plan, err := choosePlan(*plansFile, *planName)
	if err != nil {
		return cfg, false, err
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
	cfg = bench.Config{
		Target: target.Kind(*tgt), URL: *rawURL, RTT: *rtt, Layers: profiles.Default(), Profiles: splitList(*prof),
		Ops: splitList(*opList), Preset: *preset, SSEClients: *sseClients, MaxCommands: *maxCmds,
		Plan:      plan,
		EventRate: *eventRate, RedisBenchmark: *rb, CallBudget: *callBudget, Rounds: *rounds,
		ClientProcs: *procs,
		Load: bench.Load{Workers: *workers, Ops: *ops, Rate: *rate, Duration: *dur, Warmup: *warm,
			LateAfter: *lateAfter, Queue: *queue},
	}
	if *ops > 0 && !set["duration"] {
		cfg.Load.Duration = 0 // the op count alone ends the step
	}
	return cfg, asJSON, nil
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
