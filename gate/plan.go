// Package gate plans and runs a gate: it turns a gate of the gates file
// (or a list of scenarios) into scenario runs and benchmarks, runs them
// with progress callbacks, judges them, builds the report model
// (reports.Run) and writes the reports; it also re-judges a saved run
// offline. This is where a check's result becomes a row of report.html:
// scenarioModel maps a scenario run's results into the model, Run.Judge
// evaluates the gate's criteria over it.
//
// The command line (cmd/harness) keeps flags, printing and progress bars;
// imports flow cmd → gate → scenarios, bench → chaos, impl, reports →
// internal.
package gate

import (
	"fmt"
	"slices"
	"time"

	"github.com/gonogo/harness/bench"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/inputfile"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/scenarios"
	"github.com/gonogo/harness/scenarios/check"
	"github.com/gonogo/harness/target"
)

// Job is one scenario run: a spec against a profile, under a name in the
// report model and a directory in the run's report directory.
type Job struct {
	Spec    scenarios.Spec
	Profile string
	Name    string // the scenario's name, or <scenario>.<profile> when several profiles run
	Dir     string // <scenario>-<profile>
}

// Plan is one gate run, validated: what it runs, how it is judged, where
// the report goes. ForGate or ForScenarios fill Gate, Jobs and the
// benchmarks from the other fields.
type Plan struct {
	Gate reports.Gate
	// GatesFile is the gates file's text, saved with the run; nil for the
	// scenarios pseudo-gate.
	GatesFile []byte
	Jobs      []Job
	// Benches are the bench ops to run (with the single profile), Load
	// the load they are driven with (the gates file's bench_load).
	Benches []string
	Load    bench.Load
	// Sweeps are the gate's sweeps, each run with Load.
	Sweeps []bench.Sweep
	// Profiles are the profiles under test; Registry the registered ones
	// (a profile it does not hold, an external implementation's, takes
	// every spec).
	Profiles []string
	Registry *impl.Profiles
	Seed     int64
	// ReportDir is where the run's report directory <run id>/ is made.
	ReportDir string
	// Bench is where the benchmarks get Redis.
	Bench BenchTarget
	// CostIdle is the cost benchmark's idle window (0: 30s).
	CostIdle time.Duration
	// Deps are the scenario engine's constructors.
	Deps *scenarios.Deps
	// CommandLine is recorded in the report (secrets masked there).
	CommandLine []string
	// Services are the services under test (passwords masked); nil for
	// in-process profiles.
	Services []string
}

// ScenariosGate names the gate of a run without a gate: every check of the
// selected scenarios passes.
const ScenariosGate = "scenarios"

// LoadGates reads the gates file (the shipped one when path is empty) and
// validates it against what the scenario catalogue and the benchmarks
// produce; it returns the gates and the catalogue's scenarios by name. Every
// error is bad input (exit 3) naming file:line.
func LoadGates(path string, k scenarios.Known) (reports.Gates, map[string]scenarios.Spec, error) {
	gs := reports.DefaultGates()
	if path != "" {
		var err error
		if gs, err = reports.LoadGates(path); err != nil {
			return gs, nil, err
		}
	}
	specs, err := scenarios.LoadAll(nil, k)
	if err != nil {
		return gs, nil, err
	}
	if err := gs.Validate(catalogue(specs).Has); err != nil {
		return gs, nil, err
	}
	byName := make(map[string]scenarios.Spec, len(specs))
	for _, s := range specs {
		byName[s.Name] = s
	}
	return gs, byName, nil
}

// catalogue is what gates may refer to: each scenario's checks (as listed
// in its file) and the metrics those checks produce (the checkers'
// catalogue, check.Metrics), and the benchmark ops.
func catalogue(specs []scenarios.Spec) reports.Catalogue {
	byCheck := map[string][]string{}
	for _, m := range check.Metrics {
		byCheck[m.Check] = append(byCheck[m.Check], m.Name)
	}
	cat := reports.Catalogue{Scenarios: map[string][]string{}, Checks: map[string][]string{}, Benchmarks: benchOps(), Sweeps: bench.SweepNames()}
	for _, s := range specs {
		cat.Scenarios[s.Name] = cat.Scenarios[s.Name]
		for _, c := range s.Checks {
			cat.Checks[s.Name] = append(cat.Checks[s.Name], c.Name)
			cat.Scenarios[s.Name] = append(cat.Scenarios[s.Name], byCheck[c.Name]...)
		}
	}
	return cat
}

// benchOps are the benchmark ops a gate may run and judge: every layer op,
// and sse_publish (the publish endpoint's HTTP round trip: the API response
// time), which the sse benchmark measures.
// The cost benchmark (reports.CostBench) measures and projects the cost
// of the tracker's traffic (harness cost).
func benchOps() []string {
	return append(slices.Clone(bench.LayerOps), bench.OpSSEPublish, reports.CostBench)
}

// benchSteps are the bench ops that produce the gate's benchmarks, in order,
// each once.
func benchSteps(ops []string) []string {
	var steps []string
	for _, op := range ops {
		if op == bench.OpSSEPublish {
			op = bench.OpSSE
		}
		if !slices.Contains(steps, op) {
			steps = append(steps, op)
		}
	}
	return steps
}

