package explore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
)

// Options configure one exploration.
type Options struct {
	// Engine runs the scenarios. Required.
	Engine *Engine
	// Generator draws them.
	Generator Generator
	// Seed is the exploration's seed: scenario i is Generator.Generate(Seed,
	// i), run with workload seed RunSeed(Seed, i).
	Seed int64
	// Budget bounds the exploration: no run starts after it (a run or a
	// shrink in progress finishes its current run).
	Budget time.Duration
	// Out is where the minimal scenarios, their reports and the summary
	// are written. Required.
	Out string
	// Checks, when set, limits the failures shrunk and reported to those
	// of these checkers; the others are only counted (Summary.Ignored).
	Checks []string
	// Confirm and MaxShrinkRuns: see Shrinker.Confirm and MaxRuns.
	Confirm       int
	MaxShrinkRuns int
	// Events, when set, are told what happens.
	Events Events
}

// Events are the exploration's progress callbacks; any may be nil.
type Events struct {
	// Run: generated scenario index starts.
	Run func(index int, s Scenario)
	// Phase: the run in progress entered phase (setup, traffic, ...).
	Phase func(phase string)
	// Judged: generated scenario index was judged (failed lists the
	// checks that failed; unavailable: the target could not run it) or
	// could not be (err).
	Judged func(index int, failed []string, unavailable bool, err error)
	// Shrink: a shrink for checker tried a candidate (runs so far, steps
	// taken, what changed, whether this one was taken).
	Shrink func(checker string, runs, steps int, what string, s Scenario, taken bool)
	// Found: a failure was shrunk and written.
	Found func(f Failure)
}

// Failure is one distinct failure: a checker that failed, and the smallest
// scenario in which it still does.
type Failure struct {
	Checker string `json:"checker"`
	Error   string `json:"error"`
	// File is the minimal scenario's file; Report its report, Dir its last
	// failing run (history.json, result.json).
	File   string `json:"file"`
	Report string `json:"report"`
	Dir    string `json:"dir,omitempty"`
	// FoundAfter is the time from the exploration's start to the end of
	// the run that found it; FoundAtRun that run's index (runs needed:
	// FoundAtRun+1).
	FoundAfter time.Duration `json:"found_after_ns"`
	FoundAtRun int           `json:"found_at_run"`
	// Seen counts the generated runs that failed this checker with the
	// same fault kinds (the first shrunk, the others not).
	Seen int `json:"seen"`
	// RunSeed is the workload seed the scenario is replayed with.
	RunSeed int64 `json:"run_seed"`
	// Faults and Duration describe the minimal scenario.
	Faults   []string      `json:"faults"`
	Duration time.Duration `json:"duration_ns"`
	// Flaky: the failure did not repeat (Reproduced of Tries runs); the
	// file is the scenario as generated, not shrunk.
	Flaky      bool `json:"flaky,omitempty"`
	Reproduced int  `json:"reproduced"`
	Tries      int  `json:"tries"`
	// ShrinkSteps and ShrinkRuns: candidates taken, runs made; Partial:
	// the shrink was cut short (budget, run bound, interrupt).
	ShrinkSteps int  `json:"shrink_steps"`
	ShrinkRuns  int  `json:"shrink_runs"`
	Partial     bool `json:"partial,omitempty"`
	// Original is the generated scenario that failed first.
	Original string   `json:"original"`
	Evidence []string `json:"evidence,omitempty"`
	// Replay is the command that runs the minimal file again.
	Replay string `json:"replay"`

	key string
}

