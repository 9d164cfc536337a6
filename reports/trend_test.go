package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/verdict"
)

func TestCompare(t *testing.T) {
	tr := Compare(fixturePrevious(t), fixtureRun(t))
	var flips []string
	for _, f := range tr.Flipped {
		flips = append(flips, f.ID+":"+string(f.From)+">"+string(f.To))
	}
	if got, want := strings.Join(flips, " "), "lost_proxy_down:PASS>FAIL recovered:PASS>FAIL"; got != want {
		t.Errorf("flipped: got %q; want %q", got, want)
	}
	var moved []string
	for _, m := range tr.Moved {
		moved = append(moved, m.Metric)
		if m.Better {
			t.Errorf("%s moved the good way; want worse", m.Metric)
		}
	}
	// p99 publish went 0.5 → 0.9 ms: below the 1 ms floor, noise.
	if got, want := strings.Join(moved, ", "), "lost_proxy_down: scenario:proxy_down:lost, bench:publish:ops_per_sec [hardened]"; got != want {
		t.Errorf("moved: got %q; want %q", got, want)
	}
	if tr.PreviousID != "20261127T201500Z-0c0d" || tr.Rule != NoiseRule {
		t.Errorf("got previous %q rule %q", tr.PreviousID, tr.Rule)
	}
}

func TestBeyondNoise(t *testing.T) {
	for _, tc := range []struct {
		old, cur float64
		unit     string
		want     bool
	}{
		{5, 5.9, "ms", false},  // < 1 ms floor
		{5, 6.1, "ms", true},   // > 1 ms and > 10 %
		{50, 54, "ms", false},  // > 1 ms but < 10 %
		{50, 56, "ms", true},   // > 10 %
		{85, 84.5, "%", false}, // < 1 point
		{85, 83, "%", false},   // 2 points, but 10 % of 85 is 8.5 points
		{5, 3, "%", true},      // 2 points > max(0.5, 1)
		{0, 1, "", true},       // a first lost event always counts
		{1000, 1090, "ops/s", false},
		{1000, 1200, "ops/s", true},
	} {
		if got := beyondNoise(tc.old, tc.cur, tc.unit); got != tc.want {
			t.Errorf("beyondNoise(%v, %v, %q): got %v; want %v", tc.old, tc.cur, tc.unit, got, tc.want)
		}
	}
}

func TestPrevious(t *testing.T) {
	dir := t.TempDir()
	mk := func(id, gate string) Run {
		r := Run{ID: id, Gate: gate, Verdict: verdict.Go, Started: fixtureStart, Environment: Environment{Profile: "hardened"}}
		if _, err := Write(dir, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	mk("20261126T000000Z-aaaa", "release")
	want := mk("20261127T000000Z-bbbb", "release")
	mk("20261127T120000Z-cccc", "local") // other gate
	seed := Run{ID: "20261127T123000Z-abab", Gate: "release", Verdict: verdict.NoGo, Environment: Environment{Profile: "seed"}}
	if _, err := Write(dir, seed); err != nil { // other profile
		t.Fatal(err)
	}
	ext := Run{ID: "20261127T124000Z-acac", Gate: "release", Verdict: verdict.Go, Environment: Environment{Profile: "hardened", Implementation: External, Services: []string{"http://a:8080"}}}
	if _, err := Write(dir, ext); err != nil { // external implementation
		t.Fatal(err)
	}
	mk("20261129T000000Z-dddd", "release")                                                  // later than current
	if err := os.MkdirAll(filepath.Join(dir, "20261127T130000Z-eeee"), 0o755); err != nil { // no report.json
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "testdata"), 0o755); err != nil { // not a run
		t.Fatal(err)
	}
	cur := Run{ID: "20261128T000000Z-ffff", Gate: "release", Environment: Environment{Profile: "hardened"}}
	got, ok, err := Previous(dir, cur)
	if err != nil || !ok || got.ID != want.ID {
		t.Errorf("got %q %v %v; want %q", got.ID, ok, err, want.ID)
	}
	cur.Environment.Profile = ""
	if got, _, _ := Previous(dir, cur); got.ID != seed.ID {
		t.Errorf("any profile: got %q; want the newest earlier release run %s", got.ID, seed.ID)
	}
	cur.Gate = ""
	if got, _, _ := Previous(dir, cur); got.ID != seed.ID {
		t.Errorf("any gate: got %q; want the newest earlier run %s", got.ID, seed.ID)
	}
	cur.Environment.Implementation = External
	if got, _, _ := Previous(dir, cur); got.ID != ext.ID {
		t.Errorf("external: got %q; want the earlier run of the external implementation %s", got.ID, ext.ID)
	}
	if _, ok, err := Previous(filepath.Join(dir, "nope"), cur); ok || err != nil {
		t.Errorf("missing dir: got ok %v err %v; want false, nil", ok, err)
	}
	first := Run{ID: NewRunID(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)), Gate: "release"}
	if _, ok, _ := Previous(dir, first); ok {
		t.Error("first run: found a previous one")
	}
}
