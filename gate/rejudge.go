package gate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/inputfile"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/scenarios"
)

// ErrNoRuns is the error of a directory that holds no saved scenario run.
var ErrNoRuns = errors.New("no saved run (history.json with scenario.yaml) in the directory or its subdirectories")

// Rejudge re-judges the gate run saved in dir (written by Run: it holds
// report.json) from its saved histories: every saved scenario run is judged
// again and mapped into the model, the gate judged again (with gatesFile,
// else the gates file saved with the run, else the shipped one; a run
// without a gate gets its scenarios pseudo-gate back), and the reports are
// written again in place.
func Rejudge(dir, gatesFile string, known scenarios.Known) (Result, error) {
	run, err := reports.LoadRun(dir)
	if err != nil {
		return Result{}, exitcode.Config(err)
	}
	dir = filepath.Clean(dir)
	if base := filepath.Base(dir); base != run.ID {
		if !reports.IsRunID(base) {
			return Result{}, exitcode.Configf("%s: directory name is not a run id (want %s)", dir, run.ID)
		}
		run.ID = base
	}
	dirs, err := SavedRuns(dir)
	if err != nil && !errors.Is(err, ErrNoRuns) {
		return Result{}, err
	}
	type saved struct {
		o    scenarios.Outcome
		spec scenarios.Spec
		h    history.History
	}
	var runs []saved
	profs := map[string]bool{}
	for _, d := range dirs {
		o, spec, h, err := rejudge(d, known)
		if err != nil {
			return Result{}, err
		}
		runs = append(runs, saved{o, spec, h})
		profs[o.Profile] = true
	}
	var jobs []Job
	var res Result
	for _, sv := range runs {
		j := Job{Spec: sv.spec, Profile: sv.o.Profile, Name: sv.spec.Name}
		if len(profs) > 1 {
			j.Name += "." + j.Profile
		}
		s, an := scenarioModel(j.Name, sv.o, sv.h)
		run.Scenarios = replaceScenario(run.Scenarios, s)
		run.Anomalies = append(slices.DeleteFunc(run.Anomalies, func(a reports.Anomaly) bool { return a.Scenario == j.Name }), an...)
		jobs = append(jobs, j)
		res.Outcomes = append(res.Outcomes, sv.o)
	}
	g, err := rejudgeGate(run.Gate, dir, gatesFile, jobs, known)
	if err != nil {
		return Result{}, err
	}
	out, err := judgeAndWrite(&run, g, filepath.Dir(dir), nil)
	if err != nil {
		return Result{}, err
	}
	res.Run, res.Dir = run, out
	return res, nil
}

// RejudgeScenarios re-judges the saved scenario runs in dir (dir itself, or
// its subdirectories that hold one) from their histories.
func RejudgeScenarios(dir string, known scenarios.Known) ([]scenarios.Outcome, error) {
	dirs, err := SavedRuns(dir)
	if err != nil {
		return nil, err
	}
	var outcomes []scenarios.Outcome
	for _, d := range dirs {
		o, _, _, err := rejudge(d, known)
		if err != nil {
			return nil, err
		}
		outcomes = append(outcomes, o)
	}
	return outcomes, nil
}

// replaceScenario puts s in place of the scenario of the same name (keeping
// its duration), or at the end.
func replaceScenario(ss []reports.Scenario, s reports.Scenario) []reports.Scenario {
	for i := range ss {
		if ss[i].Name == s.Name {
			if ss[i].DurationMs > 0 { // the live run's, set-up and recovery included
				s.DurationMs = ss[i].DurationMs
			}
			ss[i] = s
			return ss
		}
	}
	return append(ss, s)
}

// rejudgeGate is the gate a saved run is judged with again: the one named
// name in the gates file given, else in the copy saved with the run, else
// in the shipped gates file; a run without a gate gets its scenarios
// pseudo-gate back.
func rejudgeGate(name, dir, gatesFile string, jobs []Job, known scenarios.Known) (reports.Gate, error) {
	if gatesFile == "" && name == ScenariosGate {
		return scenarioGate(jobs), nil
	}
	if gatesFile == "" {
		if _, err := os.Stat(filepath.Join(dir, GatesYAML)); err == nil {
			gatesFile = filepath.Join(dir, GatesYAML)
		}
	}
	gs, _, err := LoadGates(gatesFile, known)
	if err != nil {
		return reports.Gate{}, err
	}
	return gs.Gate(name)
}

// SavedRuns lists dir itself when it holds a saved scenario run, else its
// subdirectories that do; none is bad input wrapping ErrNoRuns.
func SavedRuns(dir string) ([]string, error) {
	if isRun(dir) {
		return []string{dir}, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, exitcode.Config(err)
	}
	var out []string
	for _, en := range entries {
		if d := filepath.Join(dir, en.Name()); en.IsDir() && isRun(d) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, exitcode.Configf("%s: %w", dir, ErrNoRuns)
	}
	sort.Strings(out)
	return out, nil
}

func isRun(dir string) bool {
	for _, f := range []string{"history.json", "scenario.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// rejudge applies a saved run's scenario checks to its saved history.
func rejudge(dir string, known scenarios.Known) (scenarios.Outcome, scenarios.Spec, history.History, error) {
	var o scenarios.Outcome
	h, err := history.Load(filepath.Join(dir, "history.json"))
	if err != nil {
		return o, scenarios.Spec{}, h, exitcode.Config(err)
	}
	src, err := inputfile.Read(filepath.Join(dir, "scenario.yaml"), inputfile.MaxYAML)
	if err != nil {
		return o, scenarios.Spec{}, h, exitcode.Config(err)
	}
	spec, err := scenarios.Parse(filepath.Join(dir, "scenario.yaml"), src, known)
	if err != nil {
		return o, spec, h, err
	}
	res, err := scenarios.Judge(h, spec)
	if err != nil {
		return o, spec, h, err
	}
	o = scenarios.Outcome{Scenario: spec.Name, Profile: h.Meta["profile"], Results: res, Verdict: scenarios.Fold(res), Dir: dir, Started: h.Base, Elapsed: h.End,
		Timing: spec.Timing().String(), Episodes: scenarios.EpisodePower(spec.Episodes)}
	fmt.Sscan(h.Meta["seed"], &o.Seed)
	return o, spec, h, nil
}
