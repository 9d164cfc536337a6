package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/redis/go-redis/v9"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/gonogo/harness/bench"
	"github.com/gonogo/harness/gate"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/redact"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/scenarios"
)

// listFlag is a flag that may be repeated and takes comma lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

const runSynopsis = `run [--gate G [--gates FILE] | --scenario name|file.yaml ...] [--profile hardened]
           [--target process] [--seed N] [--report-dir reports] [-v]
       run ... --target url [--url redis://... | --url-env NAME] (default $REDIS_URL)
       run ... --service URL[,URL...] [--toxiproxy URL [--toxiproxy-proxy redis]]
           [--url redis://... | --url-env NAME] [--redis-container NAME]
           [--instance-cmd 'CMD ARGS']: an implementation served elsewhere (docs/http.md)
           under test; --instance-cmd starts its instances for the instance scenarios`

func runRun(ctx context.Context, args []string, e env) (int, error) {
	fs := newFlags("run", runSynopsis, e)
	var sel, profs listFlag
	fs.Var(&sel, "scenario", "scenario `name` from the catalogue or path to a .yaml file; repeatable or comma list (default: the whole catalogue; not with --gate)")
	fs.Var(&profs, "profile", "`profile` under test; repeatable or comma list (default hardened; one with --gate)")
	gateName := fs.String("gate", "", "run exactly what this gate of the gates file needs (scenarios and benchmarks) and judge its criteria: local, eventbus, production, release")
	gatesFile := fs.String("gates", "", "gates `file` (default: the one shipped with the harness; see harness gates list)")
	tgt := addTargetFlags(fs, e.getenv)
	svc := addServiceFlags(fs, e.getenv)
	seed := fs.Int64("seed", 0, fmt.Sprintf("seed of the workloads' random choices, 0 to %d; 0 picks one from the clock (printed, so the run can be replayed)", maxSeed))
	reportDir := fs.String("report-dir", "reports", "directory the run's report directory <run id>/ is created in")
	fs.StringVar(reportDir, "out", "reports", "same as --report-dir")
	verbose := fs.Bool("v", false, "verbose: print engine notes and every phase")
	list := fs.Bool("list", false, "list the catalogue and exit")
	if err := parse(fs, args); err != nil {
		return 0, err
	}
	if *list {
		for _, n := range scenarios.Catalogue() {
			fmt.Fprintln(e.stdout, n)
		}
		return exitcode.Go, nil
	}
	if err := inRange("seed", *seed, 0, maxSeed); err != nil {
		return 0, err
	}
	// Before any traffic: a report that cannot be written is bad input
	// now, not a harness failure after the whole run.
	if err := checkWritableDir("--report-dir", *reportDir); err != nil {
		return 0, err
	}
	reg := profiles.Default()
	var ext external
	if len(svc.urls) == 0 && isSet(fs, "instance-cmd") {
		return 0, exitcode.Configf("--instance-cmd needs --service: the services serve the other scenarios and name the Redis the instances share (--url, --toxiproxy)")
	}
	if len(svc.urls) > 0 {
		var err error
		if ext, err = svc.open(ctx, e.stderr, tgt, len(profs) > 0); err != nil {
			return 0, err
		}
		profs = listFlag{ext.profile}
	}
	if len(profs) == 0 {
		profs = listFlag{"hardened"}
	}
	for _, p := range profs {
		if ext.deps == nil && !slices.Contains(reg.Names(), p) {
			return 0, exitcode.Configf("unknown profile %q (known: %s)", p, strings.Join(reg.Names(), ", "))
		}
	}
	plan := gate.Plan{Profiles: profs, Seed: *seed, ReportDir: *reportDir, Registry: reg,
		CommandLine: append([]string{"harness", "run"}, args...), Services: ext.shown}
	known := scenarios.DefaultKnown(reg)
	switch {
	case *gateName != "" && len(sel) > 0:
		return 0, exitcode.Configf("--gate runs the gate's scenarios: drop --scenario")
	case *gateName != "" && len(profs) != 1:
		return 0, exitcode.Configf("--gate judges one profile; got %s", strings.Join(profs, ","))
	case *gateName == "" && *gatesFile != "":
		return 0, exitcode.Configf("--gates needs --gate")
	case *gateName != "":
		if err := plan.ForGate(*gateName, *gatesFile, known); err != nil {
			return 0, err
		}
	default:
		specs, err := scenarios.LoadAll(sel, known)
		if err != nil {
			return 0, err
		}
		plan.ForScenarios(specs)
	}
	switch {
	case ext.deps != nil:
		plan.Deps = ext.deps
		if len(plan.Benches) > 0 {
			fmt.Fprintln(e.stderr, "harness run: benchmarks measure in-process profiles only: with --service the gate's benchmark criteria are INCONCLUSIVE")
			plan.Benches = nil
		}
	default:
		deps, err := tgt.deps(ctx, e.stderr)
		if err != nil {
			return 0, err
		}
		plan.Deps = deps
		plan.Bench = gate.BenchTarget{Kind: tgt.kind, URL: tgt.url, RTT: tgt.rtt}
	}
	if plan.Seed == 0 {
		plan.Seed = time.Now().UnixNano() % 1_000_000
	}
	removeStale(e.stderr, "run")
	return execute(ctx, plan, *verbose, e)
}

