package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/target"
)

// pwMark is in every password below, so that "the password shows" is a
// plain substring test.
const pwMark = "Pw9-hostile"

// TestRunURLPasswordNeverShown feeds URLs with credentials in every form
// through the real error paths of `harness run --target url` (and of
// bench, and of run --service), given by --url, --url=, --url-env and
// $REDIS_URL: each is bad input (exit 3) in one line on stderr, and the
// password is nowhere in stdout, stderr or any file written.
func TestRunURLPasswordNeverShown(t *testing.T) {
	closed, err := target.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	at := fmt.Sprintf("@127.0.0.1:%d", closed)
	pw := func(i int) string { return fmt.Sprintf("%s-%d", pwMark, i) }
	urls := []string{
		"user:" + pw(1) + at,                                       // no scheme
		":" + pw(2) + at,                                           // no scheme, no user
		"redis://:" + pw(3) + at,                                   // unreachable
		"rediss://default:" + pw(4) + at + "/0",                    // unreachable over TLS
		"unix://:" + pw(5) + "@/run/redis.sock",                    // unknown scheme
		"redis://127.0.0.1:1/0?password=" + pw(6),                  // password in the query
		"redis://u:" + pw(7) + " x" + at,                           // a space
		"redis://u:" + pw(8) + "%zz" + at,                          // a bad escape
		"redis://u:" + pw(9) + at + "/x",                           // a bad database
		"redis://u:" + pw(10) + "@[::1:1/",                         // a bad host
		"redis://u:" + pw(11) + "@/x@" + at[1:],                    // an '@' in the password
		"redis://u:" + pw(12) + "\n" + at,                          // a newline
		"http://u:" + pw(13) + at,                                  // another scheme
		"redis://u:" + strings.ReplaceAll(pw(14), "-", "%2D") + at, // escaped
	}
	dir := t.TempDir()
	t.Setenv("TMPDIR", t.TempDir()) // no process target may start
	svc := startServe(t, nil, "-addr", "127.0.0.1:0")
	var all bytes.Buffer
	for i, u := range urls {
		variants := []struct {
			name string
			env  map[string]string
			args []string
		}{
			{"--url", nil, []string{"run", "--target", "url", "--url", u}},
			{"--url=", nil, []string{"run", "--url=" + u}},
			{"--url-env", map[string]string{"MY_URL": u}, []string{"run", "--url-env", "MY_URL"}},
			{"$REDIS_URL", map[string]string{"REDIS_URL": u}, []string{"run", "--target", "url"}},
			{"bench", nil, []string{"bench", "--target", "url", "--url", u, "--preset", "baseline", "--ops", "10"}},
			{"--service --url", nil, []string{"run", "--service", svc.base, "--url", u}},
			{"--service with credentials", nil, []string{"run", "--service", "http://u:" + pw(i) + at, "--url", u}},
			{"--toxiproxy with credentials", nil, []string{"run", "--service", svc.base, "--toxiproxy", "http://u:" + pw(i) + at}},
		}
		for _, v := range variants {
			args := v.args
			if args[0] == "run" {
				args = append(args, "--scenario", "basic", "--report-dir", dir)
			}
			code, stdout, stderr := call(t, v.env, args...)
			all.WriteString(stdout + stderr)
			// A live service is named before the error.
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if code != exitcode.BadInput || !strings.HasPrefix(lines[len(lines)-1], "harness "+args[0]+": ") || strings.Count(stderr, "harness ") != 1 {
				t.Errorf("%s %q: exit %d, stderr %q; want %d and the error in one last line", v.name, u, code, stderr, exitcode.BadInput)
			}
			if strings.Contains(stdout+stderr, pwMark) {
				t.Errorf("%s %q: the password shows:\nstdout %q\nstderr %q", v.name, u, stdout, stderr)
			}
		}
	}
	t.Logf("what was printed:\n%s", all.String())
	for _, d := range []string{dir, os.Getenv("TMPDIR")} {
		filepath.WalkDir(d, func(path string, de os.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return err
			}
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(pwMark)) {
				t.Errorf("%s holds the password", path)
			}
			return nil
		})
	}
}