// Summary is what an exploration did and found.
type Summary struct {
	Profile string        `json:"profile"`
	Seed    int64         `json:"seed"`
	Budget  time.Duration `json:"budget_ns"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Runs counts generated scenarios run; ShrinkRuns the runs shrinking
	// made; Unavailable the runs whose target could not offer a fault;
	// Errors the runs that could not be judged.
	Runs        int      `json:"runs"`
	ShrinkRuns  int      `json:"shrink_runs"`
	Unavailable int      `json:"unavailable"`
	Errors      int      `json:"errors"`
	ErrorLines  []string `json:"error_lines,omitempty"`
	// Kinds counts the generated runs per fault kind; Pairs per pair of
	// kinds in one schedule ("down+latency").
	Kinds map[string]int `json:"fault_kinds"`
	Pairs map[string]int `json:"fault_pairs"`
	// Failures are the distinct failures, in the order found; Ignored
	// counts the failed checks of checkers Options.Checks left out.
	Failures    []Failure      `json:"failures"`
	Ignored     map[string]int `json:"ignored,omitempty"`
	Interrupted bool           `json:"interrupted,omitempty"`
}

// ExitCode is the exploration's exit code: 2 interrupted, 1 something
// failed, 4 runs could not be judged and nothing failed, else 0.
func (s Summary) ExitCode() int {
	switch {
	case s.Interrupted:
		return exitcode.Inconclusive
	case len(s.Failures) > 0:
		return exitcode.NoGo
	case s.Errors > 0:
		return exitcode.Failure
	}
	return exitcode.Go
}

// RunSeed is the workload seed of generated scenario index: a
// deterministic mix of the two, within 0 to 2^53-1 (harness run --seed).
func RunSeed(seed int64, index int) int64 {
	x := uint64(seed)*0x9e3779b97f4a7c15 + uint64(index)*0xbf58476d1ce4e5b9 + 1
	x ^= x >> 31
	return int64(x & (1<<53 - 1))
}

// maxErrorLines bounds the error lines a summary keeps.
const maxErrorLines = 20

// Explore runs generated scenarios back to back until the budget is spent
// or ctx ends, shrinks every new failure and writes the minimal scenarios,
// their reports and the summary in o.Out. An error is a harness failure
// (a generated scenario that does not validate, an output that cannot be
// written); an interrupt is not: the summary says so.
func Explore(ctx context.Context, o Options) (Summary, error) {
	start := time.Now()
	deadline := start.Add(o.Budget)
	sum := Summary{Profile: o.Engine.Profile(), Seed: o.Seed, Budget: o.Budget, Kinds: map[string]int{}, Pairs: map[string]int{}, Ignored: map[string]int{}}
	work := filepath.Join(o.Out, ".runs")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return sum, exitcode.Harnessf("explore: %w", err)
	}
	defer os.RemoveAll(work)
	x := &explorer{o: o, sum: &sum, work: work, start: start, deadline: deadline}
	for i := 0; ctx.Err() == nil && time.Now().Before(deadline); i++ {
		if err := x.one(ctx, i); err != nil {
			return x.finish(), err
		}
	}
	sum.Interrupted = ctx.Err() != nil
	return x.finish(), x.writeSummary()
}

// explorer is one exploration's state.
type explorer struct {
	o               Options
	sum             *Summary
	work            string
	start, deadline time.Time
	runs            int // run directories made under work
}

func (x *explorer) finish() Summary {
	x.sum.Elapsed = time.Since(x.start)
	return *x.sum
}

// one runs generated scenario i and shrinks what it breaks.
func (x *explorer) one(ctx context.Context, i int) error {
	s := x.o.Generator.Generate(x.o.Seed, i)
	if err := x.o.Engine.Validate(s); err != nil {
		return exitcode.Harnessf("explore: generated scenario %d does not validate (a defect of the generator): %w", i, err)
	}
	if x.o.Events.Run != nil {
		x.o.Events.Run(i, s)
	}
	kinds := s.FaultKinds()
	seed := RunSeed(x.o.Seed, i)
	// The run's directory is kept until its failures are recorded: a
	// finding that does not repeat (flaky) has no other failing run to
	// show.
	x.runs++
	dir := filepath.Join(x.work, strconv.Itoa(x.runs))
	defer os.RemoveAll(dir)
	t, err := x.o.Engine.Run(ctx, s, seed, dir, x.o.Events.Phase)
	var names []string
	for _, r := range t.Failed() {
		names = append(names, r.Check)
	}
	if x.o.Events.Judged != nil {
		x.o.Events.Judged(i, names, t.Unavailable, err)
	}
	if err != nil {
		if ctx.Err() == nil {
			x.sum.Errors++
			if len(x.sum.ErrorLines) < maxErrorLines {
				x.sum.ErrorLines = append(x.sum.ErrorLines, fmt.Sprintf("run %d (%s): %s", i, s.Describe(), firstLine(err.Error())))
			}
		}
		return nil
	}
	x.sum.Runs++
	for j, k := range kinds {
		x.sum.Kinds[k]++
		for _, l := range kinds[j+1:] {
			x.sum.Pairs[k+"+"+l]++
		}
	}
	if t.Unavailable {
		x.sum.Unavailable++
		return nil
	}
	found := time.Since(x.start)
	for _, r := range t.Failed() {
		if len(x.o.Checks) > 0 && !slices.Contains(x.o.Checks, r.Check) {
			x.sum.Ignored[r.Check]++
			continue
		}
		key := r.Check + "/" + strings.Join(kinds, "+")
		if k := slices.IndexFunc(x.sum.Failures, func(f Failure) bool { return f.key == key }); k >= 0 {
			x.sum.Failures[k].Seen++
			continue
		}
		if ctx.Err() != nil || !time.Now().Before(x.deadline) {
			// No time to shrink: report it as found.
			if err := x.record(s, seed, i, found, key, r, Shrunk{Minimal: narrow(s, r.Check), Reproduced: 1, Tries: 1, Partial: true,
				Last: Outcome{Failed: true, Error: r.Error, Evidence: r.Evidence, Dir: dir}}); err != nil {
				return err
			}
			continue
		}
		sh := x.shrink(ctx, s, seed, r, dir)
		if err := x.record(s, seed, i, found, key, r, sh); err != nil {
			return err
		}
	}
	return nil
}

// shrink shrinks s for r's checker, running candidates with the same
// workload seed; dir is the directory of the run that found it.
func (x *explorer) shrink(ctx context.Context, s Scenario, seed int64, r Result, dir string) Shrunk {
	sh := Shrinker{
		Valid:    x.o.Engine.Validate,
		Confirm:  x.o.Confirm,
		MaxRuns:  x.o.MaxShrinkRuns,
		Deadline: x.deadline,
		Judge: func(ctx context.Context, c Scenario) (Outcome, error) {
			x.runs++
			dir := filepath.Join(x.work, strconv.Itoa(x.runs))
			t, err := x.o.Engine.Run(ctx, c, seed, dir, x.o.Events.Phase)
			x.sum.ShrinkRuns++
			if err != nil {
				return Outcome{}, err
			}
			for _, f := range t.Failed() {
				if f.Check == r.Check {
					return Outcome{Failed: true, Error: f.Error, Evidence: f.Evidence, Dir: dir}, nil
				}
			}
			os.RemoveAll(dir)
			return Outcome{}, nil
		},
	}
	if x.o.Events.Shrink != nil {
		sh.Step = func(runs, steps int, what string, c Scenario, ok bool) {
			x.o.Events.Shrink(r.Check, runs, steps, what, c, ok)
		}
	}
	found := Outcome{Failed: true, Error: r.Error, Evidence: r.Evidence, Dir: dir}
	return sh.Shrink(ctx, s, r.Check, found)
}

// record writes a failure's minimal scenario, its report and its last
// failing run, and adds it to the summary.
func (x *explorer) record(orig Scenario, seed int64, index int, found time.Duration, key string, r Result, sh Shrunk) error {
	m := sh.Minimal
	name := r.Check + "-" + m.Hash()
	m.Name = name
	file := filepath.Join(x.o.Out, name+".yaml")
	replay := fmt.Sprintf("harness run --scenario %s --profile %s --seed %d", file, x.sum.Profile, seed)
	f := Failure{
		Checker: r.Check, Error: sh.Last.Error, File: file, Report: filepath.Join(x.o.Out, name+".json"),
		FoundAfter: found, FoundAtRun: index, Seen: 1, RunSeed: seed,
		Faults: m.FaultKinds(), Duration: time.Duration(m.Workload.Duration),
		Flaky: sh.Flaky, Reproduced: sh.Reproduced, Tries: sh.Tries,
		ShrinkSteps: sh.Steps, ShrinkRuns: sh.Runs, Partial: sh.Partial,
		Original: string(orig.YAML()), Evidence: sh.Last.Evidence, Replay: replay, key: key,
	}
	m.Description = fmt.Sprintf("harness explore: %s failed against %s (%s) in generated scenario %d of seed %d (%s); %s after %d shrink steps. "+
		"Replay: %s", r.Check, x.sum.Profile, firstLine(sh.Last.Error), index, x.o.Seed, orig.Describe(), f.Status(), sh.Steps, replay)
	if f.Faults == nil {
		f.Faults = []string{}
	}
	if err := writeFile(file, m.YAML()); err != nil {
		return err
	}
	if sh.Last.Dir != "" {
		// Copied, not moved: the run that found it may have failed
		// other checkers too, each recorded with it.
		f.Dir = filepath.Join(x.o.Out, name)
		os.RemoveAll(f.Dir)
		if err := os.CopyFS(f.Dir, os.DirFS(sh.Last.Dir)); err != nil {
			return exitcode.Harnessf("explore: %w", err)
		}
	}
	if err := writeJSON(f.Report, f); err != nil {
		return err
	}
	x.sum.Failures = append(x.sum.Failures, f)
	if x.o.Events.Found != nil {
		x.o.Events.Found(f)
	}
	return nil
}

// Status is "minimal", "FLAKY (failed k of n runs)" (not shrunk) or "cut
// short" (the smallest scenario found before the shrink stopped).
func (f Failure) Status() string {
	switch {
	case f.Flaky:
		return fmt.Sprintf("FLAKY (failed %d of %d runs)", f.Reproduced, f.Tries)
	case f.Partial:
		return "cut short"
	}
	return "minimal"
}

// FaultList is the minimal scenario's fault kinds, "down+latency", or
// "none".
func (f Failure) FaultList() string {
	if len(f.Faults) == 0 {
		return "none"
	}
	return strings.Join(f.Faults, "+")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
