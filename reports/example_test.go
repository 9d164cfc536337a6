package reports_test

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/reports"
)

// A gate run, end to end: pick the gate, record what was measured, judge,
// compare with the previous run and write the four renderings.
func Example() {
	gate, err := reports.DefaultGates().Gate("local")
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 11, 28, 20, 15, 0, 0, time.UTC)
	run := reports.Run{
		ID:          reports.NewRunID(start),
		Started:     start,
		Finished:    start.Add(time.Minute),
		Environment: reports.Environment{TargetKind: "process", TargetURL: "redis://:s3cret@127.0.0.1:6390", Profile: "seed"},
		Scenarios: []reports.Scenario{
			{Name: "basic", Verdict: verdict.Pass, Checks: []reports.Check{
				{Name: "health", Guarantee: 8, Verdict: verdict.Pass},
				{Name: "error_rate", Verdict: verdict.Pass, Metrics: map[string]float64{"error_rate_before": 0}},
				{Name: "lost", Guarantee: 2, Verdict: verdict.Pass, Metrics: map[string]float64{"lost": 0}},
				{Name: "budget", Guarantee: 1, Verdict: verdict.Pass, Metrics: map[string]float64{"over_budget": 0}},
			}},
			{Name: "pool_exhaustion", Verdict: verdict.Pass, Checks: []reports.Check{
				{Name: "budget", Guarantee: 1, Verdict: verdict.Pass, Metrics: map[string]float64{"over_budget": 0}},
				{Name: "lost", Guarantee: 2, Verdict: verdict.Pass, Metrics: map[string]float64{"lost": 0}},
			}},
			{Name: "startup_down", Verdict: verdict.Fail, Checks: []reports.Check{
				{Name: "fallback_time", Guarantee: 1, Verdict: verdict.Fail,
					Error:    "after a fault starts, operations must succeed again within the fallback bound",
					Evidence: []string{"fault down started at 0.000s: first success never, 120 calls over the next 2s"}},
				{Name: "health", Guarantee: 8, Verdict: verdict.Pass},
			}},
			{Name: "rollback", Verdict: verdict.Pass, Checks: []reports.Check{
				{Name: "error_rate", Verdict: verdict.Pass, Metrics: map[string]float64{"error_rate_before": 0}},
				{Name: "lost", Guarantee: 2, Verdict: verdict.Pass, Metrics: map[string]float64{"lost": 0}},
				{Name: "delivery", Guarantee: 4, Verdict: verdict.Pass, Metrics: map[string]float64{"delivery_lost": 0}},
			}},
			{Name: "rollback_instances", Verdict: verdict.Pass, Checks: []reports.Check{
				{Name: "stale_read", Guarantee: 6, Verdict: verdict.Pass},
			}},
			{Name: "rollback_restart", Verdict: verdict.Pass, Checks: []reports.Check{
				{Name: "stale_read", Guarantee: 6, Verdict: verdict.Pass},
			}},
		},
	}
	run.Judge(gate)

	dir, err := os.MkdirTemp("", "reports")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if prev, ok, err := reports.Previous(dir, run); err == nil && ok {
		t := reports.Compare(prev, run)
		run.Trend = &t
	}
	out, err := reports.Write(dir, run)
	if err != nil {
		panic(err)
	}
	summary, _ := os.ReadFile(out + "/" + reports.SummaryMD)
	line, _, _ := bytes.Cut(summary, []byte("\n"))
	fmt.Println(string(line))
	fmt.Println("exit code", run.Verdict.ExitCode())
	// Output:
	// # NO-GO — local gate (1 of 13 criteria failed)
	// exit code 1
}
