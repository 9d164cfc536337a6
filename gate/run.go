package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/gonogo/harness/bench"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/redact"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/scenarios"
	"github.com/gonogo/harness/target"
)

// The files a gate run keeps in its report directory beside the reports.
const (
	// GatesYAML is the copy of the gates file a gate run keeps, so that
	// Rejudge judges with the same criteria.
	GatesYAML = "gates.yaml"
	// BenchJSON is the benchmarks' full result.
	BenchJSON = "bench.json"
	// ResultsJSON is every scenario run's outcome.
	ResultsJSON = "results.json"
)

// What a scenario's progress says of a run that has no verdict.
const (
	StatusInterrupted = "INTERRUPTED"
	StatusError       = "ERROR"
)

// Progress follows one scenario run.
type Progress interface {
	// Phase is called as the run enters each phase ("setup", "fault …").
	Phase(name string)
	// Done is called once, with the run's verdict or StatusInterrupted or
	// StatusError.
	Done(status string)
}

// Hooks are how a caller follows a gate run. Every field may be nil.
type Hooks struct {
	// Started is called before any traffic with the run's id and report
	// directory.
	Started func(id, dir string)
	// Scenario returns the progress of the scenario run named name.
	Scenario func(name string) Progress
	// ScenariosDone is called when the last scenario run has ended,
	// before the benchmarks.
	ScenariosDone func()
	// Log receives engine notes (default: discarded).
	Log io.Writer
	// Bench shows the benchmarks' progress.
	Bench bench.Progress
	// Warn receives one line for the user: something the run will not do.
	Warn func(line string)
	// Secrets collects the password of every target the run starts, for
	// the caller's logs (default: a collection of the run's own). Every
	// report written masks them.
	Secrets *Secrets
}

// Result is what a gate run (or a re-judged one) found.
type Result struct {
	// Run is the report model, judged.
	Run reports.Run
	// Outcomes are the scenario runs', in order.
	Outcomes []scenarios.Outcome
	// Errors are harness failures the run went on without (their text
	// may show a target's password: mask it with the Secrets).
	Errors []error
	// Dir is the run's report directory.
	Dir string
}

// ExitCode is the process exit code for the run: its verdict's, except
// that a harness failure in a run not interrupted is exitcode.Failure.
func (r Result) ExitCode() int {
	if len(r.Errors) > 0 && !r.Run.Interrupted {
		return exitcode.Failure
	}
	return r.Run.Verdict.ExitCode()
}

// Run runs the plan's scenarios, then its benchmarks, builds the report
// model, judges it, compares it with the previous run in the report
// directory and writes the reports. Cancelling ctx (Ctrl-C) stops the run
// where it is and writes what it has, marked INCOMPLETE. An error returned
// is bad input found during the run (a scenario the engine refuses) or a
// failure to write the run's files.
func (p Plan) Run(ctx context.Context, hk Hooks) (Result, error) {
	if hk.Secrets == nil {
		hk.Secrets = &Secrets{}
	}
	if hk.Log == nil {
		hk.Log = io.Discard
	}
	start := time.Now()
	run := reports.Run{Schema: reports.SchemaVersion, ID: reports.NewRunID(start), Started: start,
		Environment: environment(p.Bench.Kind, p.Seed, p.Profiles, p.CommandLine)}
	if p.Services != nil {
		run.Environment.Implementation, run.Environment.Services = reports.External, p.Services
	}
	res := Result{Dir: filepath.Join(p.ReportDir, run.ID)}
	deps := hk.Secrets.wrap(p.Deps)
	if hk.Started != nil {
		hk.Started(run.ID, res.Dir)
	}
	if p.GatesFile != nil {
		if err := saveFile(res.Dir, GatesYAML, p.GatesFile); err != nil {
			return res, err
		}
	}
	var metas []map[string]string
	for _, j := range p.Jobs {
		if ctx.Err() != nil {
			break
		}
		var pr Progress = noProgress{}
		if hk.Scenario != nil {
			pr = hk.Scenario(j.Name)
		}
		jr, err := p.runJob(ctx, j, filepath.Join(res.Dir, j.Dir), pr, hk.Log, deps)
		if err != nil {
			if hk.ScenariosDone != nil {
				hk.ScenariosDone()
			}
			return res, err
		}
		if jr.err != nil {
			res.Errors = append(res.Errors, fmt.Errorf("%s: %w", j.Name, jr.err))
		}
		if jr.meta != nil {
			metas = append(metas, jr.meta)
		}
		res.Outcomes = append(res.Outcomes, jr.outcome)
		run.Scenarios = append(run.Scenarios, jr.scenario)
		run.Anomalies = append(run.Anomalies, jr.anomalies...)
	}
	if hk.ScenariosDone != nil {
		hk.ScenariosDone()
	}
	if len(p.Benches)+len(p.Sweeps) > 0 && ctx.Err() == nil {
		if err := p.runBenches(ctx, &run, res.Dir, hk); err != nil {
			if exitcode.Of(err) == exitcode.BadInput {
				return res, err
			}
			res.Errors = append(res.Errors, fmt.Errorf("benchmarks: %w", err))
		}
	}
	if err := saveRun(filepath.Join(res.Dir, ResultsJSON), p.Seed, res.Outcomes); err != nil {
		return res, exitcode.Harnessf("saving results: %w", err)
	}
	run.Finished = time.Now()
	run.Interrupted = ctx.Err() != nil
	fillTargets(&run.Environment, metas)
	out, err := judgeAndWrite(&run, p.Gate, p.ReportDir, hk.Secrets.List())
	if err != nil {
		return res, err
	}
	res.Run, res.Dir = run, out
	return res, nil
}