// maxSeed is the largest --seed: 2^53-1, so that report.json's seed
// survives a reader that takes JSON numbers as float64.
const maxSeed = 1<<53 - 1

// checkWritableDir checks that dir is, or can be made, a directory this
// process can write in, without making it: the nearest existing ancestor
// must be a directory in which a probe file can be created (and is
// removed). Permission bits are not trusted, root writes anyway. Its errors
// are bad input naming flag.
func checkWritableDir(flag, dir string) error {
	d := filepath.Clean(dir)
	for {
		fi, err := os.Stat(d)
		switch {
		case err == nil && !fi.IsDir():
			return exitcode.Configf("%s %s: %s is not a directory", flag, dir, d)
		case err == nil:
			f, err := os.CreateTemp(d, ".gonogo-probe-*")
			if err != nil {
				return exitcode.Configf("%s %s: cannot write in %s: %w", flag, dir, d, unwrapPath(err))
			}
			f.Close()
			os.Remove(f.Name())
			return nil
		case !errors.Is(err, fs.ErrNotExist):
			return exitcode.Configf("%s %s: cannot be created: %w", flag, dir, unwrapPath(err))
		}
		parent := filepath.Dir(d)
		if parent == d {
			return exitcode.Configf("%s %s: no existing directory to create it in", flag, dir)
		}
		d = parent
	}
}

// unwrapPath is the reason of a *fs.PathError without its path and
// operation, which the message names already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// execute runs the plan (gate.Plan.Run) with progress on stderr (bars on a
// terminal), then prints the scenarios' table, the criteria that do not
// hold, the harness failures and the verdict, every secret masked. It
// returns the run's exit code.
func execute(ctx context.Context, p gate.Plan, verbose bool, e env) (int, error) {
	secrets := &gate.Secrets{}
	prog := newProgress(e.stderr, verbose)
	// go-redis logs every failed dial; during a fault that is thousands of
	// lines. Keep them for -v only.
	logw := io.Discard
	if verbose {
		logw = redactWriter{prog.writer(), secrets.List}
	}
	redis.SetLogger(redisLog{logw})
	defer redis.SetLogger(redisLog{io.Discard})
	res, err := p.Run(ctx, gate.Hooks{
		Started: func(id, dir string) {
			fmt.Fprintf(e.stderr, "run %s: gate %s: %d scenario run(s), %d benchmark(s), profile %s, seed %d → %s\n",
				id, p.Gate.Name, len(p.Jobs), len(p.Benches), strings.Join(p.Profiles, ","), p.Seed, dir)
		},
		Scenario:      func(name string) gate.Progress { return prog.track(name) },
		ScenariosDone: prog.wait,
		Log:           logw,
		Bench:         bench.NewProgress(unwrap(e.stderr)),
		Warn:          func(line string) { fmt.Fprintf(e.stderr, "harness run: %s\n", line) },
		Secrets:       secrets,
	})
	if err != nil {
		return 0, err
	}
	out := redactWriter{e.stdout, secrets.List}
	printTable(out, res.Outcomes, p.GatesFile == nil)
	printCriteria(out, res.Run)
	for _, err := range res.Errors {
		fmt.Fprintf(e.stderr, "harness run: %s\n", redact.Text(err.Error(), secrets.List()...))
	}
	fmt.Fprintf(e.stdout, "\n%s\nreport: %s\n", reports.Headline(res.Run), filepath.Join(res.Dir, reports.ReportHTML))
	if res.Run.Interrupted {
		fmt.Fprintln(e.stderr, "harness run: interrupted; the report is partial (INCOMPLETE)")
	}
	return res.ExitCode(), nil
}

// printCriteria lists the criteria that did not pass, with why.
func printCriteria(w io.Writer, r reports.Run) {
	first := true
	for _, c := range r.Criteria {
		if c.Verdict == verdict.Pass {
			continue
		}
		if first {
			fmt.Fprintf(w, "\ncriteria of gate %s that do not hold:\n", r.Gate)
			first = false
		}
		fmt.Fprintf(w, "  %-12s %s: %s %s — %s\n", c.Verdict, c.Criterion.ID, c.Criterion.Expr(), c.Criterion.Threshold(), firstLine(c.Reason))
	}
}

// redactWriter masks redis URL passwords and the secrets known at the time
// of each write in everything written through it.
type redactWriter struct {
	w       io.Writer
	secrets func() []string
}

