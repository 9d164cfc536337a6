package scenarios

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/service"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/redact"
	"github.com/gonogo/harness/internal/verdict"
)

// foreignArg makes this test binary a "foreign" instance (TestMain): a
// service that knows nothing of the harness's serve flags and reads only
// the environment contract (InstanceEnv), and says nothing of where it
// serves.
const foreignArg = "foreign-instance"

func foreignServe() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := impl.ConfigFromEnv(os.Getenv)
	if err == nil {
		err = service.Serve(ctx, service.Served{Profiles: childProfiles(), Profile: "hardened", Addr: os.Getenv(EnvAddr), Config: cfg,
			Control: os.Getenv("HARNESS_CONTROL") == "true", Token: os.Getenv("HARNESS_CONTROL_TOKEN"),
			Options: service.Options{Logger: log}, Out: io.Discard, Err: os.Stderr})
	}
	if err != nil {
		log.Error("serve", "err", err)
	}
	return exitcode.Of(err)
}

// foreignCmd is the instance command of these tests: a shell that forks
// this binary as a foreign instance and waits for it (the shell leads the
// process group; the server holds the state), marked so that its
// processes can be found.
func foreignCmd(t *testing.T) (argv []string, mark string) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	mark = "mark-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		// A failed run leaves nothing behind either.
		for _, pid := range marked(mark) {
			if n, err := strconv.Atoi(pid); err == nil {
				syscall.Kill(n, syscall.SIGKILL)
			}
		}
	})
	return []string{"/bin/sh", "-c", exe + " " + foreignArg + " " + mark + "; exit $?"}, mark
}

// marked lists the live processes whose command line holds mark.
func marked(mark string) []string {
	dirs, _ := os.ReadDir("/proc")
	var out []string
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), mark) && alive(d.Name()) {
			out = append(out, d.Name())
		}
	}
	return out
}

// TestInstanceCmdJudged runs the catalogue's instance_kill with --service
// and an instance command: the instances are a foreign program the
// harness starts on ports it picks, kills (SIGKILL to the process group:
// the forked server that holds the state dies, not only the shell) and
// starts again; the scenario is judged (hardened loses nothing across the
// kill), and no process of the command is left after the run.
func TestInstanceCmdJudged(t *testing.T) {
	t.Parallel()
	needRedis(t)
	s := newServiceStack(t)
	o := s.options(s.serve(t, "hardened", true))
	argv, mark := foreignCmd(t)
	o.InstanceCmd = argv
	deps := ServiceDeps(o)
	out := runOn(t, "instance_kill", "hardened", deps)
	r, _ := result(out, "lost_on_crash")
	if r.Verdict != verdict.Pass || r.Metrics["crash_acked"] == 0 {
		t.Errorf("lost_on_crash: %s (%v) %v %q; want PASS with events acknowledged by the killed instance", r.Verdict, r.Err, r.Metrics, r.Evidence)
	}
	for _, r := range out.Results {
		if r.Verdict == verdict.Inconclusive {
			t.Errorf("%s INCONCLUSIVE (%v): the instance command should run the scenario", r.Check, r.Err)
		}
	}
	h := savedHistory(t, out)
	if h.Meta["instance.inst-1.2.pid"] == "" {
		t.Errorf("no second process of instance 1 recorded (meta %v): the kill was not undone by a start", h.Meta)
	}
	// The shell leads the group; the resident memory sampled is the
	// group's, so it holds the forked server's (a race-built Go binary:
	// tens of MiB; the shell alone is a few).
	var peak int64
	for _, op := range h.Ops {
		if op.Kind == history.RSS {
			peak = max(peak, op.Count)
		}
	}
	if peak < 16<<20 {
		t.Errorf("largest RSS sample %d bytes: want the forked server's memory counted (>= 16 MiB)", peak)
	}
	assertNothingLeft(t, h)
	if left := marked(mark); len(left) > 0 {
		t.Errorf("processes of the instance command outlived the run: %v", left)
	}
}

// TestInstanceCmdFails: an instance command that exits at start-up is a
// harness failure naming the instance, with the lines it logged and the
// control token it was given masked; nothing of it is left.
func TestInstanceCmdFails(t *testing.T) {
	needRedis(t)
	s := newServiceStack(t)
	o := s.options(s.serve(t, "hardened", true))
	o.InstanceCmd = []string{"/bin/sh", "-c", `echo "starting with token $HARNESS_CONTROL_TOKEN on $HARNESS_ADDR"; exit 7`}
	deps := ServiceDeps(o)
	spec, err := Load("instance_kill", DefaultKnown(childProfiles()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = Run(ctx, spec, Options{Profile: "hardened", Dir: t.TempDir(), Deps: deps})
	if code := exitcode.Of(err); code != exitcode.Failure || err == nil {
		t.Fatalf("Run: %v (exit %d); want a harness failure", err, code)
	}
	msg := err.Error()
	for _, want := range []string{"instance inst-0", "exited at start-up", "starting with token " + redact.Mask + " on 127.0.0.1:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q; want it to contain %q", msg, want)
		}
	}
	var un unavailableError
	if errors.As(err, &un) {
		t.Errorf("error %v is unavailable; want a failure", err)
	}
}

// TestParseInstanceCmd: the command is checked before anything runs.
func TestParseInstanceCmd(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ line, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{"no-such-program-gonogo x", "no-such-program-gonogo: not found or not executable"},
		{plain, plain + ": not found or not executable"},
		{dir, dir + ": not found or not executable"},
	} {
		if _, err := ParseInstanceCmd(tt.line); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseInstanceCmd(%q): %v; want %q", tt.line, err, tt.want)
		}
	}
	argv, err := ParseInstanceCmd("sh  -c   true")
	if err != nil || len(argv) != 3 || !filepath.IsAbs(argv[0]) || argv[2] != "true" {
		t.Errorf("ParseInstanceCmd: %q, %v; want an absolute sh, -c, true", argv, err)
	}
}

// TestInstanceEnv: what an instance is told.
func TestInstanceEnv(t *testing.T) {
	got := strings.Join(InstanceEnv{Addr: "127.0.0.1:4242", RedisURL: "redis://p:6379/0", ServerID: "a", Token: "tok", JournalDir: "/j", AckReplicas: -1}.vars(), " ")
	for _, want := range []string{"HARNESS_ADDR=127.0.0.1:4242", "HARNESS_HOST=127.0.0.1", "HARNESS_PORT=4242", "REDIS_URL=redis://p:6379/0",
		"SERVER_ID=a", "HARNESS_CONTROL=true", "HARNESS_CONTROL_TOKEN=tok", "OUTBOX_JOURNAL_DIR=/j", "REDIS_ENABLED=true", "REDIS_ACK_REPLICAS=-1"} {
		if !strings.Contains(got, want) {
			t.Errorf("vars %q lack %q", got, want)
		}
	}
	if unset := strings.Join(InstanceEnv{Addr: "127.0.0.1:1"}.vars(), " "); strings.Contains(unset, "OUTBOX_JOURNAL_DIR") || strings.Contains(unset, "REDIS_ACK_REPLICAS") {
		t.Errorf("vars %q: OUTBOX_JOURNAL_DIR or REDIS_ACK_REPLICAS set without the scenario asking", unset)
	}
}