// noProgress follows nothing.
type noProgress struct{}

func (noProgress) Phase(string) {}
func (noProgress) Done(string)  {}

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
func (p Plan) runJob(ctx context.Context, j Job, dir string, pr Progress, logw io.Writer, deps *scenarios.Deps) (jobResult, error) {
	start := time.Now()
	o, err := scenarios.Run(ctx, j.Spec, scenarios.Options{
		Profile: j.Profile, Profiles: p.Registry, Seed: p.Seed, Dir: dir,
		Progress: pr.Phase, Log: logw, Deps: deps,
	})
	// unjudged is a run that could not be judged: INCONCLUSIVE, with why
	// (the progress says what happened).
	unjudged := func(status, why string) jobResult {
		pr.Done(status)
		o.Verdict, o.Elapsed = verdict.Inconclusive, time.Since(start)
		o.Notes = append(o.Notes, why)
		return jobResult{outcome: o, err: err, scenario: reports.Scenario{Name: j.Name, Profile: j.Profile,
			Verdict: verdict.Inconclusive, Inconclusive: why, DurationMs: reports.Ms(o.Elapsed)}}
	}
	switch {
	case err != nil && ctx.Err() != nil:
		err = nil
		return unjudged(StatusInterrupted, "interrupted before it finished"), nil
	case exitcode.Of(err) == exitcode.BadInput:
		pr.Done(StatusError)
		return jobResult{}, err
	case err != nil:
		o.Notes = append(o.Notes, err.Error())
		return unjudged(StatusError, "harness error: "+firstLine(err.Error())), nil
	}
	pr.Done(string(o.Verdict))
	h, err := history.Load(filepath.Join(dir, "history.json"))
	if err == nil {
		err = writeHgrms(dir, h)
	}
	jr := jobResult{outcome: o, meta: h.Meta, err: err}
	jr.scenario, jr.anomalies = scenarioModel(j.Name, o, h)
	return jr, nil
}

// runBenches runs the plan's benchmarks for its one profile and adds them
// to run; the full bench result is saved as BenchJSON.
func (p Plan) runBenches(ctx context.Context, run *reports.Run, runDir string, hk Hooks) error {
	ops := slices.DeleteFunc(slices.Clone(p.Benches), func(op string) bool { return op == reports.CostBench })
	var err error
	if len(ops) > 0 {
		err = p.runOps(ctx, run, runDir, hk, ops)
	}
	if len(ops) < len(p.Benches) && ctx.Err() == nil && exitcode.Of(err) != exitcode.BadInput {
		err = errors.Join(err, p.runCost(ctx, run, runDir))
	}
	return err
}

