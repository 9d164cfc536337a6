package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/gonogo/harness/explore"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
)

const exploreSynopsis = `explore [--profile hardened] [--budget 10m] [--seed N] [--faults a,b,...] [--checks a,b,...] [--out reports/explore]
           [--target process|...] [--confirm 2] [--max-faults 4] [--max-instances 3] [--max-duration 8s] [-v]
       explore --service URL[,URL...] ...: an implementation served elsewhere (no instance faults)`

// The ranges of explore's flags.
const (
	minBudget     = 10 * time.Second
	maxBudget     = 24 * time.Hour
	maxConfirm    = 10
	maxShrinkRuns = 1000
)

// explore joins the command table here rather than in its literal, whose
// alignment a longer name would change line by line.
func init() {
	commands["explore"] = command{"generated fault schedules against a profile, each failure shrunk to a minimal scenario file", runExplore}
}

// runExplore runs generated fault schedules against a profile within a
// budget, shrinks every failure and writes the minimal scenarios.
func runExplore(ctx context.Context, args []string, e env) (int, error) {
	fs := newFlags("explore", exploreSynopsis, e)
	profile := fs.String("profile", "hardened", "`profile` under test (not with --service)")
	budget := fs.Duration("budget", 10*time.Minute, fmt.Sprintf("how long to explore, %s to %s: no run starts after it", minBudget, maxBudget))
	seed := fs.Int64("seed", 0, fmt.Sprintf("seed of the schedules, 0 to %d; 0 picks one from the clock (printed, so the exploration can be replayed)", maxSeed))
	var faults listFlag
	fs.Var(&faults, "faults", "fault `kinds` to draw from, comma list (default: the whole catalogue)")
	var checks listFlag
	fs.Var(&checks, "checks", "shrink and report only failures of these `checkers`, comma list (default: every failure; the others are counted)")
	out := fs.String("out", "reports/explore", "`directory` the minimal scenarios, their reports and the summary are written in")
	confirm := fs.Int("confirm", 2, fmt.Sprintf("runs in a row a failure must repeat to count (the finding run included), 1 to %d: a candidate that passes once is not taken; a failure that does not repeat is reported flaky", maxConfirm))
	shrinkRuns := fs.Int("shrink-runs", 60, fmt.Sprintf("most runs one shrink makes, 1 to %d", maxShrinkRuns))
	maxFaults := fs.Int("max-faults", 4, "most faults of one schedule, 1 to 4")
	maxInst := fs.Int("max-instances", 3, "most instances of one scenario, 1 to 3")
	maxDur := fs.Duration("max-duration", 8*time.Second, "longest workload drawn, 3s to 1m")
	verbose := fs.Bool("v", false, "verbose: every phase and the engine's notes")
	tgt := addTargetFlags(fs, e.getenv)
	svc := addServiceFlags(fs, e.getenv)
	if err := parse(fs, args); err != nil {
		return 0, err
	}
	if err := firstErr(
		inRange("budget", *budget, minBudget, maxBudget),
		inRange("seed", *seed, 0, maxSeed),
		inRange("confirm", *confirm, 1, maxConfirm),
		inRange("shrink-runs", *shrinkRuns, 1, maxShrinkRuns),
		inRange("max-faults", *maxFaults, 1, 4),
		inRange("max-instances", *maxInst, 1, 3),
		inRange("max-duration", *maxDur, 3*time.Second, time.Minute),
	); err != nil {
		return 0, err
	}
	if err := checkWritableDir("--out", *out); err != nil {
		return 0, err
	}
	reg := profiles.Default()
	gen := explore.Generator{MaxFaults: *maxFaults, MaxInstances: *maxInst, MaxDuration: *maxDur}
	var ext external
	profileSet := false
	fs.Visit(func(f *flag.Flag) { profileSet = profileSet || f.Name == "profile" })
	if len(svc.urls) > 0 {
		var err error
		if ext, err = svc.open(ctx, e.stderr, tgt, profileSet); err != nil {
			return 0, err
		}
		*profile = ext.profile
		gen.MaxInstances = min(gen.MaxInstances, len(svc.urls))
	} else if !slices.Contains(reg.Names(), *profile) {
		return 0, exitcode.Configf("unknown profile %q (known: %s)", *profile, strings.Join(reg.Names(), ", "))
	}
	deps := ext.deps
	if deps == nil {
		var err error
		if deps, err = tgt.deps(ctx, e.stderr); err != nil {
			return 0, err
		}
	}
	prog := newExploreProgress(e.stderr, *verbose, *budget)
	logw := io.Discard
	if *verbose {
		logw = prog.writer()
	}
	// go-redis logs every failed dial; during a fault that is thousands of
	// lines.
	redis.SetLogger(redisLog{logw})
	defer redis.SetLogger(redisLog{io.Discard})
	eng := explore.NewEngine(*profile, reg, deps, logw)
	known := explore.Generable(eng.Faults()...)
	for _, f := range faults {
		if !slices.Contains(known, f) {
			return 0, exitcode.Configf("--faults: unknown fault %q (known: %s)", f, strings.Join(known, ", "))
		}
	}
	for _, c := range checks {
		if !slices.Contains(explore.Checkers(), c) {
			return 0, exitcode.Configf("--checks: explore does not judge with %q (it judges %s)", c, strings.Join(explore.Checkers(), ", "))
		}
	}
	gen.Faults = faults
	if len(gen.Faults) == 0 {
		gen.Faults = known
	}
	if ext.deps != nil {
		// Instance faults need instances the harness runs as processes.
		gen.Faults = withoutInstanceFaults(gen.Faults)
		if len(gen.Faults) == 0 {
			return 0, exitcode.Configf("--faults: with --service only the other faults can run (instance faults need instances the harness runs)")
		}
	}
	if err := gen.Check(); err != nil {
		return 0, err
	}
	if *seed == 0 {
		*seed = time.Now().UnixNano() % 1_000_000
	}
	removeStale(e.stderr, "explore")
	fmt.Fprintf(e.stderr, "explore %s: budget %s, seed %d, %d fault kinds → %s\n", *profile, *budget, *seed, len(gen.Faults), *out)
	sum, err := explore.Explore(ctx, explore.Options{
		Engine: eng, Generator: gen, Seed: *seed, Budget: *budget, Out: *out,
		Checks: checks, Confirm: *confirm, MaxShrinkRuns: *shrinkRuns, Events: prog.events(),
	})
	prog.wait()
	if err != nil {
		return 0, err
	}
	fmt.Fprintln(e.stdout)
	sum.Write(e.stdout)
	fmt.Fprintf(e.stdout, "\nsummary: %s/%s\n", *out, explore.SummaryMD)
	if sum.Interrupted {
		fmt.Fprintln(e.stderr, "harness explore: interrupted; the summary holds what was found so far")
	}
	return sum.ExitCode(), nil
}