// TestFlagErrorsOneLine: a flag error is one line on stderr, with a hint
// to -h, exit 3, and nothing on stdout; -h prints the usage, exit 0.
func TestFlagErrorsOneLine(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--nope"}, "flag provided but not defined: -nope; run 'harness run -h' for usage"},
		{[]string{"run", "--seed", "x"}, `invalid value "x" for flag -seed: parse error; run 'harness run -h' for usage`},
		{[]string{"run", "extra"}, `unexpected argument "extra"; run 'harness run -h' for usage`},
		{[]string{"bench", "--workers"}, "flag needs an argument: -workers; run 'harness bench -h' for usage"},
		{[]string{"doctor", "--x"}, "flag provided but not defined: -x; run 'harness doctor -h' for usage"},
		{[]string{"gates"}, "gates needs a subcommand: list; run 'harness gates -h' for usage"},
		{[]string{"gates", "list", "--nope"}, "run 'harness gates -h' for usage"},
		{[]string{"report"}, "report needs a run directory; run 'harness report -h' for usage"},
		{[]string{"report", "a", "b"}, `unexpected argument "b"; run 'harness report -h' for usage`},
		{[]string{"report", "--nope", "a"}, "run 'harness report -h' for usage"},
		{[]string{"frobnicate"}, `harness: unknown command "frobnicate"; run 'harness -h' for the commands`},
	} {
		code, stdout, stderr := call(t, nil, tt.args...)
		if code != exitcode.BadInput || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, nothing, one line with %q", tt.args, code, stdout, stderr, exitcode.BadInput, tt.want)
		}
	}
	for _, cmd := range []string{"run", "bench", "doctor", "gates", "report", "serve"} {
		code, stdout, stderr := call(t, nil, cmd, "-h")
		if code != exitcode.Go || !strings.HasPrefix(stdout, "Usage: harness "+cmd) || stderr != "" {
			t.Errorf("%s -h: exit %d, stdout %.40q, stderr %q; want 0 and the usage on stdout", cmd, code, stdout, stderr)
		}
	}
}

