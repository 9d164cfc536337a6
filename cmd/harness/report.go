package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gonogo/harness/gate"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/scenarios"
)

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
	outcomes, err := gate.RejudgeScenarios(dir, scenarios.DefaultKnown(profiles.Default()))
	if err != nil {
		return 0, err
	}
	printTable(e.stdout, outcomes, true)
	return gate.Fold(outcomes).ExitCode(), nil
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

// rerender re-judges the run in dir from its saved histories, writes its
// reports again and prints the verdict.
func rerender(dir, gatesFile string, e env) (int, error) {
	res, err := gate.Rejudge(dir, gatesFile, scenarios.DefaultKnown(profiles.Default()))
	if err != nil {
		return 0, err
	}
	printTable(e.stdout, res.Outcomes, false)
	printCriteria(e.stdout, res.Run)
	fmt.Fprintf(e.stdout, "\n%s\nreport: %s\n", reports.Headline(res.Run), filepath.Join(res.Dir, reports.ReportHTML))
	return res.Run.Verdict.ExitCode(), nil
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