func withoutInstanceFaults(fs []string) []string {
	var out []string
	for _, f := range fs {
		if !strings.HasPrefix(f, "instance_") {
			out = append(out, f)
		}
	}
	return out
}

// exploreProgress shows the exploration: on a terminal an mpb bar over the
// budget with the runs, failures and the current step; otherwise one line
// per run, shrink step and failure.
type exploreProgress struct {
	w       io.Writer // plain lines
	verbose bool
	p       *mpb.Progress
	bar     *mpb.Bar
	start   time.Time
	budget  time.Duration

	mu                    sync.Mutex
	runs, failed, shrinks int
	status                string
}

func newExploreProgress(w io.Writer, verbose bool, budget time.Duration) *exploreProgress {
	pr := &exploreProgress{w: lockedWriter{&sync.Mutex{}, w}, verbose: verbose, start: time.Now(), budget: budget}
	if isTerminal(w) {
		// Straight to the terminal: mpb redraws only an output it sees is
		// one (the bar shows counts, fault names and times, no secret).
		pr.p = mpb.New(mpb.WithOutput(unwrap(w)), mpb.WithWidth(30))
		pr.bar = pr.p.AddBar(int64(budget/time.Second)+1,
			mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
				pr.mu.Lock()
				defer pr.mu.Unlock()
				return fmt.Sprintf("runs %d  failures %d  shrink tries %d", pr.runs, pr.failed, pr.shrinks)
			}, decor.WC{W: 44, C: decor.DindentRight})),
			mpb.AppendDecorators(
				decor.Elapsed(decor.ET_STYLE_GO, decor.WC{W: 8}),
				decor.Any(func(decor.Statistics) string { pr.mu.Lock(); defer pr.mu.Unlock(); return "  " + pr.status }),
			),
		)
	}
	return pr
}

// writer is where verbose notes go: above the bar (URL passwords masked,
// as the redacting writer the bar bypasses would), or straight out.
func (p *exploreProgress) writer() io.Writer {
	if p.p != nil {
		return redactWriter{p.p, func() []string { return nil }}
	}
	return p.w
}

// set updates the counters and the status, and moves the bar to the time
// spent.
func (p *exploreProgress) set(f func()) {
	p.mu.Lock()
	f()
	p.mu.Unlock()
	if p.bar != nil {
		p.bar.SetCurrent(min(int64(time.Since(p.start)/time.Second), int64(p.budget/time.Second)))
	}
}

// line prints a plain line when there is no bar (and above it with -v).
func (p *exploreProgress) line(format string, args ...any) {
	switch {
	case p.p == nil:
		fmt.Fprintf(p.w, format+"\n", args...)
	case p.verbose:
		fmt.Fprintf(p.writer(), format+"\n", args...)
	}
}

func (p *exploreProgress) events() explore.Events {
	return explore.Events{
		Run: func(i int, s explore.Scenario) {
			p.set(func() { p.status = fmt.Sprintf("run %d: %s", i, s.Describe()) })
		},
		Phase: func(ph string) {
			if p.verbose && p.p == nil {
				fmt.Fprintf(p.w, "  %s\n", ph)
			}
		},
		Judged: func(i int, failed []string, unavailable bool, err error) {
			p.set(func() { p.runs++ })
			verdict := "PASS"
			switch {
			case unavailable:
				verdict = "NOT RUNNABLE on this target (INCONCLUSIVE)"
			case err != nil:
				verdict = "NOT JUDGED: " + firstLine(err.Error())
			case len(failed) > 0:
				verdict = "FAIL " + strings.Join(failed, ",")
			}
			p.line("run %d: %s (%s)", i, verdict, time.Since(p.start).Round(time.Second))
		},
		Shrink: func(checker string, runs, steps int, change string, s explore.Scenario, taken bool) {
			p.set(func() {
				p.shrinks++
				p.status = fmt.Sprintf("shrink %s: step %d, %s", checker, steps, s.Describe())
			})
			what := "not taken"
			if taken {
				what = "taken"
			}
			p.line("  shrink %s: run %d, step %d: %s → %s: %s (%s)", checker, runs, steps, change, s.Describe(), what, time.Since(p.start).Round(time.Second))
		},
		Found: func(f explore.Failure) {
			p.set(func() { p.failed++ })
			p.line("FOUND %s after %s: %s %s (%s, %s)", f.Checker, f.FoundAfter.Round(time.Second), f.Status(), f.File, f.FaultList(), f.Duration)
		},
	}
}

func (p *exploreProgress) wait() {
	if p.p != nil {
		p.bar.SetTotal(-1, true)
		p.p.Wait()
	}
}
