package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gonogo/harness/internal/exitcode"
)

// TestUnknownMetricIsBadInput: a criterion on a metric nothing produces is
// exit 3 naming file:line, before any traffic (no run directory).
func TestUnknownMetricIsBadInput(t *testing.T) {
	out := t.TempDir()
	for _, args := range [][]string{
		{"run", "--gate", "bad", "--gates", "testdata/bad_gates.yaml", "--report-dir", out},
		{"gates", "list", "--gates", "testdata/bad_gates.yaml"},
	} {
		code, _, errs := call(t, nil, args...)
		if code != exitcode.BadInput {
			t.Errorf("%v: exit %d; want %d (%s)", args, code, exitcode.BadInput, errs)
		}
		if !regexp.MustCompile(`bad_gates\.yaml:8: criterion invented: no scenario or benchmark produces metric "scenario:basic:acked_lost"`).MatchString(errs) {
			t.Errorf("%v: stderr %q; want it to name bad_gates.yaml:8 and the metric", args, errs)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("report dir has %d entries; want none (nothing may run)", len(entries))
	}
}

func TestGatesList(t *testing.T) {
	code, out, errs := call(t, nil, "gates", "list")
	if code != exitcode.Go {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"local (Day 3)", "eventbus (Day 6)", "production (Day 9)", "release (Day 12)",
		"api_p99", "p99(bench:sse_publish:latency_ms) < 200 ms", "publish_p90", "scenario:basic:cache_hit_rate > 80 %"} {
		if !strings.Contains(out, want) {
			t.Errorf("gates list lacks %q", want)
		}
	}
	code, out, _ = call(t, nil, "gates", "list", "--yaml")
	if code != exitcode.Go || !strings.HasPrefix(out, "# gonogo gates") {
		t.Errorf("gates list --yaml: exit %d, %.40q; want the gates file", code, out)
	}
	if code, _, errs := call(t, nil, "gates"); code != exitcode.BadInput || !strings.Contains(errs, "subcommand") {
		t.Errorf("gates without subcommand: exit %d %q; want 3", code, errs)
	}
}
