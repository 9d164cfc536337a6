package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/gate"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/scenarios"
	"github.com/gonogo/harness/target"
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
		{"unknown gate", []string{"run", "--gate", "nope"}, `unknown gate "nope" (have local, eventbus, production, production-ha, release)`},
		{"gate and scenario", []string{"run", "--gate", "local", "--scenario", "basic"}, "drop --scenario"},
		{"gate and two profiles", []string{"run", "--gate", "local", "--profile", "seed,hardened"}, "--gate judges one profile"},
		{"gates without gate", []string{"run", "--gates", "testdata/gates.yaml"}, "--gates needs --gate"},
		{"compare needs two", []string{"report", "--compare", dir}, "needs two run directories"},
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
	for _, f := range []string{"results.json", reports.ReportJSON, reports.SummaryMD, reports.ReportHTML, reports.JUnitXML,
		"blackhole-seed/history.json", "blackhole-seed/publish.hgrm"} {
		if _, err := os.Stat(filepath.Join(runs[0], f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	// Without --gate the criteria are the scenarios' checks.
	r, err := reports.LoadRun(runs[0])
	if err != nil {
		t.Fatal(err)
	}
	if r.Gate != gate.ScenariosGate || r.Verdict != verdict.NoGo || !hasCriterion(r, "blackhole.seed.budget", verdict.Fail) || !hasCriterion(r, "blackhole.hardened.budget", verdict.Pass) {
		t.Errorf("report: gate %s verdict %s; want %s NO-GO with blackhole.seed.budget FAIL and blackhole.hardened.budget PASS", r.Gate, r.Verdict, gate.ScenariosGate)
	}
	code, rep, errs := call(t, nil, "report", runs[0])
	if code != exitcode.NoGo {
		t.Fatalf("report: got exit %d; want %d\n%s", code, exitcode.NoGo, errs)
	}
	for _, want := range []string{"blackhole  hardened  PASS", "blackhole  seed      FAIL", "NO-GO — scenarios gate"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report table: got\n%s\nwant it to contain %q", rep, want)
		}
	}
	code, _, _ = call(t, nil, "report", filepath.Join(runs[0], "blackhole-hardened"))
	if code != exitcode.Go {
		t.Errorf("report of the hardened run alone: got exit %d; want 0", code)
	}
}

func hasCriterion(r reports.Run, id string, v verdict.Verdict) bool {
	for _, c := range r.Criteria {
		if c.Criterion.ID == id {
			return c.Verdict == v
		}
	}
	return false
}

// TestRunGate runs a small gate (testdata/gates.yaml: basic and blackhole)
// for each profile: the seed profile fails it (three round trips per
// publish; a blackholed Redis blocks its calls) and the summary names the
// failed criteria; the hardened profile passes. report re-judges offline;
// --compare prints the trend from one to the other.
func TestRunGate(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	out := t.TempDir()
	dirs := map[string]string{}
	for _, tc := range []struct {
		profile string
		want    int
		failed  []string
	}{
		{"seed", exitcode.NoGo, []string{"round_trips", "bounded_blackhole"}},
		{"hardened", exitcode.Go, nil},
	} {
		code, stdout, errs := call(t, nil, "run", "--gate", "smoke", "--gates", "testdata/gates.yaml", "--profile", tc.profile, "--seed", "7", "--report-dir", out)
		if code != tc.want {
			t.Fatalf("%s: exit %d; want %d\n%s\n%s", tc.profile, code, tc.want, stdout, errs)
		}
		dir := newestRun(t, out)
		dirs[tc.profile] = dir
		summary, err := os.ReadFile(filepath.Join(dir, reports.SummaryMD))
		if err != nil {
			t.Fatal(err)
		}
		head, _, _ := strings.Cut(string(summary), "\n")
		if want := "# " + map[int]string{exitcode.NoGo: "NO-GO", exitcode.Go: "GO"}[tc.want] + " — smoke gate"; !strings.HasPrefix(head, want) {
			t.Errorf("%s: summary line one %q; want %q…", tc.profile, head, want)
		}
		for _, id := range tc.failed {
			if !strings.Contains(string(summary), "### "+id+": ") || !strings.Contains(stdout, "FAIL         "+id+":") {
				t.Errorf("%s: summary or stdout does not name failed criterion %s\n%s", tc.profile, id, stdout)
			}
		}
		if !strings.Contains(stdout, "report: "+filepath.Join(dir, reports.ReportHTML)) {
			t.Errorf("%s: stdout does not say where the report is:\n%s", tc.profile, stdout)
		}
	}
	r, err := reports.LoadRun(dirs["hardened"])
	if err != nil {
		t.Fatal(err)
	}
	if r.Trend != nil {
		t.Errorf("hardened run trend: %+v; want none (a seed run is not its baseline)", r.Trend)
	}
	if r.Environment.RedisVersion == "" || r.Environment.GoVersion == "" || r.Environment.GitSHA == "" || r.Environment.Seed != 7 {
		t.Errorf("environment: %+v; want redis and Go versions, git SHA and seed 7", r.Environment)
	}
	code, stdout, errs := call(t, nil, "report", dirs["seed"])
	if code != exitcode.NoGo || !strings.Contains(stdout, "NO-GO — smoke gate") {
		t.Errorf("report (re-judged): exit %d; want %d\n%s%s", code, exitcode.NoGo, stdout, errs)
	}
	code, stdout, _ = call(t, nil, "report", "--compare", dirs["seed"], dirs["hardened"])
	if code != exitcode.Go || !strings.Contains(stdout, "**round_trips** check:basic:round_trips: FAIL → PASS") {
		t.Errorf("report --compare: exit %d\n%s\nwant round_trips FAIL → PASS", code, stdout)
	}
}

// newestRun is the newest run directory in out.
func newestRun(t *testing.T, out string) string {
	t.Helper()
	runs, _ := filepath.Glob(filepath.Join(out, "2*"))
	if len(runs) == 0 {
		t.Fatalf("no run directory in %s", out)
	}
	return runs[len(runs)-1]
}

// TestRunNeverShowsPassword runs a tiny gate (one scenario, one benchmark)
// against redis-servers that require a password, with verbose logs: the
// password appears in no file of the run's report directory (reports,
// histories, results, histograms) and in no output.
func TestRunNeverShowsPassword(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	const pw = "pw-Zq7-in-the-url"
	reg := profiles.Default()
	out := t.TempDir()
	p := gate.Plan{Profiles: []string{"hardened"}, Seed: 3, ReportDir: out, Registry: reg,
		Bench:       gate.BenchTarget{Kind: target.KindProcess},
		CommandLine: []string{"harness", "run", "--gate", "tiny", "--url", "redis://:" + pw + "@127.0.0.1:6379/0"}}
	if err := p.ForGate("tiny", "testdata/gates.yaml", scenarios.DefaultKnown(reg)); err != nil {
		t.Fatal(err)
	}
	deps := scenarios.DefaultDeps()
	deps.StartTarget = func(ctx context.Context, _ scenarios.Target) (target.Target, error) {
		return target.StartProcess(ctx, target.ProcessOptions{Password: pw})
	}
	p.Deps = deps
	var stdout, stderr bytes.Buffer
	code, err := execute(context.Background(), p, true, env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	dir := newestRun(t, out)
	r, lerr := reports.LoadRun(dir)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if !strings.Contains(r.Environment.TargetURL, "127.0.0.1") || r.Environment.RedisVersion == "" {
		t.Errorf("environment %+v: want the target's (masked) URL and its version", r.Environment)
	}
	if code == exitcode.Failure || !hasCriterion(r, "basic_lost", verdict.Pass) {
		t.Errorf("exit %d, criteria %+v: the layer must have worked with the password", code, r.Criteria)
	}
	var files int
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
		} else if bytes.Contains(b, []byte(pw)) {
			t.Errorf("%s shows the password", path)
		}
		return nil
	})
	if files < 10 {
		t.Errorf("scanned %d files; want the reports, the scenario's files and histograms", files)
	}
	for name, b := range map[string][]byte{"stdout": stdout.Bytes(), "stderr": stderr.Bytes()} {
		if bytes.Contains(b, []byte(pw)) {
			t.Errorf("%s shows the password:\n%s", name, b)
		}
	}
	if !strings.Contains(string(mustRead(t, filepath.Join(dir, reports.SummaryMD))), "--url redis://:xxxxx@127.0.0.1:6379/0") {
		t.Error("summary.md: the command line's URL is not shown masked")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRunInterrupted starts the real binary on the local gate and sends
// SIGINT once the first scenario's redis-server is up: the run exits 2,
// report.json parses and says INCOMPLETE, nothing is half-written, and no
// redis-server of the run survives.
func TestRunInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server and a build")
	}
	bin := buildHarness(t)
	tmp, out := t.TempDir(), t.TempDir()
	cmd := exec.Command(bin, "run", "--gate", "local", "--report-dir", out, "--seed", "5")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp) // the targets' directories
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	if !poll(30*time.Second, func() bool { return len(redisServersUnder(tmp)) > 0 }) {
		t.Fatalf("no redis-server under %s within 30s\n%s", tmp, stderr.String())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("harness did not exit within 60s of SIGINT\n%s", stderr.String())
	}
	if got := cmd.ProcessState.ExitCode(); got != exitcode.Inconclusive {
		t.Errorf("exit: got %d; want %d\n%s\n%s", got, exitcode.Inconclusive, stdout.String(), stderr.String())
	}
	dir := newestRun(t, out)
	r, err := reports.LoadRun(dir)
	if err != nil {
		t.Fatalf("report.json: %v", err)
	}
	if r.Verdict != verdict.Incomplete || !r.Interrupted {
		t.Errorf("report verdict %s, interrupted %v; want INCOMPLETE, true", r.Verdict, r.Interrupted)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp*")); len(tmps) > 0 {
		t.Errorf("half-written files left: %v", tmps)
	}
	if !poll(10*time.Second, func() bool { return len(redisServersUnder(tmp)) == 0 }) {
		t.Errorf("redis-server processes survived the run: %v", redisServersUnder(tmp))
	}
}

// buildHarness builds the harness binary into a temporary directory.
func buildHarness(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "harness")
	args := []string{"build", "-o", bin}
	if raceEnabled { // reuse the race-built packages of this test binary
		args = append(args, "-race")
	}
	if b, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return bin
}

// poll calls cond every 50ms until it holds or d passes.
func poll(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// redisServersUnder lists the pids of redis-server processes whose working
// directory or command line is under dir.
func redisServersUnder(dir string) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, p := range procs {
		comm, err := os.ReadFile(filepath.Join(p, "comm"))
		if err != nil || !strings.HasPrefix(string(comm), "redis-server") {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join(p, "cwd"))
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		if strings.HasPrefix(cwd, dir) || strings.Contains(string(cmdline), dir) {
			pid, _ := strconv.Atoi(filepath.Base(p))
			pids = append(pids, pid)
		}
	}
	return pids
}