// TestNumericFlagRanges: every numeric flag out of its range (NaN too) is
// bad input naming the range, before anything runs.
func TestNumericFlagRanges(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--seed", "-5"}, "--seed -5: out of range, want 0 to 9007199254740991"},
		{[]string{"run", "--seed", "9007199254740992"}, "--seed 9007199254740992: out of range"},
		{[]string{"run", "--target", "remote-sim", "--rtt", "1000h"}, "--rtt 1000h0m0s: out of range, want 1ms to 10s"},
		{[]string{"run", "--target", "remote-sim", "--rtt", "0s"}, "--rtt 0s: out of range, want 1ms to 10s"},
		{[]string{"bench", "--workers", "0"}, "--workers 0: out of range, want 1 to 10000"},
		{[]string{"bench", "--workers", "100000"}, "--workers 100000: out of range, want 1 to 10000"},
		{[]string{"bench", "--ops", "-1"}, "--ops -1: out of range, want 0 to 1000000000"},
		{[]string{"bench", "--rate", "0"}, "--rate 0: out of range, want 1 to 1e+06"},
		{[]string{"bench", "--rate", "1e-10"}, "--rate 1e-10: out of range"},
		{[]string{"bench", "--rate", "nan"}, "--rate NaN: out of range"},
		{[]string{"bench", "--rate", "+Inf"}, "--rate +Inf: out of range"},
		{[]string{"bench", "--duration", "-1s"}, "--duration -1s: out of range, want 0s to 1h0m0s"},
		{[]string{"bench", "--duration", "2562047h"}, "--duration 2562047h0m0s: out of range"},
		{[]string{"bench", "--warmup", "11m"}, "--warmup 11m0s: out of range, want 0s to 10m0s"},
		{[]string{"bench", "--late-after", "0s"}, "--late-after 0s: out of range, want 100µs to 1m0s"},
		{[]string{"bench", "--queue", "0"}, "--queue 0: out of range, want 1 to 1000000"},
		{[]string{"bench", "--rtt", "11s"}, "--rtt 11s: out of range, want 1ms to 10s"},
		{[]string{"bench", "--max-commands", "-1"}, "--max-commands -1: out of range"},
		{[]string{"bench", "--plan-commands-month", "0"}, "--plan-commands-month 0: out of range"},
		{[]string{"bench", "--plan-commands-sec", "0"}, "--plan-commands-sec 0: out of range"},
		{[]string{"bench", "--event-rate", "nan"}, "--event-rate NaN: out of range, want 0.001 to 1e+06"},
		{[]string{"bench", "--sse-clients", "100000000"}, "--sse-clients 100000000: out of range, want 1 to 10000"},
		{[]string{"bench", "--call-budget", "-1s"}, "--call-budget -1s: out of range, want 0s to 1m0s"},
		{[]string{"bench", "--rounds", "1000000"}, "--rounds 1000000: out of range, want 1 to 100"},
		{[]string{"bench", "--client-procs", "100000"}, "--client-procs 100000: out of range, want 0 to 256"},
		{[]string{"bench", "--ack-replicas", "-2"}, "--ack-replicas -2: out of range, want -1 to 16"},
		{[]string{"cost", "--events-per-sec", "nan"}, "--events-per-sec NaN: out of range, want 0 to 1e+06"},
		{[]string{"cost", "--sse-connections", "-1"}, "--sse-connections -1: out of range, want 0 to 1000000"},
		{[]string{"cost", "--heartbeat", "1ms"}, "--heartbeat 1ms: out of range, want 100ms to 1h0m0s"},
		{[]string{"cost", "--cache-reads-per-sec", "-1"}, "--cache-reads-per-sec -1: out of range"},
		{[]string{"cost", "--cache-writes-per-sec", "+Inf"}, "--cache-writes-per-sec +Inf: out of range"},
		{[]string{"cost", "--hit-rate", "1.5"}, "--hit-rate 1.5: out of range, want 0 to 1"},
		{[]string{"cost", "--instances", "0"}, "--instances 0: out of range, want 1 to 1000"},
		{[]string{"cost", "--idle", "10ms"}, "--idle 10ms: out of range, want 1s to 1h0m0s"},
		{[]string{"cost", "--ops", "0"}, "--ops 0: out of range, want 1 to 100000"},
	} {
		args := tt.args
		if args[0] == "run" {
			args = append(args, "--scenario", "basic", "--report-dir", t.TempDir())
		}
		code, stdout, stderr := call(t, nil, args...)
		if code != exitcode.BadInput || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, one line with %q", tt.args, code, stdout, stderr, exitcode.BadInput, tt.want)
		}
	}
	if dirs, _ := filepath.Glob(filepath.Join(os.Getenv("TMPDIR"), "gonogo-redis-*")); len(dirs) > 0 {
		t.Errorf("a target started: %v", dirs)
	}
}

