package explore

import (
	"context"
	"errors"
	"io"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/scenarios"
)

// This file is explore's only contact with the scenario engine: validating
// a scenario file, running one and reading its checks' verdicts.

// Engine runs scenarios against one profile.
type Engine struct {
	profile string
	reg     *impl.Profiles
	deps    *scenarios.Deps
	known   scenarios.Known
	log     io.Writer
}

// NewEngine runs scenarios against profile, built from reg, with the
// engine's constructors deps (nil: the defaults); log receives the
// engine's verbose notes (nil: discarded).
func NewEngine(profile string, reg *impl.Profiles, deps *scenarios.Deps, log io.Writer) *Engine {
	return &Engine{profile: profile, reg: reg, deps: deps, known: scenarios.DefaultKnown(reg), log: log}
}

// Profile is the profile under test.
func (e *Engine) Profile() string { return e.profile }

// Faults lists the fault kinds scenario files may name.
func (e *Engine) Faults() []string { return e.known.Faults }

// Validate checks s as `harness run --scenario` checks a file.
func (e *Engine) Validate(s Scenario) error {
	_, err := scenarios.Parse(s.Name+".yaml", s.YAML(), e.known)
	return err
}

// Result is one check's verdict.
type Result struct {
	Check      string   `json:"check"`
	Verdict    string   `json:"verdict"`
	Error      string   `json:"error,omitempty"`
	Evidence   []string `json:"evidence,omitempty"`
	ReportOnly bool     `json:"report_only,omitempty"`
}

// Trial is one run of a scenario.
type Trial struct {
	Results []Result
	// Unavailable: the target could not offer what the scenario needs;
	// nothing ran and every check is INCONCLUSIVE.
	Unavailable bool
}

// Failed lists the checks that failed and decide the verdict.
func (t Trial) Failed() []Result {
	var out []Result
	for _, r := range t.Results {
		if r.Verdict == string(verdict.Fail) && !r.ReportOnly {
			out = append(out, r)
		}
	}
	return out
}

// Run runs s once with the workload seed seed, saving the run in dir
// ("": nothing saved). phase, when set, is told each phase of the run. An
// error is a run that could not be judged (bad input, harness failure,
// interrupted).
func (e *Engine) Run(ctx context.Context, s Scenario, seed int64, dir string, phase func(string)) (Trial, error) {
	spec, err := scenarios.Parse(s.Name+".yaml", s.YAML(), e.known)
	if err != nil {
		return Trial{}, err
	}
	o, err := scenarios.Run(ctx, spec, scenarios.Options{Profile: e.profile, Profiles: e.reg, Seed: seed, Dir: dir,
		Progress: phase, Log: e.log, Deps: e.deps})
	if err != nil {
		return Trial{}, err
	}
	var t Trial
	for _, r := range o.Results {
		t.Results = append(t.Results, Result{Check: r.Check, Verdict: string(r.Verdict), Error: r.Error,
			Evidence: r.Evidence, ReportOnly: r.ReportOnly})
		t.Unavailable = t.Unavailable || errors.Is(r.Err, scenarios.ErrUnavailable)
	}
	return t, nil
}
