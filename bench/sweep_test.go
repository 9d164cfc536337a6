package bench

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/reports"
)

func TestParseSweep(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int64
		err  string
	}{
		{in: "members=10,100,1k,10k", want: []int64{10, 100, 1000, 10000}},
		{in: "sse_clients=1000, 10", want: []int64{10, 1000}},
		{in: "outage_s=10,600", want: []int64{10, 600}},
		{in: "members", err: "NAME=v1"},
		{in: "nodes=1,2", err: "unknown parameter"},
		{in: "members=10", err: "2 to 20"},
		{in: "members=10,x", err: "not an integer"},
		{in: "members=0,10", err: "out of range"},
		{in: "members=10,200k", err: "out of range"},
		{in: "event_bytes=10,100", err: "out of range"},
		{in: "outage_s=10,3601", err: "out of range"},
		{in: "flows=5,5", err: "given twice"},
		{in: "flows=" + strings.Repeat("1,", 21) + "1", err: "given twice"},
	} {
		got, err := ParseSweep(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: err %v; want one saying %q", tc.in, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.err == "" && !slices.Equal(got.Values, tc.want):
			t.Errorf("%q: values %v; want %v", tc.in, got.Values, tc.want)
		}
	}
}

func TestSweepConfigMistakesAreBadInput(t *testing.T) {
	sw := func(p string, v ...int64) *Sweep { return &Sweep{Param: p, Values: v} }
	for name, cfg := range map[string]Config{
		"outage on a url target": {Target: "url", URL: "redis://127.0.0.1:1/0", Sweep: sw(SweepOutage, 1, 2)},
		"descending":             {Sweep: sw(SweepMembers, 100, 10)},
		"one value":              {Sweep: sw(SweepMembers, 10)},
		"unknown":                {Sweep: sw("nodes", 1, 2)},
		"auto shard without run": {Shard: &Shard{Index: -1, Count: 2}},
		"bad shard run name":     {Shard: &Shard{Count: 2}, ShardRun: "a b"},
		"outage sharded":         {Sweep: sw(SweepOutage, 1, 2), Shard: &Shard{Count: 2}},
	} {
		cfg.Layers, cfg.Profiles = profiles.Default(), []string{"hardened"}
		if _, err := Run(context.Background(), cfg); exitcode.Of(err) != exitcode.BadInput {
			t.Errorf("%s: err %v; want bad input", name, err)
		}
	}
}

// sweepRows are the rows of op in the report, in point order, per profile.
func sweepRows(rep *Report, op, profile string) []Result {
	var out []Result
	for _, r := range rep.Results {
		if r.Op == op && r.Profile == profile && r.Point != nil {
			out = append(out, r)
		}
	}
	return out
}

// The seed's lookup costs 1 + N round trips (N EXISTS), the hardened one
// one: the sweep shows it, and the design's promise (flat) judges the
// seed NO-GO and the hardened profile GO.
func TestSweepMembersJudgesSeedNoGoHardenedGo(t *testing.T) {
	rep, err := Run(context.Background(), Config{Layers: profiles.Default(), Profiles: []string{"seed", "hardened"},
		Sweep: &Sweep{Param: SweepMembers, Values: []int64{2, 32}}, Load: Load{Workers: 2, Ops: 40}})
	if err != nil {
		t.Fatal(err)
	}
	for profile, rt := range map[string]func(n int64) float64{
		"seed":     func(n int64) float64 { return float64(1 + n) },
		"hardened": func(int64) float64 { return 1 },
	} {
		rows := sweepRows(rep, OpRegLookup, profile)
		if len(rows) != 2 {
			t.Fatalf("%s: %d rows; want one per point", profile, len(rows))
		}
		for _, r := range rows {
			if r.Errors > 0 || r.Inconclusive != "" {
				t.Errorf("%s @%d: %d errors (%s), %q", profile, *r.Point, r.Errors, r.FirstErr, r.Inconclusive)
			}
			if want := rt(*r.Point); r.RoundTripsPerOp != want {
				t.Errorf("%s @%d: %.2f round trips per lookup; want %.0f", profile, *r.Point, r.RoundTripsPerOp, want)
			}
			if r.Process == nil || r.Process.RSSBytes <= 0 || r.Process.FDs <= 0 {
				t.Errorf("%s @%d: process footprint %+v; want RSS and fds", profile, *r.Point, r.Process)
			}
		}
	}
	run := reports.PromiseRun(reports.Run{Sweeps: rep.Sweeps()})
	if run.Verdict != verdict.NoGo {
		t.Errorf("verdict %s; want NO-GO (the seed's lookup grows)", run.Verdict)
	}
	for _, c := range run.Criteria {
		want := verdict.Pass
		if strings.HasPrefix(c.Criterion.ID, "seed.") {
			want = verdict.Fail
		}
		if c.Verdict != want {
			t.Errorf("%s: %s (%s); want %s", c.Criterion.ID, c.Verdict, c.Reason, want)
		}
	}
	var b strings.Builder
	rep.WriteTable(&b)
	if !strings.Contains(b.String(), "reg_lookup @32") || !strings.Contains(b.String(), "WORSE THAN PROMISED") {
		t.Errorf("table lacks the sweep's rows or its flag:\n%s", b.String())
	}
}

