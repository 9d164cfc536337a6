package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/seed"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/target"
)

func seedOnly() *impl.Profiles {
	p := &impl.Profiles{}
	p.Register(seed.Profile, seed.New)
	return p
}

func TestGuardStopsBeforeMax(t *testing.T) {
	p := startRedis(t)
	const max = 300
	guard := NewGuard(max)
	hook := counter.New()
	// Guard outermost: a refused command never reaches the counter.
	rdb := client(t, p, guard, hook)
	op, _ := rawOp(context.Background(), OpSet, rdb, "", 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer guard.OnExhaust(cancel)()
	st, err := Drive(ctx, op, Load{Workers: 4, Ops: 10000}, hook, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want the run cancelled by the guard", err)
	}
	if !guard.Exhausted() {
		t.Fatal("guard not exhausted")
	}
	var sent int64
	for _, c := range hook.Snapshot() {
		sent += c.Commands
	}
	if sent > max {
		t.Errorf("sent %d commands; want at most %d", sent, max)
	}
	if sent != guard.Used() {
		t.Errorf("server-bound commands %d != guard's reservations %d", sent, guard.Used())
	}
	if st.Ops >= 10000 || st.Ops == 0 {
		t.Errorf("ops %d; want the run stopped part-way", st.Ops)
	}
	// The server saw no more SETs than the budget either.
	stats := impl.ParseInfo(client(t, p).Info(context.Background(), "commandstats").Val())
	calls, _, _ := strings.Cut(strings.TrimPrefix(stats["cmdstat_set"], "calls="), ",")
	if n, err := strconv.Atoi(calls); err != nil || n > max || int64(n) < st.Ops {
		t.Errorf("server counted %q SET calls; want at least %d (the ops), at most %d", calls, st.Ops, max)
	}
}

func TestGuardPipelineIsAllOrNothing(t *testing.T) {
	p := startRedis(t)
	guard := NewGuard(5)
	hook := counter.New()
	rdb := client(t, p, guard, hook)
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil { // + connection set-up commands
		t.Fatal(err)
	}
	left := guard.Max() - guard.Used()
	pipe := rdb.Pipeline()
	for i := int64(0); i <= left; i++ {
		pipe.Incr(ctx, "n")
	}
	if _, err := pipe.Exec(ctx); !errors.Is(err, ErrBudget) {
		t.Fatalf("pipeline of %d with %d left: err = %v; want ErrBudget", left+1, left, err)
	}
	if n, _ := client(t, p).Get(ctx, "n").Int(); n != 0 {
		t.Errorf("n = %d after a refused pipeline; want 0 (nothing sent)", n)
	}
}

func TestRunBudgetBelowNeedIsBadInput(t *testing.T) {
	_, err := Run(context.Background(), Config{Preset: "baseline", MaxCommands: 50, Load: Load{Workers: 2, Ops: 1000}})
	if exitcode.Of(err) != exitcode.BadInput || !strings.Contains(err.Error(), "below the") {
		t.Fatalf("err = %v (exit %d); want exit 3 naming the budget", err, exitcode.Of(err))
	}
}

func TestRunWithinBudget(t *testing.T) {
	rep, err := Run(context.Background(), Config{Preset: "baseline", MaxCommands: 5000, Load: Load{Workers: 2, Ops: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	b := rep.Budget
	if b == nil || b.Exhausted || b.Used > b.Max || b.Estimated > b.Max || b.Estimated < 1000 {
		t.Fatalf("budget %+v; want estimated ≥ 1000 ops, used ≤ max, not exhausted", b)
	}
	if r := rep.Results[0]; r.Ops != 1000 || r.CommandsPerOp != 1 {
		t.Errorf("xadd row ops %d cmds/op %g; want 1000, 1", r.Ops, r.CommandsPerOp)
	}
	// XADD <key> * k v, and its reply: the stream ID as a bulk string
	// ($15 1764500000000-0 and the like: 22 or 23 bytes).
	if r := rep.Results[0]; r.BytesOutPerOp < 40 || r.BytesOutPerOp > 120 || r.BytesInPerOp < 21 || r.BytesInPerOp > 25 {
		t.Errorf("xadd row %.1f bytes out, %.1f in per op; want 40-120 and 21-25", r.BytesOutPerOp, r.BytesInPerOp)
	}
}

// Rounds repeat every step and are budgeted as such: three rounds of 1000
// ops need more than 3000 commands, and the one row carries three rounds.
func TestRunRoundsWithinBudget(t *testing.T) {
	_, err := Run(context.Background(), Config{Preset: "baseline", Rounds: 3, MaxCommands: 2500, Load: Load{Workers: 2, Ops: 1000}})
	if exitcode.Of(err) != exitcode.BadInput {
		t.Fatalf("3 rounds of 1000 ops under a 2500-command budget: err %v; want exit 3", err)
	}
	rep, err := Run(context.Background(), Config{Preset: "baseline", Rounds: 3, MaxCommands: 5000, Load: Load{Workers: 2, Ops: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || len(rep.Results[0].RoundsOpsPerSec) != 3 || rep.Results[0].Ops != 1000 {
		t.Fatalf("rows %+v; want one xadd row of 1000 ops with 3 rounds", rep.Results)
	}
	if b := rep.Budget; b.Estimated < 3000 || b.Used > b.Max {
		t.Errorf("budget %+v; want estimated ≥ 3000, used ≤ max", b)
	}
}

func TestRunBadInput(t *testing.T) {
	free, err := target.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative rate", Config{Preset: "baseline", Load: Load{Rate: -5}}, "rate"},
		{"negative duration", Config{Preset: "baseline", Load: Load{Duration: -time.Second}}, "duration"},
		{"negative rounds", Config{Preset: "baseline", Rounds: -1}, "rounds"},
		{"unknown target", Config{Target: "moon"}, "unknown target"},
		{"unknown preset", Config{Preset: "nope"}, "unknown preset"},
		{"unknown op", Config{Ops: []string{"frob"}}, "unknown op"},
		{"unknown profile", Config{Layers: seedOnly(), Profiles: []string{"nope"}, Ops: []string{OpPublish}}, "unknown profile"},
		{"url without url", Config{Target: target.KindURL}, "needs --url"},
		{"metered duration only", Config{Target: target.KindURL, URL: "redis://127.0.0.1:1", Preset: "baseline", Load: Load{Duration: time.Second}}, "known op count"},
		{"unreachable url", Config{Target: target.KindURL, URL: fmt.Sprintf("redis://:s3cret@127.0.0.1:%d/0", free), Preset: "baseline", Load: Load{Ops: 10}}, "unreachable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Run(context.Background(), c.cfg)
			if exitcode.Of(err) != exitcode.BadInput {
				t.Fatalf("err = %v (exit %d); want exit 3", err, exitcode.Of(err))
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") || strings.Contains(msg, "s3cret") {
				t.Errorf("error %q: want one line containing %q and no password", msg, c.want)
			}
		})
	}
}

func TestRunSeedProfileAccounting(t *testing.T) {
	rep, err := Run(context.Background(), Config{
		Layers: seedOnly(), Ops: []string{OpXAdd, OpPublish, OpCacheGet, OpRegLookup},
		Load: Load{Workers: 4, Ops: 200, WarmupOps: 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		profile string
		rt      float64
	}{
		OpXAdd:      {Raw, 1},
		OpPublish:   {seed.Profile, 3}, // XADD, EXPIRE, PUBLISH in sequence
		OpCacheGet:  {seed.Profile, 0}, // checked below: more than one
		OpRegLookup: {seed.Profile, 0},
	}
	if len(rep.Results) != len(want) {
		t.Fatalf("%d rows; want %d", len(rep.Results), len(want))
	}
	for _, r := range rep.Results {
		w, ok := want[r.Op]
		if !ok || r.Profile != w.profile {
			t.Errorf("unexpected row %s/%s", r.Op, r.Profile)
			continue
		}
		if r.Ops != 200 || r.Errors != 0 || r.Inconclusive != "" {
			t.Errorf("%s: ops %d errors %d (%s) inconclusive %q; want 200 clean ops", r.Op, r.Ops, r.Errors, r.FirstErr, r.Inconclusive)
		}
		if w.rt > 0 && (r.RoundTripsPerOp != w.rt || r.CommandsPerOp != w.rt) {
			t.Errorf("%s: %.2f round trips, %.2f commands per op; want %g and %g", r.Op, r.RoundTripsPerOp, r.CommandsPerOp, w.rt, w.rt)
		}
		if w.rt == 0 && r.RoundTripsPerOp <= 1 {
			t.Errorf("%s: %.2f round trips per op; the seed takes more than one", r.Op, r.RoundTripsPerOp)
		}
	}
	pub := rep.Results[1]
	if pub.Op != OpPublish || pub.Baseline != OpXAdd || pub.ThroughputVsB <= 0 {
		t.Errorf("publish row %s baseline %q ratio %g; want compared with xadd", pub.Op, pub.Baseline, pub.ThroughputVsB)
	}
	// Projected with what the server executed (the free plan's
	// script_commands is unknown: the conservative rule): 3 commands per
	// event, and a connection's set-up when the pool grew in the phase.
	if len(rep.Project) != 2 || rep.Project[1].Basis != "server" || rep.Project[1].CommandsPerOp < 3 || rep.Project[1].CommandsPerOp > 3.1 {
		t.Fatalf("projections %+v; want xadd and seed publish (3 server cmds/op)", rep.Project)
	}
	// 3 commands per event at 1 event/s: 259,200 a day, over the free plan.
	if p := rep.Project[1]; p.PerDay < 259200 || p.PerDay > 259200*1.034 || p.Warning == "" {
		t.Errorf("seed publish projection %+v; want 259200/day and a warning", p)
	}
}

func TestReportJSONShape(t *testing.T) {
	rep, err := Run(context.Background(), Config{Preset: "baseline", Load: Load{Workers: 2, Ops: 300}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Target  string `json:"target"`
		Kind    string `json:"target_kind"`
		Results []map[string]json.RawMessage
		Plan    Plan `json:"plan"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("JSON does not parse: %v", err)
	}
	if got.Kind != "process" || !strings.HasPrefix(got.Target, "redis://127.0.0.1:") || got.Plan.Name != UpstashFree.Name {
		t.Errorf("target %q kind %q plan %+v", got.Target, got.Kind, got.Plan)
	}
	if len(got.Results) != 1 {
		t.Fatalf("%d results; want 1", len(got.Results))
	}
	for _, k := range []string{"op", "profile", "ops_per_sec", "latency", "round_trips_per_op", "commands_per_op", "bytes_out_per_op", "bytes_in_per_op", "errors", "dials"} {
		if _, ok := got.Results[0][k]; !ok {
			t.Errorf("result lacks %q: %s", k, buf.String())
		}
	}
	var lat map[string]int64
	json.Unmarshal(got.Results[0]["latency"], &lat)
	for _, k := range []string{"p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"} {
		if lat[k] <= 0 {
			t.Errorf("latency.%s = %d; want > 0", k, lat[k])
		}
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	for _, want := range []string{"op", "ops/s", "p99.9 ms", "cmds/op", "xadd", "raw"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// TestSharedRoundTripsNote: a row with fewer round trips than ops says
// why (pipelines shared by ops in flight), one with one per op says nothing.
func TestSharedRoundTripsNote(t *testing.T) {
	rep := Report{Target: "redis://127.0.0.1:1/0", Kind: target.KindProcess, Results: []Result{
		{Op: OpPublish, Profile: "hardened", Ops: 100, RoundTripsPerOp: 0.25, CommandsPerOp: 1},
		{Op: OpXAdd, Profile: Raw, Ops: 100, RoundTripsPerOp: 1, CommandsPerOp: 1},
	}}
	var table bytes.Buffer
	rep.WriteTable(&table)
	if !strings.Contains(table.String(), "publish/hardened: 0.25 round trips per op: ops in flight together shared pipelines, and a shared round trip counts once") {
		t.Errorf("no shared-pipeline note for 0.25 round trips per op:\n%s", table.String())
	}
	if strings.Contains(table.String(), "xadd/raw: 1.00 round trips") {
		t.Errorf("a note for one round trip per op:\n%s", table.String())
	}
}

func TestProject(t *testing.T) {
	plan := Plan{Name: "p", CommandsPerMonth: 500_000, CommandsPerSec: 10_000}
	cases := []struct {
		rate, cmds             float64
		day, month, monthShare float64
		warn                   bool
	}{
		{rate: 1, cmds: 3, day: 259_200, month: 7_776_000, monthShare: 15.552, warn: true},
		{rate: 0.1, cmds: 1, day: 8640, month: 259_200, monthShare: 0.5184, warn: false},
		{rate: 0, cmds: 2, day: 0, month: 0, monthShare: 0, warn: false},
	}
	for _, c := range cases {
		p := Project("publish", "seed", c.rate, c.cmds, plan)
		if math.Abs(p.PerDay-c.day) > 1e-6 || math.Abs(p.PerMonth-c.month) > 1e-6 || math.Abs(p.MonthShare-c.monthShare) > 1e-9 {
			t.Errorf("Project(%g/s, %g) = day %g month %g share %g; want %g %g %g", c.rate, c.cmds, p.PerDay, p.PerMonth, p.MonthShare, c.day, c.month, c.monthShare)
		}
		if (p.Warning != "") != c.warn {
			t.Errorf("Project(%g/s, %g) warning %q; want warning=%v", c.rate, c.cmds, p.Warning, c.warn)
		}
	}
	// Per-second limit alone: no monthly allowance.
	if p := Project("x", "", 6000, 2, Plan{Name: "s", CommandsPerSec: 10_000}); p.SecShare != 1.2 || p.Warning == "" {
		t.Errorf("12000 cmds/s against 10K/s: share %g warning %q; want 1.2 and a warning", p.SecShare, p.Warning)
	}
	// The free plan allows 500K/(30×86400) ≈ 0.193 commands/s: 0.0643 events/s at 3 each.
	if r := MaxRate(3, plan); math.Abs(r-500_000.0/(30*86400)/3) > 1e-12 {
		t.Errorf("MaxRate(3) = %g", r)
	}
}

func TestPlannedOps(t *testing.T) {
	cases := []struct {
		l    Load
		want int64
	}{
		{Load{Ops: 100, WarmupOps: 10}, 110},
		{Load{Rate: 100, Duration: 2 * time.Second, Warmup: time.Second}, 300},
		{Load{Rate: 50, Ops: 100}, 100},
	}
	for _, c := range cases {
		if got := plannedOps(c.l); got != c.want {
			t.Errorf("plannedOps(%+v) = %d; want %d", c.l, got, c.want)
		}
	}
}

func TestParseBenchmarkCSV(t *testing.T) {
	out := []byte("\"test\",\"rps\",\"avg_latency_ms\"\n\"XADD s * k v\",\"4931.57\",\"6.674\"\n")
	if got, err := parseBenchmarkCSV(out); err != nil || got != 4931.57 {
		t.Errorf("parse = %g, %v; want 4931.57", got, err)
	}
	if _, err := parseBenchmarkCSV([]byte("garbage")); err == nil {
		t.Error("garbage parsed without error")
	}
}

func TestRunSSEDeliversEveryEventToEveryClient(t *testing.T) {
	rep, err := Run(context.Background(), Config{Layers: seedOnly(), Ops: []string{OpSSE}, SSEClients: 3,
		Load: Load{Workers: 2, Ops: 40}})
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]Result{}
	for _, r := range rep.Results {
		rows[r.Op] = r
	}
	pub, sse := rows[OpSSEPublish], rows[OpSSE]
	if pub.Ops != 40 || pub.Errors != 0 {
		t.Errorf("sse_publish ops %d errors %d (%s); want 40, 0", pub.Ops, pub.Errors, pub.FirstErr)
	}
	if sse.Expected != 120 || sse.Delivered != 120 || sse.Latency.Count != 120 || sse.Errors != 0 {
		t.Errorf("sse delivered %d of %d, %d latency samples, %d errors; want 120 of 120, 120, 0",
			sse.Delivered, sse.Expected, sse.Latency.Count, sse.Errors)
	}
}

// An inconclusive row gets no ratio against its baseline: a layer that fell
// back to memory must not show as many times faster than Redis.
func TestFinishSkipsInconclusiveRows(t *testing.T) {
	r := &Report{Results: []Result{
		{Op: OpXAdd, Profile: Raw, Ops: 100, OpsPerSec: 1000},
		{Op: OpXAddEvent, Profile: Raw, Ops: 100, OpsPerSec: 800},
		{Op: OpPublish, Profile: "hardened", Ops: 100, OpsPerSec: 12000, Inconclusive: "the layer fell back to memory"},
		{Op: OpPublish, Profile: "seed", Ops: 100, OpsPerSec: 400},
	}}
	r.finish([]string{"seed", "hardened"}, 1)
	if x := r.Results[2]; x.Baseline != "" || x.ThroughputVsB != 0 || x.Storage != "" {
		t.Errorf("inconclusive row: baseline %q ratio %g storage %q; want none", x.Baseline, x.ThroughputVsB, x.Storage)
	}
	if x := r.Results[3]; x.Baseline != OpXAdd || x.ThroughputVsB != 0.4 || x.Storage != OpXAddEvent || x.ThroughputVsStorage != 0.5 {
		t.Errorf("seed row: %s %g, %s %g; want xadd 0.4, xadd_event 0.5", x.Baseline, x.ThroughputVsB, x.Storage, x.ThroughputVsStorage)
	}
	if len(r.Compare) != 0 {
		t.Errorf("comparisons %+v; want none (hardened is inconclusive)", r.Compare)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.xs); got != c.want {
			t.Errorf("median(%v) = %g; want %g", c.xs, got, c.want)
		}
	}
	var e External
	e.addRun(100)
	e.addHarness(90)
	e.addRun(120)
	e.addHarness(60)
	e.addRun(80)
	if e.Median != 100 || e.Harness != 75 || e.Ratio != 0.75 {
		t.Errorf("median %g harness %g ratio %g; want 100, 75, 0.75", e.Median, e.Harness, e.Ratio)
	}
}

func TestClientProcs(t *testing.T) {
	none := func(string) string { return "" }
	set := func(k string) string {
		if k == "GOMAXPROCS" {
			return "2"
		}
		return ""
	}
	local := max(1, runtime.NumCPU()-1)
	for _, c := range []struct {
		cfg    Config
		getenv func(string) string
		want   int
	}{
		{Config{Target: target.KindProcess}, none, local},
		{Config{Target: target.KindRemoteSim}, none, local},
		{Config{Target: target.KindURL}, none, 0},
		{Config{Target: target.KindProcess}, set, 0},
		{Config{Target: target.KindURL, ClientProcs: 3}, set, 3},
	} {
		if got := c.cfg.clientProcs(c.getenv); got != c.want {
			t.Errorf("%s target, ClientProcs %d, GOMAXPROCS %q: %d; want %d", c.cfg.Target, c.cfg.ClientProcs, c.getenv("GOMAXPROCS"), got, c.want)
		}
	}
}

// TestRedisBenchmarkRounds: with rounds, redis-benchmark runs before each
// round's xadd and after the last, and the ratio is of the medians.
func TestRedisBenchmarkRounds(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	rep, err := Run(context.Background(), Config{
		Layers: seedOnly(), Ops: []string{OpXAdd}, Rounds: 2, RedisBenchmark: true,
		Load: Load{Workers: 4, Ops: 2000, WarmupOps: 100},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := rep.External
	if e == nil || len(e.OpsPerSec) != 3 || len(e.HarnessRuns) != 2 {
		t.Fatalf("redis_benchmark %+v; want 3 redis-benchmark runs and 2 harness rounds", e)
	}
	if e.Median != median(e.OpsPerSec) || e.Harness != median(e.HarnessRuns) || e.Ratio != e.Harness/e.Median || e.Ratio <= 0 {
		t.Errorf("medians and ratio do not follow the runs: %+v", e)
	}
	if rep.ClientProcs != max(1, runtime.NumCPU()-1) && os.Getenv("GOMAXPROCS") == "" {
		t.Errorf("client GOMAXPROCS %d on a process target with %d CPUs", rep.ClientProcs, runtime.NumCPU())
	}
	if after := runtime.GOMAXPROCS(0); after != before {
		t.Errorf("GOMAXPROCS %d after the run; want %d back", after, before)
	}
}
