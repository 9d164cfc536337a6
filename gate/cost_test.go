package gate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/bench"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/target"
)

// The cost benchmark measures the gate's profile on a redis-server of its
// own, projects under every shipped plan, saves cost.json, and on a
// target it cannot measure says why.
func TestRunCost(t *testing.T) {
	dir := t.TempDir()
	p := Plan{Bench: BenchTarget{Kind: target.KindProcess}, Registry: profiles.Default(), Profiles: []string{"seed"}, CostIdle: time.Second}
	var run reports.Run
	if err := p.runCost(context.Background(), &run, dir); err != nil {
		t.Fatal(err)
	}
	c := run.Cost
	if c == nil || c.Inconclusive != "" || len(c.Profiles) != 1 || c.Profiles[0].PublishClient != 3 || c.Profiles[0].ConnectionsIdle == nil {
		t.Fatalf("cost %+v; want seed measured (publish: 3 commands, connections counted)", c)
	}
	if len(c.Rows) != len(bench.Plans()) || c.Plan != bench.UpstashFree.Name {
		t.Errorf("%d rows under plan %s; want one per shipped plan (%d), judged under %s", len(c.Rows), c.Plan, len(bench.Plans()), bench.UpstashFree.Name)
	}
	if data, err := os.ReadFile(filepath.Join(dir, CostJSON)); err != nil || !strings.Contains(string(data), `"projections"`) {
		t.Errorf("cost.json: %v %.200s", err, data)
	}
	run = reports.Run{}
	p.Bench = BenchTarget{Kind: target.KindURL, URL: "redis://127.0.0.1:1"}
	if err := p.runCost(context.Background(), &run, dir); err != nil || run.Cost == nil || !strings.Contains(run.Cost.Inconclusive, "process or remote-sim") {
		t.Errorf("url target: %v, %+v; want inconclusive with the reason", err, run.Cost)
	}
}