// An outage longer than the outbox holds: the hardened layer refuses what
// it cannot hold (the overflow policy), counts it, never holds more than
// the cap, and replays the rest once Redis is back.
func TestSweepOutageAppliesTheOverflowPolicy(t *testing.T) {
	lead, tail := outageLead, outageTail
	outageLead, outageTail = 200*time.Millisecond, 300*time.Millisecond
	t.Cleanup(func() { outageLead, outageTail = lead, tail })
	const rate, capacity = 200, 150
	rep, err := Run(context.Background(), Config{Layers: profiles.Default(), Profiles: []string{"hardened"}, OutboxCap: capacity,
		Sweep: &Sweep{Param: SweepOutage, Values: []int64{1, 2}}, Load: Load{Workers: 8, Rate: rate}})
	if err != nil {
		t.Fatal(err)
	}
	rows := sweepRows(rep, OpPublish, "hardened")
	if len(rows) != 2 {
		t.Fatalf("%d rows; want 2", len(rows))
	}
	var prevOverflow int64
	for _, r := range rows {
		o := r.Outage
		if o == nil {
			t.Fatalf("@%d: no outage stats", *r.Point)
		}
		if o.OutboxPeak > capacity || o.OutboxPeak < capacity/2 {
			t.Errorf("@%d: outbox peak %d; want up to the cap %d", *r.Point, o.OutboxPeak, capacity)
		}
		if o.Overflow <= prevOverflow/2 || r.Errors != o.Overflow {
			t.Errorf("@%d: %d refused by the full outbox, %d publish errors; want them equal and growing with the outage", *r.Point, o.Overflow, r.Errors)
		}
		if o.DrainedMs < 0 || o.Replayed < int64(o.OutboxPeak) {
			t.Errorf("@%d: drained after %.0f ms, %d replayed; want the outbox replayed", *r.Point, o.DrainedMs, o.Replayed)
		}
		if o.PeakRSSBytes <= 0 {
			t.Errorf("@%d: no peak RSS", *r.Point)
		}
		prevOverflow = o.Overflow
	}
}

// The sse_clients sweep is tested through the CLI, with its instance
// process (cmd/harness TestBenchSweepSSEInstanceProcess).
func TestSweepEventBytes(t *testing.T) {
	rep, err := Run(context.Background(), Config{Layers: profiles.Default(), Profiles: []string{"hardened"},
		Sweep: &Sweep{Param: SweepEventBytes, Values: []int64{100, 8000}}, Load: Load{Workers: 2, Ops: 50}})
	if err != nil {
		t.Fatal(err)
	}
	rows := sweepRows(rep, OpPublish, "hardened")
	if len(rows) != 2 || rows[1].BytesOutPerOp-rows[0].BytesOutPerOp < 7000 {
		t.Errorf("bytes out per publish %v; want about 7,900 more at 8,000-byte events", []float64{rows[0].BytesOutPerOp, rows[1].BytesOutPerOp})
	}
	var p benchPayload
	if err := json.Unmarshal(paddedEvent("r", "f", Call{}, padding(1000)).Payload, &p); err != nil || p.Sent == 0 {
		t.Errorf("padded payload is not the bench payload: %v", err)
	}
	if n := len(paddedEvent("r", "f", Call{Worker: 12, Seq: 345}, padding(1000)).Payload); n < 950 || n > 1050 {
		t.Errorf("a 1000-byte event's payload is %d bytes", n)
	}
}

func TestFlowIndexSpreadsEvenly(t *testing.T) {
	const workers, flows = 3, 4
	seen := map[int]int{}
	for seq := int64(0); seq < 8; seq++ {
		for w := 0; w < workers; w++ {
			seen[flowIndex(Call{Worker: w, Seq: seq}, workers, flows)]++
		}
	}
	// 24 calls over 4 flows: 6 each.
	for f := 0; f < flows; f++ {
		if seen[f] != 6 {
			t.Errorf("flow %d: %d of 24 calls; want 6 (%v)", f, seen[f], seen)
		}
	}
}

func TestInconclusiveFromKeepsTimingOnlyWhileEveryReasonIs(t *testing.T) {
	late := Result{Inconclusive: "missed its rate", TimingOnly: true}
	memory := Result{Inconclusive: "fell back to memory"}
	var r Result
	r.inconclusiveFrom(Result{}, "")
	r.inconclusiveFrom(late, "share 0/2: ")
	if r.Inconclusive != "share 0/2: missed its rate" || !r.TimingOnly {
		t.Errorf("after a late row: %q, timing only %v", r.Inconclusive, r.TimingOnly)
	}
	r.inconclusiveFrom(memory, "")
	if r.Inconclusive != "share 0/2: missed its rate" || r.TimingOnly {
		t.Errorf("after a memory-mode row: %q, timing only %v; want the first reason, not timing only", r.Inconclusive, r.TimingOnly)
	}
}
