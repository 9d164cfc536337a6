package check_test

import (
	"errors"
	"fmt"

	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/scenarios/check"
)

// errPublishFailed is the guarantee the example checker judges; its text
// states it.
var errPublishFailed = errors.New("every publish call succeeds")

// noFailedPublish is a checker of one's own: a pure function of the
// history that names the guarantee it judges, its verdict, the evidence and
// the metrics it measured.
func noFailedPublish(h history.History, _ check.Config) check.Result {
	r := check.Result{Check: "no_failed_publish", Guarantee: errPublishFailed.Error(), Metrics: map[string]float64{}}
	failed, calls := 0, 0
	for _, o := range h.Ops {
		if o.Kind != history.Publish {
			continue
		}
		calls++
		if !o.OK {
			failed++
			r.Evidence = append(r.Evidence, fmt.Sprintf("publish of %s/%s failed at %s", o.Flow, o.EventID, o.Return))
		}
	}
	r.Metrics["publish_failed"] = float64(failed)
	switch {
	case calls == 0:
		r.Verdict, r.Err = verdict.Inconclusive, fmt.Errorf("%w: no publish", check.ErrNoData)
	case failed > 0:
		r.Verdict, r.Err = verdict.Fail, fmt.Errorf("%w: %d of %d failed", errPublishFailed, failed, calls)
	default:
		r.Verdict = verdict.Pass
	}
	return r
}

// Adding a checker: an entry of check.Checks (with the number of the
// guarantee it judges, 0 for none) makes it a check a scenario file can
// list and Run runs; its metrics go in the Metrics catalogue so that
// thresholds and gates may name them.
func Example_addChecker() {
	check.Checks = append(check.Checks, check.Check{Name: "no_failed_publish", Func: noFailedPublish})
	defer func() { check.Checks = check.Checks[:len(check.Checks)-1] }()

	h := exampleHistory()
	results, err := check.Run(h, []string{"no_failed_publish"}, check.Config{})
	fmt.Println(results[0].Verdict, err)
	h.Ops = append(h.Ops, history.Op{Client: "p0", Kind: history.Publish, Flow: "f1", EventID: "p0-4", Seq: 4, Call: 2_500_000_000, Return: 2_550_000_000})
	results, _ = check.Run(h, []string{"no_failed_publish"}, check.Config{})
	fmt.Println(results[0].Verdict, results[0].Err)
	fmt.Println(results[0].Evidence)
	// Output:
	// PASS <nil>
	// FAIL every publish call succeeds: 1 of 4 failed
	// [publish of f1/p0-4 failed at 2.55s]
}

// The events a checker found wrong are data as well as evidence lines:
// the report lists them without reading the sentences.
func ExampleResult_anomalies() {
	results, _ := check.Run(exampleHistory(), []string{"lost"}, check.Config{})
	for _, a := range results[0].Anomalies {
		fmt.Printf("%s %s: %s at %s; expected %s, seen %s\n", a.Kind, a.ID, a.Op, a.At, a.Expected, a.Seen)
	}
	// Output:
	// lost f1/p0-2: Redis stream (the harness's own read) at 2.9s; expected present: acknowledged at 1.520s (seq 2, during fault kill), seen missing
}
