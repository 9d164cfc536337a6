package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gonogo/harness/bench"
	"github.com/gonogo/harness/gate"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/inputfile"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/scenarios"
)

const reportSynopsis = `report <run dir> [--gates FILE]
       report --compare <old run dir> <new run dir>
       report merge [--json] <shard file or dir>…`

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
	asJSON := fs.Bool("json", false, "report merge: print the merged result as JSON")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return 0, err
	}
	switch {
	case len(pos) > 0 && pos[0] == "merge":
		return mergeShares(pos[1:], *asJSON, e)
	case *asJSON:
		return 0, exitcode.Configf("--json is for report merge")
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
		if r, err := reports.LoadRun(dir); err == nil && r.Gate == reports.SweepGate && *gatesFile == "" {
			return rerenderSweep(dir, r, e)
		}
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

// mergeShares merges the shares `harness bench --shard … --shard-out DIR`
// wrote (files, or directories whose shard-*.json it reads) into one
// result and prints it. Exit 0, or 2 when a merged row is inconclusive.
func mergeShares(paths []string, asJSON bool, e env) (int, error) {
	if len(paths) == 0 {
		return 0, exitcode.Configf("report merge needs the shares' files or directories")
	}
	var files []bench.ShardFile
	for _, p := range paths {
		names := []string{p}
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			if names, err = filepath.Glob(filepath.Join(p, "shard-*.json")); err != nil || len(names) == 0 {
				return 0, exitcode.Configf("report merge: %s holds no shard-*.json", p)
			}
		}
		for _, name := range names {
			data, err := inputfile.Read(name, inputfile.MaxReport)
			if err != nil {
				return 0, exitcode.Config(err)
			}
			f, err := bench.ParseShardFile(name, data)
			if err != nil {
				return 0, exitcode.Config(err)
			}
			files = append(files, f)
		}
	}
	if len(files) > 1000 {
		return 0, exitcode.Configf("report merge: %d shard files; at most 1000", len(files))
	}
	rep, err := bench.Merge(files)
	if err != nil {
		return 0, exitcode.Config(err)
	}
	if asJSON {
		if err := rep.WriteJSON(e.stdout); err != nil {
			return 0, exitcode.Harness(err)
		}
	} else {
		rep.WriteTable(e.stdout)
	}
	if rep.Inconclusive() {
		return exitcode.Inconclusive, nil
	}
	return exitcode.Go, nil
}

// rerenderSweep judges a saved sweep run against the design's promises
// again and re-renders its reports in place.
func rerenderSweep(dir string, r reports.Run, e env) (int, error) {
	r = reports.PromiseRun(r)
	out, err := reports.Write(filepath.Dir(filepath.Clean(dir)), r)
	if err != nil {
		return 0, exitcode.Harness(err)
	}
	printCriteria(e.stdout, r)
	fmt.Fprintf(e.stdout, "\n%s\nreport: %s\n", reports.Headline(r), filepath.Join(out, reports.ReportHTML))
	return r.Verdict.ExitCode(), nil
}
