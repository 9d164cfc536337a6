package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/scenarios/check"
)

// TestJudgeSavedRuns re-judges runs saved in testdata offline (no Redis):
// the verdicts and guarantees are those the live runs reached.
func TestJudgeSavedRuns(t *testing.T) {
	known := DefaultKnown(profiles.Default())
	tests := []struct {
		dir   string
		want  check.Verdict
		check string
		err   error
	}{
		{"long_heartbeat-seed", check.Fail, "registry", check.ErrVanished},
		{"kill_no_aof-seed", check.Fail, "lost", check.ErrLost},
		{"kill_no_aof-hardened", check.Pass, "lost", nil},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", tt.dir)
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
			res, err := Judge(h, spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := Verdict(res); got != tt.want {
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

func TestVerdictFold(t *testing.T) {
	pass := Result{Result: check.Result{Verdict: check.Pass}}
	fail := Result{Result: check.Result{Verdict: check.Fail}}
	inc := Result{Result: check.Result{Verdict: check.Inconclusive}}
	reportOnlyFail := Result{Result: check.Result{Verdict: check.Fail}, ReportOnly: true}
	tests := []struct {
		name string
		in   []Result
		want check.Verdict
	}{
		{"none", nil, check.Inconclusive},
		{"all pass", []Result{pass, pass}, check.Pass},
		{"fail wins", []Result{inc, fail, pass}, check.Fail},
		{"inconclusive", []Result{pass, inc}, check.Inconclusive},
		{"report only does not decide", []Result{pass, reportOnlyFail}, check.Pass},
	}
	for _, tt := range tests {
		if got := Verdict(tt.in); got != tt.want {
			t.Errorf("%s: got %s; want %s", tt.name, got, tt.want)
		}
	}
}

func TestThresholdApplied(t *testing.T) {
	tests := []struct {
		name    string
		metrics map[string]float64
		verdict check.Verdict
		want    check.Verdict
	}{
		{"holds", map[string]float64{"m": 10}, check.Pass, check.Pass},
		{"violated", map[string]float64{"m": 60}, check.Pass, check.Fail},
		{"not measured", map[string]float64{}, check.Pass, check.Inconclusive},
		{"fail stays fail", map[string]float64{}, check.Fail, check.Fail},
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