func (r redactWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(r.w, redact.Text(string(b), r.secrets()...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// redisLog sends go-redis's internal log lines to w.
type redisLog struct{ w io.Writer }

func (l redisLog) Printf(_ context.Context, format string, v ...any) {
	fmt.Fprintf(l.w, "redis: "+format+"\n", v...)
}

// printTable prints one line per scenario and profile, then, with details,
// for each verdict that is not PASS the checks behind it.
func printTable(w io.Writer, os []scenarios.Outcome, details bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tPROFILE\tVERDICT\tTIME\tNOT PASSING")
	for _, o := range os {
		var bad []string
		for _, r := range o.Failed() {
			b := r.Check + "=" + string(r.Verdict)
			if r.ReportOnly {
				b += "(reported)"
			}
			bad = append(bad, b)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1fs\t%s\n", o.Scenario, o.Profile, o.Verdict, o.Elapsed.Seconds(), strings.Join(bad, " "))
	}
	tw.Flush()
	if !details {
		return
	}
	for _, o := range os {
		for _, r := range o.Failed() {
			fmt.Fprintf(w, "\n%s/%s %s %s: %s\n", o.Scenario, o.Profile, r.Check, r.Verdict, firstLine(r.Error))
			for i, ev := range r.Evidence {
				if i == 5 {
					fmt.Fprintf(w, "    … %d more (see %s)\n", len(r.Evidence)-5, filepath.Join(o.Dir, "result.json"))
					break
				}
				fmt.Fprintf(w, "    %s\n", ev)
			}
		}
		for _, n := range o.Notes {
			fmt.Fprintf(w, "\n%s/%s note: %s\n", o.Scenario, o.Profile, n)
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// progress shows each scenario's phase: mpb bars on a terminal, plain
// lines otherwise.
type progress struct {
	w       io.Writer // plain lines; engine goroutines and go-redis write to it at once
	verbose bool
	p       *mpb.Progress // nil: plain lines
	mu      sync.Mutex
}

func newProgress(w io.Writer, verbose bool) *progress {
	pr := &progress{verbose: verbose}
	pr.w = lockedWriter{&pr.mu, w}
	if isTerminal(w) {
		pr.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(30))
	}
	return pr
}

// isTerminal reports whether w, or the writer a redactWriter wraps, is a
// terminal.
func isTerminal(w io.Writer) bool {
	f, ok := unwrap(w).(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// unwrap is the writer under any redactWriters: the benchmarks' progress,
// which shows op names and numbers only, goes there straight, so that it
// sees a terminal and draws its bars.
func unwrap(w io.Writer) io.Writer {
	for {
		r, ok := w.(redactWriter)
		if !ok {
			return w
		}
		w = r.w
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// writer is where verbose notes go: above the bars, or straight out.
func (p *progress) writer() io.Writer {
	if p.p != nil {
		return p.p
	}
	return p.w
}

func (p *progress) wait() {
	if p.p != nil {
		p.p.Wait()
	}
}

// tracker follows one scenario run.
type tracker struct {
	p       *progress
	name    string
	start   time.Time
	bar     *mpb.Bar
	mu      sync.Mutex
	current string
}

// phases is how many phases a run goes through at least (setup, traffic,
// recover, judge); fault phases extend the bar.
const phases = 4

func (p *progress) track(name string) *tracker {
	t := &tracker{p: p, name: name, start: time.Now(), current: "start"}
	if p.p != nil {
		t.bar = p.p.AddBar(phases+1,
			mpb.PrependDecorators(decor.Name(name, decor.WC{W: 32, C: decor.DindentRight})),
			mpb.AppendDecorators(
				decor.Any(func(decor.Statistics) string { t.mu.Lock(); defer t.mu.Unlock(); return t.current }, decor.WC{W: 22, C: decor.DindentRight}),
				decor.Elapsed(decor.ET_STYLE_GO),
			),
		)
	}
	return t
}

// Phase moves the bar on (or prints the phase with -v).
func (t *tracker) Phase(ph string) {
	t.mu.Lock()
	t.current = ph
	t.mu.Unlock()
	if t.bar != nil {
		if strings.HasPrefix(ph, "fault ") {
			t.bar.SetTotal(t.bar.Current()+phases, false)
		}
		t.bar.Increment()
		return
	}
	if t.p.verbose {
		fmt.Fprintf(t.p.w, "%s: %s\n", t.name, ph)
	}
}

// Done ends the bar (or prints the result line).
func (t *tracker) Done(verdict string) {
	t.mu.Lock()
	t.current = verdict
	t.mu.Unlock()
	if t.bar != nil {
		t.bar.SetTotal(t.bar.Current()+1, true)
		return
	}
	fmt.Fprintf(t.p.w, "%-32s %-12s %.1fs\n", t.name, verdict, time.Since(t.start).Seconds())
}
