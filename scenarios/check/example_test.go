package check_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/scenarios/check"
)

// A run in which Redis was killed from 1s to 2s: p0-2, acknowledged during
// the outage, is in the layer's history read but missing from the flow's
// stream when the harness reads it from Redis itself.
func exampleHistory() history.History {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	return history.History{
		End:    ms(3000),
		Faults: []history.Fault{{Name: "kill", Start: ms(1000), End: ms(2000)}},
		Ops: []history.Op{
			{Client: "p0", Kind: history.Publish, Flow: "f1", EventID: "p0-1", Seq: 1, Call: ms(500), Return: ms(502), OK: true, Mode: "redis"},
			{Client: "p0", Kind: history.Publish, Flow: "f1", EventID: "p0-2", Seq: 2, Call: ms(1500), Return: ms(1520), OK: true, Mode: "memory"},
			{Client: "p0", Kind: history.Publish, Flow: "f1", EventID: "p0-3", Seq: 3, Call: ms(2200), Return: ms(2203), OK: true, Mode: "redis"},
			{Client: "reader", Kind: history.Read, Flow: "f1", Values: []string{"p0-1", "p0-2", "p0-3"}, Call: ms(2800), Return: ms(2805), OK: true},
			{Client: "harness", Kind: history.ServerRead, Flow: "f1", Values: []string{"p0-1", "p0-3"}, Call: ms(2900), Return: ms(2905), OK: true},
		},
	}
}

func ExampleRun() {
	results, err := check.Run(exampleHistory(), []string{"lost", "reordered", "fallback_time", "recover_time"}, check.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range results {
		fmt.Println(r.Check, r.Verdict)
		for _, e := range r.Evidence {
			fmt.Println("  ", e)
		}
	}
	fmt.Println(errors.Is(results[0].Err, check.ErrLost))
	// Output:
	// lost FAIL
	//    event f1/p0-2 (seq 2, during fault kill) acknowledged at 1.520s, missing from the Redis stream (the harness's own read) at 2.900s
	// reordered PASS
	// fallback_time PASS
	//    fault kill started at 1.000s: first successful call 520ms after (publish by p0 (flow f1, event p0-2) returned at 1.520s)
	// recover_time PASS
	//    fault kill ended at 2.000s: first call served from redis 203ms after (publish by p0 (flow f1, event p0-3) returned at 2.203s)
	// true
}

// With a minimum load before the fault that the run did not reach, nothing
// is judged.
func ExampleRun_lowLoad() {
	results, _ := check.Run(exampleHistory(), []string{"lost", "load"}, check.Config{MinRateBefore: 100})
	for _, r := range results {
		fmt.Println(r.Check, r.Verdict, errors.Is(r.Err, check.ErrLowLoad))
	}
	// Output:
	// lost INCONCLUSIVE true
	// load INCONCLUSIVE true
}

func ExampleRun_unknownCheck() {
	_, err := check.Run(history.History{}, []string{"lost", "speed"}, check.Config{})
	fmt.Println(exitcode.Of(err) == exitcode.BadInput)
	// Output:
	// true
}

func ExampleMetricNamed() {
	m, ok := check.MetricNamed("publish_p99_ms_during")
	fmt.Println(ok, m.Unit, m.Check)
	_, ok = check.MetricNamed("publish_p98_ms")
	fmt.Println(ok)
	// Output:
	// true ms latency
	// false
}

func ExamplePhase() {
	h := history.History{Faults: []history.Fault{
		{Name: "a", Start: 1 * time.Second, End: 3 * time.Second},
		{Name: "b", Start: 2 * time.Second, End: 4 * time.Second},
		{Name: "c", Start: 6 * time.Second, End: 7 * time.Second},
	}}
	for _, t := range []time.Duration{0, 2500 * time.Millisecond, 5 * time.Second, 8 * time.Second} {
		fmt.Println(t, check.Phase(h, t))
	}
	// Output:
	// 0s before
	// 2.5s during
	// 5s after
	// 8s after
}
