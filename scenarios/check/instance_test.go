package check

import (
	"errors"
	"testing"

	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
)

// exitOp is instance inst ending (how: ExitStop or ExitKill) at t, with
// exit status 0 when ok, and what it logged.
func exitOp(inst, how string, t float64, ok bool, log ...string) history.Op {
	o := history.Op{Client: "engine", Kind: history.InstanceExit, Instance: inst, Value: how, Call: s(t), Return: s(t + 0.05), OK: ok, Values: log}
	if !ok {
		o.Err = "exit status 1"
	}
	return o
}

func rssOp(inst string, t float64, bytes int64) history.Op {
	return history.Op{Client: "engine", Kind: history.RSS, Instance: inst, Count: bytes, Call: s(t), Return: s(t), OK: true}
}

// on is a publish acknowledged by inst.
func on(inst string, o history.Op) history.Op {
	o.Value = inst
	return o
}

func TestAnnounced(t *testing.T) {
	tests := []struct {
		name string
		exit history.Op
		n    int
		said bool
	}{
		{"hardened's close error", exitOp("i", ExitStop, 1, false, `level=ERROR msg="closing the layer" err="hardened: closed with acknowledged events not written to Redis: 12 events lost"`), 12, true},
		{"key=value", exitOp("i", ExitStop, 1, false, "level=ERROR msg=close unwritten=7"), 7, true},
		{"largest count", exitOp("i", ExitStop, 1, false, "3 events not written", "9 acknowledged events not written"), 9, true},
		{"exit 0 says nothing", exitOp("i", ExitStop, 1, true, "12 events lost"), 0, false},
		{"non-zero without a count", exitOp("i", ExitStop, 1, false, "shutdown: context deadline exceeded"), 0, false},
	}
	for _, tt := range tests {
		n, said := Announced(tt.exit)
		if n != tt.n || said != tt.said {
			t.Errorf("%s: Announced = %d, %v; want %d, %v", tt.name, n, said, tt.n, tt.said)
		}
	}
}

// stopHistory: inst-1 acknowledges e1..e3 before it stops at 2 s, e4 after
// its restart; the final read at 5 s holds what kept lists.
func stopHistory(how string, exit history.Op, kept ...string) history.History {
	exit.Value = how
	return hist(nil,
		on("inst-1", pub("p", "f", 1, 0.5, 0.51, true)),
		on("inst-1", pub("p", "f", 2, 1.0, 1.01, true)),
		on("inst-1", pub("p", "f", 3, 1.9, 1.91, true)),
		on("inst-0", pub("q", "f", 1, 2.1, 2.11, true)),
		on("inst-1", pub("p", "f", 4, 3.0, 3.01, true)),
		exit,
		rd("f", 5, kept...),
	)
}

