package scenarios_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/explore"
	"github.com/gonogo/harness/scenarios"
)

// TestExploreMutants runs harness explore against each mutant of the
// mutation tests (profile "mutant", in-process: an instance process could
// not build it, so no instance faults) until the checker that catches it
// has failed and been shrunk (failures of other checkers, such as
// hardened's own known defects, are counted, not shrunk), and logs a table: time to find, runs needed,
// the minimal file's faults and length. A demonstration of minutes per
// mutant, not part of the default run: GONOGO_EXPLORE_MUTANTS=1 runs it
// (make explore-mutants), GONOGO_EXPLORE_BUDGET bounds each mutant
// (default 3m), GONOGO_EXPLORE_ONLY picks mutants by a pattern of their
// names, GONOGO_EXPLORE_OUT keeps the minimal files.
func TestExploreMutants(t *testing.T) {
	if os.Getenv("GONOGO_EXPLORE_MUTANTS") == "" {
		t.Skip("a demonstration of minutes per mutant: set GONOGO_EXPLORE_MUTANTS=1 (make explore-mutants)")
	}
	budget := 3 * time.Minute
	if v := os.Getenv("GONOGO_EXPLORE_BUDGET"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("GONOGO_EXPLORE_BUDGET %q: %v", v, err)
		}
		budget = d
	}
	// go-redis logs every failed dial of an outage.
	redis.SetLogger(quiet{})
	only := regexp.MustCompile(os.Getenv("GONOGO_EXPLORE_ONLY"))
	out := os.Getenv("GONOGO_EXPLORE_OUT")
	if out == "" {
		out = t.TempDir()
	}
	var faults []string
	for _, f := range explore.Generable() {
		if !strings.HasPrefix(f, "instance_") {
			faults = append(faults, f)
		}
	}
	rows := []string{"| mutant | checker | found after | runs needed | shrink runs | minimal: faults | workload | status |", "| --- | --- | --- | --- | --- | --- | --- | --- |"}
	for i, m := range scenarios.ExploreMutants {
		if !only.MatchString(m.Name) {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		var hit *explore.Failure
		eng := explore.NewEngine("mutant", m.Profiles(), nil, nil)
		sum, err := explore.Explore(ctx, explore.Options{
			Engine: eng, Generator: explore.Generator{Faults: faults}, Seed: int64(100 + i), Budget: budget, Checks: []string{m.Check},
			Out: filepath.Join(out, strings.ReplaceAll(m.Name, " ", "_")),
			Events: explore.Events{Found: func(f explore.Failure) {
				if f.Checker == m.Check && hit == nil {
					hit = &f
					cancel()
				}
			}},
		})
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if hit == nil {
			t.Errorf("%s: explore did not catch it on %s within %s (%d runs; other checks failed: %v)", m.Name, m.Check, budget, sum.Runs, sum.Ignored)
			rows = append(rows, fmt.Sprintf("| %s | %s | not within %s | %d | | | | |", m.Name, m.Check, budget, sum.Runs))
			continue
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %d | %d | %s | %s | %s |", m.Name, m.Check, hit.FoundAfter.Round(time.Second),
			hit.FoundAtRun+1, hit.ShrinkRuns, hit.FaultList(), hit.Duration, hit.Status()))
		t.Logf("%s: %s", m.Name, hit.File)
	}
	t.Log("\n" + strings.Join(rows, "\n"))
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
