package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/scenarios"
)

var errNoRuns = errors.New("no saved run (history.json with scenario.yaml) in the directory or its subdirectories")

// runReport re-judges saved runs offline: for each scenario directory under
// dir (or dir itself) it loads history.json and scenario.yaml, applies the
// checks again and prints the verdict table. No Redis is needed.
func runReport(ctx context.Context, args []string, e env) (int, error) {
	fs := newFlags("report", "report <run dir>", e)
	if len(args) == 0 {
		fs.Usage()
		return 0, exitcode.Configf("report needs a run directory")
	}
	dir, rest := args[0], args[1:]
	if err := parse(fs, rest); err != nil {
		return 0, err
	}
	dirs, err := savedRuns(dir)
	if err != nil {
		return 0, err
	}
	known := scenarios.DefaultKnown(profiles.Default())
	var outcomes []scenarios.Outcome
	for _, d := range dirs {
		o, err := rejudge(d, known)
		if err != nil {
			return 0, err
		}
		outcomes = append(outcomes, o)
	}
	printTable(e.stdout, outcomes)
	return verdictCode(outcomes), nil
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
func rejudge(dir string, known scenarios.Known) (scenarios.Outcome, error) {
	h, err := history.Load(filepath.Join(dir, "history.json"))
	if err != nil {
		return scenarios.Outcome{}, exitcode.Config(err)
	}
	src, err := os.ReadFile(filepath.Join(dir, "scenario.yaml"))
	if err != nil {
		return scenarios.Outcome{}, exitcode.Config(err)
	}
	spec, err := scenarios.Parse(filepath.Join(dir, "scenario.yaml"), src, known)
	if err != nil {
		return scenarios.Outcome{}, err
	}
	res, err := scenarios.Judge(h, spec)
	if err != nil {
		return scenarios.Outcome{}, err
	}
	o := scenarios.Outcome{Scenario: spec.Name, Profile: h.Meta["profile"], Results: res, Verdict: scenarios.Verdict(res), Dir: dir, Started: h.Base, Elapsed: h.End}
	fmt.Sscan(h.Meta["seed"], &o.Seed)
	return o, nil
}

func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}