// TestReportDirCheckedFirst: a --report-dir that is a file, cannot be
// created or is not writable is bad input in one line before any target
// starts: not a url target's dial (its URL would fail too), not a
// process target.
func TestReportDirCheckedFirst(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", t.TempDir())
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, dir, want string }{
		{"a file", file, "--report-dir " + file + ": " + file + " is not a directory"},
		{"under a file: cannot be created", filepath.Join(file, "reports"), "--report-dir " + filepath.Join(file, "reports") + ": cannot be created: not a directory"},
	}
	// Read-only: root writes through permission bits, so as root the
	// case is a directory no one can create files in (/proc).
	if os.Geteuid() != 0 {
		ro := filepath.Join(tmp, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ name, dir, want string }{"read-only", filepath.Join(ro, "reports"), "cannot write in " + ro})
	} else if fi, err := os.Stat("/proc"); err == nil && fi.IsDir() {
		cases = append(cases, struct{ name, dir, want string }{"not writable (/proc, as root)", "/proc/gonogo-reports", "cannot write in /proc"})
	} else {
		t.Log("read-only case not run: running as root without /proc, nothing is unwritable")
	}
	closed, err := target.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		for _, tgt := range [][]string{{"--target", "process"}, {"--url", fmt.Sprintf("redis://127.0.0.1:%d/0", closed)}} {
			code, stdout, stderr := call(t, nil, append([]string{"run", "--scenario", "basic", "--report-dir", c.dir}, tgt...)...)
			if code != exitcode.BadInput || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, c.want) {
				t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want %d and one line with %q", c.name, tgt, code, stdout, stderr, exitcode.BadInput, c.want)
			}
		}
	}
	if dirs, _ := filepath.Glob(filepath.Join(os.Getenv("TMPDIR"), "gonogo-redis-*")); len(dirs) > 0 {
		t.Errorf("a target started: %v", dirs)
	}
	if b, _ := os.ReadFile(file); string(b) != "x" {
		t.Errorf("the file given as --report-dir changed: %q", b)
	}
	// A directory that does not exist yet is fine and is not made by the
	// check (the run makes it).
	fresh := filepath.Join(tmp, "a", "b")
	if err := checkWritableDir("--report-dir", fresh); err != nil {
		t.Errorf("checkWritableDir(%s): %v; want nil", fresh, err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "a")); !os.IsNotExist(err) {
		t.Errorf("the check made %s (%v)", filepath.Join(tmp, "a"), err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, ".gonogo-probe-*")); len(left) > 0 {
		t.Errorf("probe files left: %v", left)
	}
}

// TestKilledRunCleanedNextTime kills the real harness with SIGKILL in the
// middle of a run, twice: its redis-server dies with it, its temporary
// directory stays until `harness doctor --clean` (the first) or the next
// `harness run` (the second, before its own target starts) removes it and
// says so, and a live run's directory (this test's own target) is never
// removed.
func TestKilledRunCleanedNextTime(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server and a build")
	}
	bin := buildHarness(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	live, err := target.StartProcess(t.Context(), target.ProcessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	for _, clean := range [][]string{{"doctor", "--clean"}, {"run", "--scenario", "basic", "--report-dir", t.TempDir()}} {
		dir, pid := killedRun(t, bin, tmp, live.Dir())
		code, stdout, stderr := call(t, nil, clean...)
		if said := stdout + stderr; !strings.Contains(said, "removed ") || !strings.Contains(said, dir) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want it to say it removed %s", clean, code, stdout, stderr, dir)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%q: %s still there (%v)", clean, dir, err)
		}
		if _, err := os.Stat(live.Dir()); err != nil || live.Pid() == 0 {
			t.Fatalf("%q removed a live run's directory %s (%v)", clean, live.Dir(), err)
		}
		if pids := redisServersUnder(dir); len(pids) > 0 {
			t.Errorf("redis-server %d of the killed run still runs: %v", pid, pids)
		}
	}
}

// killedRun starts `harness run --scenario basic` with its targets under
// tmp, SIGKILLs it once its redis-server answers, waits for the server to
// die with it (at most 10s) and returns the directory the run left and
// its server's pid. other is a directory already under tmp.
func killedRun(t *testing.T, bin, tmp, other string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, "run", "--scenario", "basic", "--report-dir", t.TempDir(), "-v")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	// -v prints each phase; "basic: traffic" comes once the target is up.
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "basic: traffic") {
				close(up)
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case <-up:
	case <-time.After(60 * time.Second):
		t.Fatal("the run's traffic did not start within 60s")
	}
	var dir string
	var pids []int
	dirs, _ := filepath.Glob(filepath.Join(tmp, "gonogo-redis-*"))
	for _, d := range dirs {
		if d != other {
			dir, pids = d, redisServersUnder(d)
		}
	}
	if dir == "" || len(pids) != 1 {
		t.Fatalf("the run's directory %q and its redis-server %v: want one of each under %s", dir, pids, tmp)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if !poll(10*time.Second, func() bool { return len(redisServersUnder(dir)) == 0 }) {
		t.Fatalf("redis-server %d outlived its harness (SIGKILL) by 10s", pids[0])
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the killed run left no directory (%v): nothing to clean", err)
	}
	return dir, pids[0]
}