func TestAckedOnStop(t *testing.T) {
	all := []string{"p-1", "p-2", "p-3", "q-1", "p-4"}
	tests := []struct {
		name    string
		exit    history.Op
		kept    []string
		want    verdict.Verdict
		metrics map[string]float64
	}{
		{"nothing lost", exitOp("inst-1", "", 2, true), all, verdict.Pass, map[string]float64{"stop_acked": 3, "stop_lost": 0}},
		{"silent loss", exitOp("inst-1", "", 2, true), []string{"p-1", "q-1", "p-4"}, verdict.Fail, map[string]float64{"stop_lost": 2, "stop_silent": 2}},
		{"announced loss", exitOp("inst-1", "", 2, false, "2 events lost"), []string{"p-1", "q-1", "p-4"}, verdict.Pass, map[string]float64{"stop_lost": 2, "stop_announced": 2, "stop_silent": 0}},
		{"under-announced", exitOp("inst-1", "", 2, false, "1 events lost"), []string{"p-1", "q-1", "p-4"}, verdict.Fail, map[string]float64{"stop_lost": 2, "stop_silent": 1}},
		{"non-zero, no count", exitOp("inst-1", "", 2, false, "bye"), []string{"p-1", "q-1", "p-4"}, verdict.Fail, map[string]float64{"stop_silent": 2}},
		// An event acknowledged after the restart is not the stop's to judge.
		{"loss after the restart", exitOp("inst-1", "", 2, true), []string{"p-1", "p-2", "p-3", "q-1"}, verdict.Pass, map[string]float64{"stop_lost": 0}},
	}
	for _, tt := range tests {
		r := AckedOnStop(stopHistory(ExitStop, tt.exit, tt.kept...), Config{})
		if r.Verdict != tt.want {
			t.Errorf("%s: %s (%v); want %s", tt.name, r.Verdict, r.Err, tt.want)
		}
		if tt.want == verdict.Fail && !errors.Is(r.Err, ErrStopLost) {
			t.Errorf("%s: %v; want %v", tt.name, r.Err, ErrStopLost)
		}
		for k, v := range tt.metrics {
			if r.Metrics[k] != v {
				t.Errorf("%s: %s = %g; want %g", tt.name, k, r.Metrics[k], v)
			}
		}
	}
	if r := AckedOnStop(stopHistory(ExitKill, exitOp("inst-1", "", 2, false)), Config{}); r.Verdict != verdict.Inconclusive || !errors.Is(r.Err, ErrNoData) {
		t.Errorf("a kill only: %s (%v); want INCONCLUSIVE, no data", r.Verdict, r.Err)
	}
	// p-2 and p-3 acknowledged with the event bus off (a rollback): memory
	// only by design, not the stop's to keep.
	rolled := stopHistory(ExitStop, exitOp("inst-1", "", 2, true), "p-1", "q-1", "p-4")
	rolled.Faults = []history.Fault{{Name: FlagFault, Params: map[string]string{"event_bus": "false"}, Start: s(0.8), End: s(2.05)}}
	if r := AckedOnStop(rolled, Config{}); r.Verdict != verdict.Pass || r.Metrics["stop_acked"] != 1 {
		t.Errorf("loss of what a rollback acknowledged from memory: %s (%v), %g judged; want PASS, 1 judged", r.Verdict, r.Err, r.Metrics["stop_acked"])
	}
	rolled.Faults[0].Params = map[string]string{"cache": "false"}
	if r := AckedOnStop(rolled, Config{}); r.Verdict != verdict.Fail {
		t.Errorf("the same loss in a rollback of the cache only: %s; want FAIL", r.Verdict)
	}
	early := stopHistory(ExitStop, exitOp("inst-1", "", 2, true), all...)
	early.Ops[len(early.Ops)-1] = rd("f", 1.5, all...)
	if r := AckedOnStop(early, Config{}); r.Verdict != verdict.Inconclusive {
		t.Errorf("final read before the stop: %s (%v); want INCONCLUSIVE", r.Verdict, r.Err)
	}
}

func TestLostOnCrash(t *testing.T) {
	r := LostOnCrash(stopHistory(ExitKill, exitOp("inst-1", "", 2, false), "p-1", "q-1", "p-4"), Config{})
	if r.Verdict != verdict.Pass || r.Metrics["lost_on_crash"] != 2 || r.Metrics["crash_acked"] != 3 {
		t.Errorf("LostOnCrash = %s %v; want PASS (a measurement) with lost_on_crash 2 of crash_acked 3", r.Verdict, r.Metrics)
	}
	if r := LostOnCrash(stopHistory(ExitStop, exitOp("inst-1", "", 2, true)), Config{}); r.Verdict != verdict.Inconclusive {
		t.Errorf("a stop only: %s; want INCONCLUSIVE", r.Verdict)
	}
}

func TestMemory(t *testing.T) {
	h := hist(nil, rssOp("inst-0", 1, 20<<20), rssOp("inst-1", 1, 25<<20), rssOp("inst-0", 2, 90<<20), rssOp("inst-0", 3, 60<<20))
	r := Memory(h, Config{})
	if r.Verdict != verdict.Pass || r.Metrics["rss_max_mib"] != 90 || r.Metrics["rss_growth_mib"] != 70 || r.Metrics["rss_samples"] != 4 {
		t.Errorf("Memory = %s %v; want rss_max_mib 90, rss_growth_mib 70, 4 samples", r.Verdict, r.Metrics)
	}
	if r := Memory(hist(nil), Config{}); r.Verdict != verdict.Inconclusive {
		t.Errorf("no samples: %s; want INCONCLUSIVE", r.Verdict)
	}
}
