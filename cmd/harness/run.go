package main

import (
	"context"
	"fmt"
	"io"
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

	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/scenarios"
	"github.com/gonogo/harness/scenarios/check"
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

func runRun(ctx context.Context, args []string, e env) (int, error) {
	fs := newFlags("run", "run [--scenario name|file.yaml]... [--profile hardened] [--seed N] [--out reports]", e)
	var sel, profs listFlag
	fs.Var(&sel, "scenario", "scenario `name` from the catalogue or path to a .yaml file; repeatable or comma list (default: the whole catalogue)")
	fs.Var(&profs, "profile", "`profile` under test; repeatable or comma list (default hardened)")
	tgt := fs.String("target", "process", "where Redis comes from: process")
	seed := fs.Int64("seed", 0, "seed of the workloads' random choices; 0 picks one from the clock (printed, so the run can be replayed)")
	out := fs.String("out", "reports", "directory the run directory is created in")
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
	if *tgt != "process" {
		return 0, exitcode.Configf("--target %q: only process is supported by run", *tgt)
	}
	if len(profs) == 0 {
		profs = listFlag{"hardened"}
	}
	reg := profiles.Default()
	for _, p := range profs {
		if !contains(reg.Names(), p) {
			return 0, exitcode.Configf("unknown profile %q (known: %s)", p, strings.Join(reg.Names(), ", "))
		}
	}
	specs, err := scenarios.LoadAll(sel, scenarios.DefaultKnown(reg))
	if err != nil {
		return 0, err
	}
	if *seed == 0 {
		*seed = time.Now().UnixNano() % 1_000_000
	}
	runID := time.Now().Format("20060102-150405")
	runDir := filepath.Join(*out, runID)
	fmt.Fprintf(e.stderr, "run %s: %d scenario(s) × %s, seed %d → %s\n", runID, len(specs), strings.Join(profs, ","), *seed, runDir)

	type job struct {
		spec    scenarios.Spec
		profile string
	}
	var jobs []job
	for _, s := range specs {
		for _, p := range profs {
			if contains(s.Profiles, p) {
				jobs = append(jobs, job{s, p})
			}
		}
	}
	prog := newProgress(e.stderr, *verbose)
	// go-redis logs every failed dial; during a fault that is thousands of
	// lines. Keep them for -v only.
	logw := io.Discard
	if *verbose {
		logw = prog.writer()
	}
	redis.SetLogger(redisLog{logw})
	var outcomes []scenarios.Outcome
	var harnessErrs []error
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		name := j.spec.Name + "/" + j.profile
		tr := prog.track(name)
		o, err := scenarios.Run(ctx, j.spec, scenarios.Options{
			Profile:  j.profile,
			Profiles: reg,
			Seed:     *seed,
			Dir:      filepath.Join(runDir, j.spec.Name+"-"+j.profile),
			Progress: tr.phase,
			Log:      logw,
			Deps:     scenarios.DefaultDeps(),
		})
		if err != nil {
			tr.done("ERROR")
			if exitcode.Of(err) == exitcode.BadInput {
				prog.wait()
				return 0, err
			}
			harnessErrs = append(harnessErrs, fmt.Errorf("%s: %w", name, err))
			o.Verdict = "ERROR"
			o.Notes = append(o.Notes, err.Error())
		} else {
			tr.done(string(o.Verdict))
		}
		outcomes = append(outcomes, o)
	}
	prog.wait()
	if err := saveRun(filepath.Join(runDir, "results.json"), *seed, outcomes); err != nil {
		return 0, exitcode.Harnessf("saving results: %w", err)
	}
	printTable(e.stdout, outcomes)
	for _, err := range harnessErrs {
		fmt.Fprintf(e.stderr, "harness run: %v\n", err)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(e.stderr, "harness run: interrupted")
		return exitcode.Inconclusive, nil
	}
	if len(harnessErrs) > 0 {
		return exitcode.Failure, nil
	}
	return verdictCode(outcomes), nil
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

// verdictCode maps outcomes to the exit code: any FAIL 1, else any
// INCONCLUSIVE 2, else 0.
func verdictCode(os []scenarios.Outcome) int {
	code := exitcode.Go
	if len(os) == 0 {
		return exitcode.Inconclusive
	}
	for _, o := range os {
		switch o.Verdict {
		case check.Fail:
			return exitcode.NoGo
		case check.Inconclusive:
			code = exitcode.Inconclusive
		}
	}
	return code
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

// printTable prints one line per scenario and profile, then for each
// verdict that is not PASS the checks behind it.
func printTable(w io.Writer, os []scenarios.Outcome) {
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
	w       io.Writer
	verbose bool
	p       *mpb.Progress // nil: plain lines
	mu      sync.Mutex
}

func newProgress(w io.Writer, verbose bool) *progress {
	pr := &progress{w: w, verbose: verbose}
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		pr.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(30))
	}
	return pr
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