// ForGate plans the gate called name of the gates file (the shipped one
// when file is empty; validated against the catalogue first): its
// scenarios, for the plan's one profile, and its benchmarks with the file's
// load.
func (p *Plan) ForGate(name, file string, known scenarios.Known) error {
	gs, specs, err := LoadGates(file, known)
	if err != nil {
		return err
	}
	g, err := gs.Gate(name)
	if err != nil {
		return err
	}
	p.Gate = g
	p.GatesFile = reports.DefaultGatesYAML()
	if file != "" {
		if p.GatesFile, err = inputfile.Read(file, inputfile.MaxYAML); err != nil {
			return exitcode.Config(err)
		}
	}
	var sel []scenarios.Spec
	for _, s := range g.Scenarios {
		sel = append(sel, specs[s])
	}
	p.Jobs = p.jobsFor(sel)
	p.Benches = benchSteps(g.Benchmarks)
	p.Load = benchLoad(gs.BenchLoad)
	p.Sweeps = nil
	for _, s := range g.Sweeps {
		sw, err := bench.ParseSweep(s)
		if err != nil {
			return exitcode.Configf("gate %s: %w", g.Name, err)
		}
		p.Sweeps = append(p.Sweeps, sw)
	}
	return nil
}

// ForScenarios plans specs as a run without a gate: each spec against each
// profile it applies to, judged by the scenarios pseudo-gate.
func (p *Plan) ForScenarios(specs []scenarios.Spec) {
	p.Jobs = p.jobsFor(specs)
	p.Gate = scenarioGate(p.Jobs)
}

// benchLoad is the load a gates file's bench_load states (the shipped
// file's when l is nil), as the benchmarks take it.
func benchLoad(l *reports.BenchLoad) bench.Load {
	if l == nil {
		l = reports.DefaultGates().BenchLoad
	}
	secs := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	return bench.Load{Workers: l.Workers, Rate: l.Rate, Duration: secs(l.DurationS), Warmup: secs(l.WarmupS),
		LateAfter: secs(l.LateAfterMs / 1000), MaxMissed: l.MaxMissed}
}

// jobsFor is each spec run against each of the plan's profiles it applies
// to (a profile that is not registered, an external implementation's,
// takes every spec). With more than one profile a job's model name
// carries its profile.
func (p *Plan) jobsFor(specs []scenarios.Spec) []Job {
	var jobs []Job
	for _, s := range specs {
		for _, prof := range p.Profiles {
			if !slices.Contains(s.Profiles, prof) && slices.Contains(p.Registry.Names(), prof) {
				continue
			}
			name := s.Name
			if len(p.Profiles) > 1 {
				name += "." + prof
			}
			jobs = append(jobs, Job{Spec: s, Profile: prof, Name: name, Dir: s.Name + "-" + prof})
		}
	}
	return jobs
}

// BenchTarget is where a gate run's benchmarks get Redis: the target kind
// (process: a redis-server of their own; remote-sim: with RTT; url: URL, a
// secret).
type BenchTarget struct {
	Kind target.Kind
	URL  string
	RTT  time.Duration
}

// config is the benchmarks' configuration for one profile, the ops steps
// and the load; a target kind the benchmarks do not support is an error.
func (t BenchTarget) config(profile string, reg *impl.Profiles, steps []string, load bench.Load) (bench.Config, error) {
	cfg := bench.Config{Target: t.Kind, Layers: reg, Profiles: []string{profile}, Ops: steps, Load: load}
	switch t.Kind {
	case target.KindProcess:
	case target.KindRemoteSim:
		cfg.RTT = t.RTT
	case target.KindURL:
		cfg.URL = t.URL
	default:
		return cfg, fmt.Errorf("benchmarks do not run on a %s target", t.Kind)
	}
	return cfg, nil
}

// scenarioGate is the gate of a run without a gate: every check of every
// scenario run must pass (report-only checks excepted). Its criteria are
// named <scenario>.<check>.
func scenarioGate(jobs []Job) reports.Gate {
	g := reports.Gate{Name: ScenariosGate, Description: "every check of the selected scenarios passes (no --gate given)"}
	for _, j := range jobs {
		g.Scenarios = append(g.Scenarios, j.Name)
		for _, c := range j.Spec.Checks {
			if c.ReportOnly {
				continue
			}
			g.Criteria = append(g.Criteria, reports.Criterion{
				ID: j.Name + "." + c.Name, Metric: "check:" + j.Name + ":" + c.Name,
				Aggregation: reports.AggValue, Comparator: "==", Bound: 1, Why: guaranteeOf(c.Name),
			})
		}
	}
	return g
}

// guaranteeOf is the text of the guarantee the check named name judges: its
// checker's answer on an empty history.
func guaranteeOf(name string) string {
	if fn, ok := check.Lookup(name); ok {
		return fn(history.History{}, check.Config{}).Guarantee
	}
	return "check " + name + " passes"
}
