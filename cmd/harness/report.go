package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/inputfile"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/scenarios"
)

var errNoRuns = errors.New("no saved run (history.json with scenario.yaml) in the directory or its subdirectories")

const reportSynopsis = `report <run dir> [--gates FILE]
       report --compare <old run dir> <new run dir>`

// runReport works offline on saved runs. On a run directory written by
// `harness run` (it holds report.json) it re-judges every saved scenario
// history, judges the gate again (with the gates file saved with the run,
// or --gates), re-renders the four reports in place and exits with the
// verdict's code. On a directory of scenario runs without report.json it
// prints their re-judged verdicts. With --compare it prints what changed
// from one run to another (exit 0).
func runReport(_ context.Context, args []string, e env) (int, error) {
	fs := newFlags("report", reportSynopsis, e)
	compare := fs.Bool("compare", false, "print the trend from the first run directory to the second")
	gatesFile := fs.String("gates", "", "re-judge with this gates file (default: the one saved with the run)")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return 0, err
	}
	switch {
	case *compare && len(pos) != 2:
		return 0, exitcode.Configf("report --compare needs two run directories, the old and the new")
	case *compare:
		return compareRuns(pos[0], pos[1], e)
	case len(pos) == 0:
		return 0, usageErr(fs, exitcode.Configf("report needs a run directory"))
	case len(pos) > 1:
		return 0, usageErr(fs, exitcode.Configf("unexpected argument %q", pos[1]))
	}
	dir := pos[0]
	if _, err := os.Stat(filepath.Join(dir, reports.ReportJSON)); err == nil {
		return rerender(dir, *gatesFile, e)
	}
	if *gatesFile != "" {
		return 0, exitcode.Configf("%s: --gates needs a run directory with %s", dir, reports.ReportJSON)
	}
	dirs, err := savedRuns(dir)
	if err != nil {
		return 0, err
	}
	known := scenarios.DefaultKnown(profiles.Default())
	var outcomes []scenarios.Outcome
	for _, d := range dirs {
		o, _, _, err := rejudge(d, known)
		if err != nil {
			return 0, err
		}
		outcomes = append(outcomes, o)
	}
	printTable(e.stdout, outcomes, true)
	return outcomesVerdict(outcomes).ExitCode(), nil
}

// parseWithArgs parses flags that may come before, between or after the
// positional arguments, which it returns.
func parseWithArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// rerender re-judges the run in dir from its saved histories and writes
// its reports again.
func rerender(dir, gatesFile string, e env) (int, error) {
	run, err := reports.LoadRun(dir)
	if err != nil {
		return 0, exitcode.Config(err)
	}
	dir = filepath.Clean(dir)
	if base := filepath.Base(dir); base != run.ID {
		if !reports.IsRunID(base) {
			return 0, exitcode.Configf("%s: directory name is not a run id (want %s)", dir, run.ID)
		}
		run.ID = base
	}
	known := scenarios.DefaultKnown(profiles.Default())
	dirs, err := savedRuns(dir)
	if err != nil && !errors.Is(err, errNoRuns) {
		return 0, err
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
			return 0, err
		}
		runs = append(runs, saved{o, spec, h})
		profs[o.Profile] = true
	}
	var jobs []job
	var outcomes []scenarios.Outcome
	for _, sv := range runs {
		j := job{spec: sv.spec, profile: sv.o.Profile, name: sv.spec.Name}
		if len(profs) > 1 {
			j.name += "." + j.profile
		}
		s, an := scenarioModel(j.name, sv.o, sv.h)
		run.Scenarios = replaceScenario(run.Scenarios, s)
		run.Anomalies = append(slices.DeleteFunc(run.Anomalies, func(a reports.Anomaly) bool { return a.Scenario == j.name }), an...)
		jobs = append(jobs, j)
		outcomes = append(outcomes, sv.o)
	}
	g, err := rejudgeGate(run.Gate, dir, gatesFile, jobs, known)
	if err != nil {
		return 0, err
	}
	out, err := judgeAndWrite(&run, g, filepath.Dir(dir), nil)
	if err != nil {
		return 0, err
	}
	printTable(e.stdout, outcomes, false)
	printCriteria(e.stdout, run)
	fmt.Fprintf(e.stdout, "\n%s\nreport: %s\n", reports.Headline(run), filepath.Join(out, reports.ReportHTML))
	return run.Verdict.ExitCode(), nil
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
// in the shipped gates file; a run without --gate gets its scenarios
// pseudo-gate back.
func rejudgeGate(name, dir, gatesFile string, jobs []job, known scenarios.Known) (reports.Gate, error) {
	if gatesFile == "" && name == pseudoGate {
		return scenarioGate(jobs), nil
	}
	if gatesFile == "" {
		if _, err := os.Stat(filepath.Join(dir, gatesYAML)); err == nil {
			gatesFile = filepath.Join(dir, gatesYAML)
		}
	}
	gs, _, err := loadGates(gatesFile, known)
	if err != nil {
		return reports.Gate{}, err
	}
	return gs.Gate(name)
}

// compareRuns prints the trend from the run in oldDir to the one in newDir.
func compareRuns(oldDir, newDir string, e env) (int, error) {
	old, err := reports.LoadRun(oldDir)
	if err != nil {
		return 0, exitcode.Config(err)
	}
	cur, err := reports.LoadRun(newDir)
	if err != nil {
		return 0, exitcode.Config(err)
	}
	fmt.Fprintf(e.stdout, "old %s: %s\nnew %s: %s\n\n", old.ID, reports.Headline(old), cur.ID, reports.Headline(cur))
	if _, err := e.stdout.Write(reports.TrendMarkdown(reports.Compare(old, cur))); err != nil {
		return 0, exitcode.Harness(err)
	}
	return exitcode.Go, nil
}

// savedRuns lists dir itself when it holds a saved run, else its
// subdirectories that do.
func savedRuns(dir string) ([]string, error) {
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
		return nil, exitcode.Configf("%s: %w", dir, errNoRuns)
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
	o = scenarios.Outcome{Scenario: spec.Name, Profile: h.Meta["profile"], Results: res, Verdict: scenarios.Fold(res), Dir: dir, Started: h.Base, Elapsed: h.End}
	fmt.Sscan(h.Meta["seed"], &o.Seed)
	return o, spec, h, nil
}

func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}
