package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/scenarios/check"
)

// TestJudgeSavedRuns re-judges runs saved in testdata offline (no Redis):
// the verdicts and guarantees are those the live runs reached.
func TestJudgeSavedRuns(t *testing.T) {
	known := DefaultKnown(profiles.Default())
	tests := []struct {
		dir   string
		want  verdict.Verdict
		check string
		err   error
	}{
		{"long_heartbeat-seed", verdict.Fail, "registry", check.ErrVanished},
		{"kill_no_aof-seed", verdict.Fail, "lost", check.ErrLost},
		{"kill_no_aof-hardened", verdict.Pass, "lost", nil},
		{"stop_before_wipe-hardened", verdict.Pass, "acked_on_stop", nil},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			h, spec := savedRun(t, tt.dir, known)
			res, err := Judge(h, spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := Fold(res); got != tt.want {
				t.Errorf("verdict: got %s; want %s", got, tt.want)
			}
			for _, r := range res {
				if r.Check == tt.check && !errors.Is(r.Err, tt.err) && (tt.err != nil || r.Err != nil) {
					t.Errorf("%s: got %v; want %v", r.Check, r.Err, tt.err)
				}
			}
		})
	}
}

// TestStopLossWithoutWipe: the saved run of stop_before_wipe judged as if
// its kill had kept Redis's data: the event inst-1 acknowledged before its
// stop is missing, and acked_on_stop says so (the exemption is what made
// it PASS above, not a check that sees nothing).
func TestStopLossWithoutWipe(t *testing.T) {
	h, spec := savedRun(t, "stop_before_wipe-hardened", DefaultKnown(profiles.Default()))
	for i := range spec.Faults {
		spec.Faults[i].Wipes = false
	}
	res, err := Judge(h, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, check.ErrStopLost) {
		t.Errorf("acked_on_stop without the wipe: got %v (%s); want %v", res[0].Err, res[0].Verdict, check.ErrStopLost)
	}
}

// savedRun loads the history and scenario saved in testdata/dir.
func savedRun(t *testing.T, dir string, known Known) (history.History, Spec) {
	t.Helper()
	dir = filepath.Join("testdata", dir)
	h, err := history.Load(filepath.Join(dir, "history.json"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(dir, "scenario.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := Parse(filepath.Join(dir, "scenario.yaml"), src, known)
	if err != nil {
		t.Fatal(err)
	}
	return h, spec
}

func TestVerdictFold(t *testing.T) {
	pass := Result{Result: check.Result{Verdict: verdict.Pass}}
	fail := Result{Result: check.Result{Verdict: verdict.Fail}}
	inc := Result{Result: check.Result{Verdict: verdict.Inconclusive}}
	reportOnlyFail := Result{Result: check.Result{Verdict: verdict.Fail}, ReportOnly: true}
	tests := []struct {
		name string
		in   []Result
		want verdict.Verdict
	}{
		{"none", nil, verdict.Inconclusive},
		{"all pass", []Result{pass, pass}, verdict.Pass},
		{"fail wins", []Result{inc, fail, pass}, verdict.Fail},
		{"inconclusive", []Result{pass, inc}, verdict.Inconclusive},
		{"report only does not decide", []Result{pass, reportOnlyFail}, verdict.Pass},
		{"only report-only results", []Result{reportOnlyFail}, verdict.Pass},
	}
	for _, tt := range tests {
		if got := Fold(tt.in); got != tt.want {
			t.Errorf("%s: got %s; want %s", tt.name, got, tt.want)
		}
	}
}

func TestThresholdApplied(t *testing.T) {
	tests := []struct {
		name    string
		metrics map[string]float64
		verdict verdict.Verdict
		want    verdict.Verdict
	}{
		{"holds", map[string]float64{"m": 10}, verdict.Pass, verdict.Pass},
		{"violated", map[string]float64{"m": 60}, verdict.Pass, verdict.Fail},
		{"not measured", map[string]float64{}, verdict.Pass, verdict.Inconclusive},
		{"fail stays fail", map[string]float64{}, verdict.Fail, verdict.Fail},
	}
	th, _ := ParseThreshold("m", "<= 50")
	for _, tt := range tests {
		r := Result{Result: check.Result{Verdict: tt.verdict, Metrics: tt.metrics}}
		r.applyThreshold(th)
		if r.Verdict != tt.want {
			t.Errorf("%s: got %s; want %s", tt.name, r.Verdict, tt.want)
		}
	}
}
