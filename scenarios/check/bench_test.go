package check

import (
	"fmt"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
)

// large is a 10 s run: n publishes over 10 flows, 2 subscribers per flow, a
// final read per flow, n/4 cache reads and n/20 registry lookups and counts
// over 10 connections, a stop and a kill of the two instances that
// acknowledged the publishes, recorded out of call order.
func large(n int) history.History {
	var ops []history.Op
	ids := map[string][]string{}
	step := 10 * time.Second / time.Duration(n)
	at := func(x int) time.Duration { return time.Duration(x) * step }
	for i := 0; i < n; i++ {
		flow := fmt.Sprintf("f%d", i%10)
		o := history.Op{Client: "p0", Kind: history.Publish, Flow: flow, EventID: fmt.Sprint(i), Seq: int64(i), Call: at(i), Return: at(i) + time.Millisecond, OK: true, Mode: "redis", Value: fmt.Sprintf("inst-%d", i%2)}
		ops = append(ops, o)
		ids[flow] = append(ids[flow], o.EventID)
		for sub := 0; sub < 2; sub++ {
			ops = append(ops, history.Op{Client: fmt.Sprintf("s%d-%s", sub, flow), Kind: history.Deliver, Flow: flow, EventID: o.EventID, Call: o.Call, Return: o.Call + 3*time.Millisecond, OK: true})
		}
	}
	for f := 0; f < 10; f++ {
		flow := fmt.Sprintf("f%d", f)
		for sub := 0; sub < 2; sub++ {
			ops = append(ops, history.Op{Client: fmt.Sprintf("s%d-%s", sub, flow), Kind: history.Subscribe, Flow: flow, Call: 0, Return: 11 * time.Second, OK: true})
		}
		ops = append(ops, history.Op{Client: "r", Kind: history.Read, Flow: flow, Values: ids[flow], Call: 10500 * time.Millisecond, Return: 10600 * time.Millisecond, OK: true},
			history.Op{Client: "harness", Kind: history.StreamInfo, Flow: flow, Count: int64(len(ids[flow])), Value: "86400000", Call: 10600 * time.Millisecond, Return: 10610 * time.Millisecond, OK: true})
		ops = append(ops, history.Op{Client: "r", Kind: history.RegRegister, Flow: flow, Value: "c" + flow, Call: 0, Return: time.Millisecond, OK: true})
	}
	for i := 0; i < n/4; i++ {
		flow := fmt.Sprintf("f%d", i%10)
		ops = append(ops, history.Op{Client: "w", Kind: history.CacheInval, Flow: flow, Version: int64(i), Call: at(2 * i), Return: at(2*i) + step/2, OK: true, Mode: "redis"},
			history.Op{Client: "c", Kind: history.CacheGet, Flow: flow, Version: int64(i), Call: at(2*i + 1), Return: at(2*i+1) + step/2, OK: true, Mode: "redis"})
	}
	for i := 0; i < n/20; i++ {
		flow := fmt.Sprintf("f%d", i%10)
		ops = append(ops, history.Op{Client: "i1", Kind: history.RegLookup, Flow: flow, Values: []string{"c" + flow}, Call: at(20 * i), Return: at(20*i) + step/2, OK: true, Mode: "redis"},
			history.Op{Client: "i1", Kind: history.RegCount, Value: "inst-1", Count: 10, Call: at(20*i) + step/2, Return: at(20*i) + step, OK: true, Mode: "redis"})
	}
	ops = append(ops, state("up", 0), history.Op{Client: "hc", Kind: history.Health, Value: "healthy", Call: 100 * time.Millisecond, Return: 101 * time.Millisecond, OK: true})
	ops = append(ops, exitOp("inst-0", ExitStop, 10.2, true), exitOp("inst-1", ExitKill, 10.3, false), rssOp("inst-0", 5, 30<<20))
	return withCounts(hist([]history.Fault{fault("latency", 4, 5)}, ops...))
}

func BenchmarkRun(b *testing.B) {
	h := large(20000)
	for b.Loop() {
		if _, err := Run(h, nil, Config{MinRateBefore: 100}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLargeHistory(t *testing.T) {
	rs, err := Run(large(2000), nil, Config{MinRateBefore: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Verdict != verdict.Pass {
			t.Errorf("%s: %s (%v, %q); want PASS", r.Check, r.Verdict, r.Err, r.Evidence)
		}
	}
}
