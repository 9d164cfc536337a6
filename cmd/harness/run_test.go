package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonogo/harness/internal/exitcode"
)

func TestRunBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: bad\nworkload:\n  duration: 2s\n  publish: {rate: 10}\nfaults:\n  - {at: 1s, for: 1s, fault: lightning}\nchecks:\n  - name: lost\n"), 0o644)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown scenario", []string{"run", "--scenario", "nope"}, `unknown scenario "nope"`},
		{"unknown fault names file and line", []string{"run", "--scenario", bad}, bad + `:6: faults[0]: unknown fault "lightning"`},
		{"unknown profile", []string{"run", "--profile", "nope"}, `unknown profile "nope"`},
		{"unknown target", []string{"run", "--target", "cloud"}, `--target "cloud"`},
		{"report without dir", []string{"report"}, "needs a run directory"},
		{"report of an empty dir", []string{"report", dir}, "no saved run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := call(t, nil, tt.args...)
			if code != exitcode.BadInput {
				t.Errorf("exit: got %d; want %d (stderr %q)", code, exitcode.BadInput, errs)
			}
			if !strings.Contains(errs, tt.wantErr) {
				t.Errorf("stderr: got %q; want it to contain %q", errs, tt.wantErr)
			}
		})
	}
}

func TestRunList(t *testing.T) {
	code, out, _ := call(t, nil, "run", "--list")
	if code != exitcode.Go || !strings.Contains(out, "kill_no_aof\n") {
		t.Errorf("run --list: got %d %q; want 0 and the catalogue", code, out)
	}
}

// TestRunAndReport runs one scenario for real, then re-judges the saved run
// offline: both must agree.
func TestRunAndReport(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	out := t.TempDir()
	code, stdout, errs := call(t, nil, "run", "--scenario", "blackhole", "--profile", "hardened,seed", "--seed", "3", "--out", out)
	if code != exitcode.NoGo {
		t.Fatalf("run: got exit %d; want %d (seed fails)\n%s\n%s", code, exitcode.NoGo, stdout, errs)
	}
	for _, want := range []string{"blackhole  hardened  PASS", "blackhole  seed      FAIL", "budget=FAIL"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("run table: got\n%s\nwant it to contain %q", stdout, want)
		}
	}
	runs, _ := filepath.Glob(filepath.Join(out, "2*"))
	if len(runs) != 1 {
		t.Fatalf("run dirs: got %v; want one", runs)
	}
	if _, err := os.Stat(filepath.Join(runs[0], "results.json")); err != nil {
		t.Errorf("results.json: %v", err)
	}
	code, rep, errs := call(t, nil, "report", runs[0])
	if code != exitcode.NoGo {
		t.Fatalf("report: got exit %d; want %d\n%s", code, exitcode.NoGo, errs)
	}
	for _, want := range []string{"blackhole  hardened  PASS", "blackhole  seed      FAIL"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report table: got\n%s\nwant it to contain %q", rep, want)
		}
	}
	code, _, _ = call(t, nil, "report", filepath.Join(runs[0], "blackhole-hardened"))
	if code != exitcode.Go {
		t.Errorf("report of the hardened run alone: got exit %d; want 0", code)
	}
}