// runOps runs the benchmark ops for the plan's one profile and adds them
// to run; the full bench result is saved as BenchJSON.
func (p Plan) runOps(ctx context.Context, run *reports.Run, runDir string, hk Hooks, ops []string) error {
	cfg, err := p.Bench.config(p.Profiles[0], p.Registry, ops, p.Load)
	if err != nil {
		if hk.Warn != nil {
			hk.Warn(fmt.Sprintf("%v: the gate's benchmark criteria will be inconclusive", err))
		}
		return nil
	}
	cfg.Progress = hk.Bench
	runs := []bench.Config{}
	if len(p.Benches) > 0 {
		runs = append(runs, cfg)
	}
	for i := range p.Sweeps {
		c := cfg
		c.Ops, c.Sweep = nil, &p.Sweeps[i]
		runs = append(runs, c)
	}
	for i, c := range runs {
		rep, err := bench.Run(ctx, c)
		if rep == nil {
			return err
		}
		if c.Sweep == nil {
			for _, r := range rep.Results {
				run.Benchmarks = append(run.Benchmarks, r.Bench())
			}
		}
		run.Sweeps = append(run.Sweeps, rep.Sweeps()...)
		name := BenchJSON
		if i > 0 || c.Sweep != nil {
			name = fmt.Sprintf("bench-%d.json", i)
		}
		var b bytes.Buffer
		if werr := rep.WriteJSON(&b); werr == nil {
			if werr := saveFile(runDir, name, b.Bytes()); werr != nil {
				return werr
			}
		}
		if errors.Is(err, context.Canceled) {
			return nil // the run is marked interrupted
		}
		if err != nil {
			return err
		}
	}
	return nil
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

// Fold is the verdict of scenario runs: the fold of their verdicts.
func Fold(os []scenarios.Outcome) verdict.Verdict {
	vs := make([]verdict.Verdict, len(os))
	for i, o := range os {
		vs[i] = o.Verdict
	}
	return verdict.Fold(vs...)
}

// runResults is the JSON of ResultsJSON.
type runResults struct {
	Seed     int64               `json:"seed"`
	Outcomes []scenarios.Outcome `json:"outcomes"`
}

func saveRun(path string, seed int64, os []scenarios.Outcome) error {
	b, err := json.MarshalIndent(runResults{Seed: seed, Outcomes: os}, "", "  ")
	if err != nil {
		return err
	}
	return history.WriteFileAtomic(path, append(b, '\n'))
}

// writeHgrms saves the latency of each op kind of h as an HdrHistogram
// (.hgrm, values in ms) in dir: <kind>.hgrm.
func writeHgrms(dir string, h history.History) error {
	hists := map[string]*hdrhistogram.Histogram{}
	for _, op := range h.Ops {
		if op.Kind == history.Subscribe || op.Kind == history.RedisState || op.Kind == history.RSS {
			continue
		}
		hg := hists[op.Kind]
		if hg == nil {
			hg = hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
			hists[op.Kind] = hg
		}
		us := min(max(int64(op.Latency()/time.Microsecond), 1), hg.HighestTrackableValue())
		_ = hg.RecordValue(us) // within range
	}
	for kind, hg := range hists {
		if err := reports.WriteHgrm(filepath.Join(dir, reports.HgrmName(kind)), hg, 1000); err != nil {
			return err
		}
	}
	return nil
}

// Secrets collects the password of every target a run starts, so that no
// report or log shows it. The zero value is ready to use.
type Secrets struct {
	mu  sync.Mutex
	pws []string
}

// wrap returns deps whose StartTarget reports each target's password to s.
func (s *Secrets) wrap(d *scenarios.Deps) *scenarios.Deps {
	c := *d
	c.StartTarget = func(ctx context.Context, t scenarios.Target) (target.Target, error) {
		tg, err := d.StartTarget(ctx, t)
		if err == nil {
			if pw := redact.Password(tg.URL()); pw != "" {
				s.mu.Lock()
				if !slices.Contains(s.pws, pw) {
					s.pws = append(s.pws, pw)
				}
				s.mu.Unlock()
			}
		}
		return tg, err
	}
	return &c
}

// List is the passwords seen so far.
func (s *Secrets) List() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pws)
}

// fillTargets sets the environment's target facts from what the engine
// recorded in each scenario's history (scenarios.Meta*): the kind (kinds
// joined by "+" when scenarios ran on different ones; unchanged when no
// scenario recorded one), TLS when every target was TLS, and the first
// recorded URL (password masked), round-trip time and Redis version. A
// process target without a recorded version gets `redis-server --version`.
func fillTargets(env *reports.Environment, metas []map[string]string) {
	var kinds []string
	tls := len(metas) > 0
	for _, m := range metas {
		if k := m[scenarios.MetaTargetKind]; k != "" && !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
		tls = tls && m[scenarios.MetaTargetTLS] == "true"
		if env.TargetURL == "" {
			env.TargetURL = m[scenarios.MetaTargetURL]
		}
		if env.RTTMs == 0 {
			env.RTTMs, _ = strconv.ParseFloat(m[scenarios.MetaTargetRTT], 64)
		}
		if env.RedisVersion == "" {
			env.RedisVersion = m[scenarios.MetaRedisVersion]
		}
	}
	if len(kinds) > 0 {
		env.TargetKind = strings.Join(kinds, "+")
	}
	env.TLS = tls
	if env.RedisVersion == "" && target.Kind(env.TargetKind) == target.KindProcess {
		env.RedisVersion = redisServerVersion()
	}
}

// redisServerVersion is the version `redis-server --version` prints, or "".
func redisServerVersion() string {
	out, err := exec.Command("redis-server", "--version").Output()
	if err != nil {
		return ""
	}
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return v
		}
	}
	return ""
}

// gitSHA is the commit the harness runs from: `git rev-parse HEAD` in the
// working directory, else the revision the binary was built from, else
// "unknown".
func gitSHA() string {
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		if sha := strings.TrimSpace(string(out)); sha != "" {
			return sha
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// environment is the run's environment before the probe fills in what the
// targets said.
func environment(kind target.Kind, seed int64, profiles, cmdline []string) reports.Environment {
	return reports.Environment{TargetKind: string(kind), GoVersion: runtime.Version(), GitSHA: gitSHA(), Seed: seed,
		Profile: strings.Join(profiles, ","), CommandLine: cmdline}
}

// saveFile writes data to dir/name atomically, as a harness failure on error.
func saveFile(dir, name string, data []byte) error {
	if err := history.WriteFileAtomic(filepath.Join(dir, name), data); err != nil {
		return exitcode.Harnessf("saving %s: %w", name, err)
	}
	return nil
}

// firstLine is s up to its first line break, marked " …" when cut.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
