package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gonogo/harness/internal/exitcode"
)

// harness cost on a spawned redis-server: seed's costs measured (its
// publish three commands, sent and executed) and projected under the plan
// asked for; a plan or target it cannot use is bad input.
func TestCostCommand(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	code, stdout, stderr := call(t, nil, "cost", "--profile", "seed", "--idle", "1s", "--ops", "5", "--plan", "upstash-free", "--json")
	if code != exitcode.Go {
		t.Fatalf("exit %d; stderr %s", code, stderr)
	}
	var r struct {
		Costs []struct {
			Profile string             `json:"profile"`
			Client  map[string]float64 `json:"client_per_op"`
			Server  map[string]float64 `json:"server_per_op"`
		} `json:"costs"`
		Projections []struct {
			Plan     string  `json:"plan"`
			Basis    string  `json:"basis"`
			PerMonth float64 `json:"commands_per_month"`
			Quota    string  `json:"quota"`
		} `json:"projections"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if len(r.Costs) != 1 || r.Costs[0].Client["publish"] != 3 || r.Costs[0].Server["publish"] < 2.5 || len(r.Projections) != 1 {
		t.Fatalf("costs %+v, projections %+v; want seed's publish at 3 commands, one projection", r.Costs, r.Projections)
	}
	if p := r.Projections[0]; p.Plan != "upstash-free" || p.Basis != "server" || p.PerMonth <= 0 || !strings.HasPrefix(p.Quota, "runs out after") {
		t.Errorf("projection %+v; want upstash-free, server basis, its 500K quota running out", p)
	}
	for _, args := range [][]string{{"cost", "--plan", "nope"}, {"cost", "--target", "url"}, {"cost", "--profile", "nope", "--idle", "1s"}} {
		if code, _, stderr := call(t, nil, args...); code != exitcode.BadInput || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want bad input, one line", args, code, stderr)
		}
	}
}
