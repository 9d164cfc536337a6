package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/redis/go-redis/v9"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/gonogo/harness/bench"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/inputfile"
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
           [--url redis://... | --url-env NAME] [--redis-container NAME]: an implementation
           served elsewhere (docs/http.md) under test`

// job is one scenario run: a spec against a profile, under a name in the
// report model and a directory in the run's report directory.
type job struct {
	spec    scenarios.Spec
	profile string
	name    string // the scenario's name, or <scenario>.<profile> when several profiles run
	dir     string // <scenario>-<profile>
}

// runPlan is one `harness run`, validated: what it runs, how it is judged,
// where the report goes.
type runPlan struct {
	gate      reports.Gate
	gatesFile []byte // the gates file's text, saved with the run; nil for the scenarios pseudo-gate
	jobs      []job
	benches   []string // bench ops to run (with the single profile)
	profiles  []string
	seed      int64
	reportDir string
	target    benchTarget // where the benchmarks' Redis comes from (--target)
	deps      *scenarios.Deps
	reg       *impl.Profiles
	cmdline   []string
	verbose   bool
	services  []string // --service: the services under test (passwords masked); nil in-process
}

func runRun(ctx context.Context, args []string, e env) (int, error) {
	fs := newFlags("run", runSynopsis, e)
	var sel, profs listFlag
	fs.Var(&sel, "scenario", "scenario `name` from the catalogue or path to a .yaml file; repeatable or comma list (default: the whole catalogue; not with --gate)")
	fs.Var(&profs, "profile", "`profile` under test; repeatable or comma list (default hardened; one with --gate)")
	gate := fs.String("gate", "", "run exactly what this gate of the gates file needs (scenarios and benchmarks) and judge its criteria: local, eventbus, production, release")
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
		if ext.deps == nil && !contains(reg.Names(), p) {
			return 0, exitcode.Configf("unknown profile %q (known: %s)", p, strings.Join(reg.Names(), ", "))
		}
	}
	plan := runPlan{profiles: profs, seed: *seed, reportDir: *reportDir, reg: reg,
		cmdline: append([]string{"harness", "run"}, args...), verbose: *verbose, services: ext.shown}
	known := scenarios.DefaultKnown(reg)
	switch {
	case *gate != "" && len(sel) > 0:
		return 0, exitcode.Configf("--gate runs the gate's scenarios: drop --scenario")
	case *gate != "" && len(profs) != 1:
		return 0, exitcode.Configf("--gate judges one profile; got %s", strings.Join(profs, ","))
	case *gate == "" && *gatesFile != "":
		return 0, exitcode.Configf("--gates needs --gate")
	case *gate != "":
		if err := plan.forGate(*gate, *gatesFile, known); err != nil {
			return 0, err
		}
	default:
		specs, err := scenarios.LoadAll(sel, known)
		if err != nil {
			return 0, err
		}
		plan.jobs = plan.jobsFor(specs)
		plan.gate = scenarioGate(plan.jobs)
	}
	switch {
	case ext.deps != nil:
		plan.deps = ext.deps
		if len(plan.benches) > 0 {
			fmt.Fprintln(e.stderr, "harness run: benchmarks measure in-process profiles only: with --service the gate's benchmark criteria are INCONCLUSIVE")
			plan.benches = nil
		}
	default:
		deps, err := tgt.deps(ctx, e.stderr)
		if err != nil {
			return 0, err
		}
		plan.deps = deps
		plan.target = benchTarget{kind: tgt.kind, url: tgt.url, rtt: tgt.rtt}
	}
	if plan.seed == 0 {
		plan.seed = time.Now().UnixNano() % 1_000_000
	}
	removeStale(e.stderr, "run")
	return plan.execute(ctx, e)
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

// forGate plans the gate called name of the gates file (validated against
// the catalogue first): its scenarios, for the one profile, and its
// benchmarks.
func (p *runPlan) forGate(name, file string, known scenarios.Known) error {
	gs, specs, err := loadGates(file, known)
	if err != nil {
		return err
	}
	g, err := gs.Gate(name)
	if err != nil {
		return err
	}
	p.gate = g
	p.gatesFile = reports.DefaultGatesYAML()
	if file != "" {
		if p.gatesFile, err = inputfile.Read(file, inputfile.MaxYAML); err != nil {
			return exitcode.Config(err)
		}
	}
	var sel []scenarios.Spec
	for _, s := range g.Scenarios {
		sel = append(sel, specs[s])
	}
	p.jobs = p.jobsFor(sel)
	p.benches = benchSteps(g.Benchmarks)
	return nil
}

// jobsFor is each spec run against each of the plan's profiles it applies
// to (a profile that is not registered, an external implementation's,
// takes every spec). With more than one profile a job's model name
// carries its profile.
func (plan *runPlan) jobsFor(specs []scenarios.Spec) []job {
	profs := plan.profiles
	var jobs []job
	for _, s := range specs {
		for _, p := range profs {
			if !contains(s.Profiles, p) && contains(plan.reg.Names(), p) {
				continue
			}
			name := s.Name
			if len(profs) > 1 {
				name += "." + p
			}
			jobs = append(jobs, job{spec: s, profile: p, name: name, dir: s.Name + "-" + p})
		}
	}
	return jobs
}

// execute runs the plan's scenarios, then its benchmarks, builds the report
// model, judges it, compares it with the previous run in the report dir and
// writes the reports. Cancelling ctx (Ctrl-C) stops the run where it is and
// writes what it has, marked INCOMPLETE (exit 2).
func (p runPlan) execute(ctx context.Context, e env) (int, error) {
	start := time.Now()
	run := reports.Run{Schema: reports.SchemaVersion, ID: reports.NewRunID(start), Started: start,
		Environment: environment(string(p.target.kind), p.seed, p.profiles, p.cmdline)}
	if p.services != nil {
		run.Environment.Implementation, run.Environment.Services = reports.External, p.services
	}
	runDir := filepath.Join(p.reportDir, run.ID)
	secrets := &targetSecrets{}
	deps := secrets.wrap(p.deps)
	fmt.Fprintf(e.stderr, "run %s: gate %s: %d scenario run(s), %d benchmark(s), profile %s, seed %d → %s\n",
		run.ID, p.gate.Name, len(p.jobs), len(p.benches), strings.Join(p.profiles, ","), p.seed, runDir)
	if p.gatesFile != nil {
		if err := saveFile(runDir, gatesYAML, p.gatesFile); err != nil {
			return 0, err
		}
	}
	prog := newProgress(e.stderr, p.verbose)
	// go-redis logs every failed dial; during a fault that is thousands of
	// lines. Keep them for -v only.
	logw := io.Discard
	if p.verbose {
		logw = redactWriter{prog.writer(), secrets.list}
	}
	redis.SetLogger(redisLog{logw})
	defer redis.SetLogger(redisLog{io.Discard})
	var outcomes []scenarios.Outcome
	var metas []map[string]string
	var harnessErrs []error
	for _, j := range p.jobs {
		if ctx.Err() != nil {
			break
		}
		jr, err := p.runJob(ctx, j, filepath.Join(runDir, j.dir), prog.track(j.name), logw, deps)
		if err != nil {
			prog.wait()
			return 0, err
		}
		if jr.err != nil {
			harnessErrs = append(harnessErrs, fmt.Errorf("%s: %w", j.name, jr.err))
		}
		if jr.meta != nil {
			metas = append(metas, jr.meta)
		}
		outcomes = append(outcomes, jr.outcome)
		run.Scenarios = append(run.Scenarios, jr.scenario)
		run.Anomalies = append(run.Anomalies, jr.anomalies...)
	}
	prog.wait()
	if len(p.benches) > 0 && ctx.Err() == nil {
		if err := p.runBenches(ctx, &run, runDir, e); err != nil {
			if exitcode.Of(err) == exitcode.BadInput {
				return 0, err
			}
			harnessErrs = append(harnessErrs, fmt.Errorf("benchmarks: %w", err))
		}
	}
	if err := saveRun(filepath.Join(runDir, "results.json"), p.seed, outcomes); err != nil {
		return 0, exitcode.Harnessf("saving results: %w", err)
	}
	run.Finished = time.Now()
	run.Interrupted = ctx.Err() != nil
	fillTargets(&run.Environment, metas)
	out, err := judgeAndWrite(&run, p.gate, p.reportDir, secrets.list())
	if err != nil {
		return 0, err
	}
	printTable(redactWriter{e.stdout, secrets.list}, outcomes, p.gatesFile == nil)
	printCriteria(redactWriter{e.stdout, secrets.list}, run)
	for _, err := range harnessErrs {
		fmt.Fprintf(e.stderr, "harness run: %s\n", redact.Text(err.Error(), secrets.list()...))
	}
	fmt.Fprintf(e.stdout, "\n%s\nreport: %s\n", reports.Headline(run), filepath.Join(out, reports.ReportHTML))
	switch {
	case run.Interrupted:
		fmt.Fprintln(e.stderr, "harness run: interrupted; the report is partial (INCOMPLETE)")
		return exitcode.Inconclusive, nil
	case len(harnessErrs) > 0:
		return exitcode.Failure, nil
	}
	return run.Verdict.ExitCode(), nil
}

// jobResult is what one scenario run adds to a run.
type jobResult struct {
	outcome   scenarios.Outcome
	scenario  reports.Scenario
	anomalies []reports.Anomaly
	meta      map[string]string // the history's, nil when there is none
	err       error             // a harness failure: the run goes on without this scenario
}

// runJob runs one scenario into dir and maps it into the report model,
// with its latency histograms saved beside its history. A scenario cut
// short by ctx is inconclusive ("interrupted"); an error returned is bad
// input, which stops the run.
func (p runPlan) runJob(ctx context.Context, j job, dir string, tr *tracker, logw io.Writer, deps *scenarios.Deps) (jobResult, error) {
	o, err := scenarios.Run(ctx, j.spec, scenarios.Options{
		Profile: j.profile, Profiles: p.reg, Seed: p.seed, Dir: dir,
		Progress: tr.phase, Log: logw, Deps: deps,
	})
	// unjudged is a run that could not be judged: INCONCLUSIVE, with why
	// (the progress line says what happened).
	unjudged := func(status, why string) jobResult {
		tr.done(status)
		o.Verdict, o.Elapsed = verdict.Inconclusive, time.Since(tr.start)
		o.Notes = append(o.Notes, why)
		return jobResult{outcome: o, err: err, scenario: reports.Scenario{Name: j.name, Profile: j.profile,
			Verdict: verdict.Inconclusive, Inconclusive: why, DurationMs: reports.Ms(o.Elapsed)}}
	}
	switch {
	case err != nil && ctx.Err() != nil:
		err = nil
		return unjudged(statusInterrupted, "interrupted before it finished"), nil
	case exitcode.Of(err) == exitcode.BadInput:
		tr.done(statusError)
		return jobResult{}, err
	case err != nil:
		o.Notes = append(o.Notes, err.Error())
		return unjudged(statusError, "harness error: "+firstLine(err.Error())), nil
	}
	tr.done(string(o.Verdict))
	h, err := history.Load(filepath.Join(dir, "history.json"))
	if err == nil {
		err = writeHgrms(dir, h)
	}
	jr := jobResult{outcome: o, meta: h.Meta, err: err}
	jr.scenario, jr.anomalies = scenarioModel(j.name, o, h)
	return jr, nil
}

// What a scenario's progress line says of a run that has no verdict.
const (
	statusInterrupted = "INTERRUPTED"
	statusError       = "ERROR"
)

// gatesYAML is the copy of the gates file a gate run keeps, so that
// `harness report` re-judges with the same criteria.
const gatesYAML = "gates.yaml"

// benchJSON is the benchmarks' full result in a run's report directory.
const benchJSON = "bench.json"

// runBenches runs the plan's benchmarks for its one profile and adds them
// to run; the full bench result is saved as bench.json.
func (p runPlan) runBenches(ctx context.Context, run *reports.Run, runDir string, e env) error {
	cfg, err := p.target.config(p.profiles[0], p.reg, p.benches)
	if err != nil {
		fmt.Fprintf(e.stderr, "harness run: %v: the gate's benchmark criteria will be inconclusive\n", err)
		return nil
	}
	cfg.Progress = bench.NewProgress(unwrap(e.stderr))
	rep, err := bench.Run(ctx, cfg)
	if rep == nil {
		return err
	}
	run.Benchmarks = rep.Benches()
	var b bytes.Buffer
	if werr := rep.WriteJSON(&b); werr == nil {
		if werr := saveFile(runDir, benchJSON, b.Bytes()); werr != nil {
			return werr
		}
	}
	if errors.Is(err, context.Canceled) {
		return nil // the run is marked interrupted
	}
	return err
}

// judgeAndWrite judges run against g, compares it with the previous run of
// the same gate in reportDir, and writes its reports (every secret masked).
// It returns the run's report directory.
func judgeAndWrite(run *reports.Run, g reports.Gate, reportDir string, secrets []string) (string, error) {
	run.Judge(g)
	run.Trend = nil
	if prev, ok, err := reports.Previous(reportDir, *run); err != nil {
		return "", exitcode.Harness(err)
	} else if ok {
		t := reports.Compare(prev, *run)
		run.Trend = &t
	}
	out, err := reports.Write(reportDir, *run, secrets...)
	if err != nil {
		return "", exitcode.Harness(err)
	}
	return out, nil
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

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// outcomesVerdict folds the outcomes' verdicts.
func outcomesVerdict(os []scenarios.Outcome) verdict.Verdict {
	vs := make([]verdict.Verdict, len(os))
	for i, o := range os {
		vs[i] = o.Verdict
	}
	return verdict.Fold(vs...)
}

// runResults is the JSON result of one `harness run`.
type runResults struct {
	Seed     int64               `json:"seed"`
	Outcomes []scenarios.Outcome `json:"outcomes"`
}

func saveRun(path string, seed int64, os []scenarios.Outcome) error {
	b, err := jsonIndent(runResults{Seed: seed, Outcomes: os})
	if err != nil {
		return err
	}
	return history.WriteFileAtomic(path, b)
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

func (t *tracker) phase(ph string) {
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

func (t *tracker) done(verdict string) {
	t.mu.Lock()
	t.current = verdict
	t.mu.Unlock()
	if t.bar != nil {
		t.bar.SetTotal(t.bar.Current()+1, true)
		return
	}
	fmt.Fprintf(t.p.w, "%-32s %-12s %.1fs\n", t.name, verdict, time.Since(t.start).Seconds())
}
