package explore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// predicate judges: the checker fails iff f says so. Each records what it
// was asked.
type fakeJudge struct {
	fails func(s Scenario) bool
	runs  int
	// outcomes are the judged verdicts per scenario hash, in order.
	outcomes map[string][]bool
}

func (j *fakeJudge) judge(_ context.Context, s Scenario) (Outcome, error) {
	j.runs++
	ok := j.fails(s)
	if j.outcomes == nil {
		j.outcomes = map[string][]bool{}
	}
	j.outcomes[s.Hash()] = append(j.outcomes[s.Hash()], ok)
	return Outcome{Failed: ok, Error: "fake"}, nil
}

func hasFault(s Scenario, kind string, minFor time.Duration) bool {
	return slices.ContainsFunc(s.Faults, func(f Fault) bool {
		return f.Fault == kind && time.Duration(f.end(s.Workload.Duration)-f.At) >= minFor
	})
}

// TestShrinkKeepsFailing: over many generated scenarios and a judge that
// fails a scenario with a down fault of at least 300ms and publishing,
// every shrink returns a scenario that still fails, valid, and no larger
// than the one it started from: down alone, at most 5 s of workload.
func TestShrinkKeepsFailing(t *testing.T) {
	e := testEngine()
	fails := func(s Scenario) bool {
		return hasFault(s, "down", 300*time.Millisecond) && s.Workload.Publish != nil
	}
	g := Generator{Faults: []string{"down", "latency", "kill", "quota", "flapping", "instance_pause"}}
	shrunk := 0
	for i := 0; i < 300 && shrunk < 40; i++ {
		s := g.Generate(11, i)
		if !fails(s) || len(s.Checks) == 0 {
			continue
		}
		shrunk++
		j := &fakeJudge{fails: fails}
		sh := Shrinker{Judge: j.judge, Valid: e.Validate, Confirm: 2, MaxRuns: 500}
		res := sh.Shrink(context.Background(), s, s.Checks[0].Name, Outcome{Failed: true})
		m := res.Minimal
		if res.Flaky || res.Partial {
			t.Fatalf("scenario %d: flaky %v partial %v with a deterministic judge", i, res.Flaky, res.Partial)
		}
		if !fails(m) {
			t.Fatalf("scenario %d: the shrink returned a scenario that does not fail:\n%s", i, m.YAML())
		}
		if err := e.Validate(m); err != nil {
			t.Fatalf("scenario %d: minimal does not validate: %v\n%s", i, err, m.YAML())
		}
		if len(m.Faults) != 1 || m.Faults[0].Fault != "down" {
			t.Errorf("scenario %d: minimal faults %v; want down alone", i, m.FaultKinds())
		}
		if d := time.Duration(m.Workload.Duration); d > 5*time.Second || d > time.Duration(s.Workload.Duration) {
			t.Errorf("scenario %d: minimal workload %s (from %s); want at most 5s and no longer", i, d, s.Workload.Duration)
		}
		if len(m.Checks) != 1 || m.Checks[0].Name != s.Checks[0].Name {
			t.Errorf("scenario %d: minimal checks %v; want %s alone", i, m.Checks, s.Checks[0].Name)
		}
		if m.Workload.Cache != nil || m.Workload.SSE != nil || m.Workload.Registry != nil {
			t.Errorf("scenario %d: minimal keeps traffic the judge does not need:\n%s", i, m.YAML())
		}
		if res.Runs != j.runs {
			t.Errorf("scenario %d: %d runs reported, %d made", i, res.Runs, j.runs)
		}
	}
	if shrunk < 10 {
		t.Fatalf("only %d generated scenarios failed the judge; the test needs more", shrunk)
	}
}

// TestShrinkFlaky: a failure that does not repeat is reported flaky, as
// found, and never as minimal.
func TestShrinkFlaky(t *testing.T) {
	e := testEngine()
	s := Generator{Faults: []string{"down"}}.Generate(1, 0)
	j := &fakeJudge{fails: func(Scenario) bool { return false }}
	res := Shrinker{Judge: j.judge, Valid: e.Validate, Confirm: 3}.Shrink(context.Background(), s, "lost", Outcome{Failed: true})
	if !res.Flaky || res.Reproduced != 1 || res.Tries != 2 || res.Steps != 0 {
		t.Errorf("got flaky %v, %d of %d, %d steps; want flaky, 1 of 2 (stopped at the first pass), 0 steps", res.Flaky, res.Reproduced, res.Tries, res.Steps)
	}
	if res.Minimal.Hash() != narrow(s, "lost").Hash() {
		t.Errorf("a flaky failure came back changed:\n%s", res.Minimal.YAML())
	}
}

// TestShrinkRandomJudge: with a judge that fails at random, whatever the
// shrink returns as not flaky failed its last Confirm runs.
func TestShrinkRandomJudge(t *testing.T) {
	e := testEngine()
	for seed := uint64(0); seed < 30; seed++ {
		r := rand.New(rand.NewPCG(seed, 1))
		j := &fakeJudge{fails: func(Scenario) bool { return r.IntN(10) < 8 }}
		s := Generator{}.Generate(int64(seed), 3)
		res := Shrinker{Judge: j.judge, Valid: e.Validate, Confirm: 3, MaxRuns: 200}.Shrink(context.Background(), s, s.Checks[0].Name, Outcome{Failed: true})
		if res.Flaky {
			continue
		}
		got := j.outcomes[res.Minimal.Hash()]
		if res.Steps == 0 {
			// The found run counts as one of the Confirm.
			got = append([]bool{true}, got...)
		}
		if len(got) < 3 || slices.Contains(got[len(got)-3:], false) {
			t.Errorf("seed %d: minimal's runs %v; want its last 3 failing", seed, got)
		}
	}
}

// TestShrinkBounded: the run bound and the deadline stop a shrink, marked
// partial, with a scenario that failed.
func TestShrinkBounded(t *testing.T) {
	e := testEngine()
	s := Generator{Faults: []string{"down", "latency"}, MaxFaults: 4}.Generate(5, 2)
	always := func(Scenario) bool { return true }
	for _, sh := range []Shrinker{{MaxRuns: 3}, {Deadline: time.Now().Add(-time.Second)}} {
		j := &fakeJudge{fails: always}
		sh.Judge, sh.Valid = j.judge, e.Validate
		res := sh.Shrink(context.Background(), s, s.Checks[0].Name, Outcome{Failed: true})
		if !res.Partial || res.Flaky {
			t.Errorf("%+v: partial %v flaky %v; want partial", sh, res.Partial, res.Flaky)
		}
		if j.runs > 3 {
			t.Errorf("%d runs; want at most 3", j.runs)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	j := &fakeJudge{fails: always}
	res := Shrinker{Judge: j.judge, Valid: e.Validate}.Shrink(ctx, s, s.Checks[0].Name, Outcome{Failed: true})
	if !res.Partial || j.runs != 0 {
		t.Errorf("cancelled: partial %v after %d runs; want partial, no run", res.Partial, j.runs)
	}
}

func ExampleShrinker() {
	s := Generator{Faults: []string{"down", "latency"}}.Generate(2, 0)
	j := &fakeJudge{fails: func(s Scenario) bool { return hasFault(s, "down", 0) }}
	res := Shrinker{Judge: j.judge, Valid: testEngine().Validate}.Shrink(context.Background(), s, s.Checks[0].Name, Outcome{Failed: true})
	fmt.Println(res.Minimal.FaultKinds(), res.Flaky)
	// Output: [down] false
}
