package reports

import (
	"strings"
	"testing"

	"github.com/gonogo/harness/internal/verdict"
)

const costGates = `version: 1
gates:
  g:
    description: a gate
    benchmarks: [cost]
    criteria:
      - {id: idle, metric: "cost:idle_commands_per_sec", aggregation: value, comparator: "<=", bound: 0.05, why: idle}
      - {id: conns, metric: "cost:connections_idle", aggregation: value, comparator: "<=", bound: 15, why: conns}
      - {id: days, metric: "cost:days_to_quota", aggregation: value, comparator: ">=", bound: 30, why: quota}
      - {id: share, metric: "cost:connections_share", aggregation: value, comparator: "<=", bound: 1, why: cap}
`

// The cost benchmark's fields are judged for the run's profile under the
// gate's plan; what the plan does not state (a connection cap) is
// INCONCLUSIVE, never PASS.
func TestCostCriteria(t *testing.T) {
	gs, err := ParseGates("g.yaml", []byte(costGates))
	if err != nil {
		t.Fatal(err)
	}
	if err := gs.Validate(Catalogue{Benchmarks: []string{CostBench}}.Has); err != nil {
		t.Fatal(err)
	}
	five, idle, days := 5.0, 12, 2.5
	cost := &Cost{Traffic: "t", Plan: "free", Profiles: []CostProfile{
		{Profile: "seed", PublishClient: 3, IdlePerSec: 0},
		{Profile: "hardened", PublishClient: 1, PublishServer: &five, IdlePerSec: 0.2, ConnectionsIdle: &idle}},
		Rows: []CostRow{{Profile: "hardened", Plan: "payg", CommandsPerMonth: 1, Quota: "none", ConnectionCap: 30},
			{Profile: "hardened", Plan: "free", CommandsPerMonth: 2e6, Quota: "runs out after 2.5 days", DaysToQuota: &days, Connections: &idle}}}
	r := Run{Environment: Environment{Profile: "hardened"}, Cost: cost}
	r.Judge(gs.Gates[0])
	want := map[string]verdict.Verdict{"idle": verdict.Fail, "conns": verdict.Pass, "days": verdict.Fail, "share": verdict.Inconclusive}
	for _, c := range r.Criteria {
		if c.Verdict != want[c.Criterion.ID] {
			t.Errorf("%s: %s (measured %v, %s); want %s", c.Criterion.ID, c.Verdict, c.Measured, c.Reason, want[c.Criterion.ID])
		}
	}
	if r.Verdict != verdict.NoGo {
		t.Errorf("verdict %s; want NO-GO", r.Verdict)
	}
	md, html := string(Markdown(r)), string(HTML(r))
	for _, s := range []string{"## Cost", "runs out after 2.5 days", "| hardened | 1 | 5 | 0.2 |"} {
		if !strings.Contains(md, s) {
			t.Errorf("summary.md lacks %q:\n%s", s, md)
		}
	}
	if !strings.Contains(html, "<h2>Cost</h2>") || !strings.Contains(html, "runs out after 2.5 days") {
		t.Error("report.html lacks the cost section")
	}
	// Without the cost benchmark every cost criterion is INCONCLUSIVE.
	r = Run{Environment: Environment{Profile: "hardened"}}
	r.Judge(gs.Gates[0])
	for _, c := range r.Criteria {
		if c.Verdict != verdict.Inconclusive || !strings.Contains(c.Reason, "did not run") {
			t.Errorf("no cost: %s %s (%s); want INCONCLUSIVE", c.Criterion.ID, c.Verdict, c.Reason)
		}
	}
	bad := strings.Replace(costGates, "cost:connections_idle", "cost:nope", 1)
	if _, err := ParseGates("g.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), `unknown cost field "nope"`) {
		t.Errorf("unknown cost field: %v", err)
	}
}

// A run whose scenarios ran on several targets is remote only if every
// one was (the upstash-sim scenarios of a remote-sim run).
func TestRemoteKinds(t *testing.T) {
	for kind, want := range map[string]bool{"remote-sim+upstash-sim": true, "upstash-sim": true, "url": true,
		"process+upstash-sim": false, "process": false, "": false} {
		if got := (Environment{TargetKind: kind}).Remote(); got != want {
			t.Errorf("Remote(%q) = %v; want %v", kind, got, want)
		}
	}
}
