package scenarios

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/containertest"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/target"
	"github.com/gonogo/harness/target/targettest"
)

const urlPassword = "pw-Zq7-never-printed"

// keyAudit wraps a target: at Close, before the target deletes its keys,
// it records every key in the database.
type keyAudit struct {
	target.Target
	rdb  *redis.Client
	keys []string
}

func (a *keyAudit) Close() error {
	a.keys, _ = a.rdb.Keys(context.Background(), "*").Result()
	return a.Target.Close()
}

// runOn runs a catalogue scenario for profile with deps, saving in a
// temporary directory, and logs each failed check.
func runOn(t *testing.T, name, profile string, deps *Deps) Outcome {
	t.Helper()
	spec, err := Load(name, DefaultKnown(profiles.Default()))
	if err != nil {
		t.Fatal(err)
	}
	raceTolerance(&spec)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := Run(ctx, spec, Options{Profile: profile, Seed: 1, Dir: t.TempDir(), Deps: deps})
	if err != nil {
		t.Fatalf("Run(%s): %v", spec.Name, err)
	}
	for _, r := range o.Failed() {
		if r.Verdict == verdict.Fail {
			t.Logf("%s/%s: %s %s: %s %q", spec.Name, profile, r.Check, r.Verdict, firstLine(r.Error), r.Evidence[:min(2, len(r.Evidence))])
		}
	}
	return o
}

func savedHistory(t *testing.T, o Outcome) history.History {
	t.Helper()
	h, err := history.Load(filepath.Join(o.Dir, "history.json"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestURLTarget runs basic on a password-protected redis-server reached
// only by URL: hardened passes, every key the run wrote carries the
// target's per-run prefix, none is left afterwards, and the password is in
// no saved file.
func TestURLTarget(t *testing.T) {
	t.Parallel()
	needRedis(t)
	p, rdb := targettest.PasswordRedis(t, urlPassword)
	deps := NewDeps(TargetOptions{Kind: target.KindURL, URL: p.URL()})
	var audit *keyAudit
	start := deps.StartTarget
	deps.StartTarget = func(ctx context.Context, tg Target) (target.Target, error) {
		tt, err := start(ctx, tg)
		if err != nil {
			return nil, err
		}
		audit = &keyAudit{Target: tt, rdb: rdb}
		return audit, nil
	}
	o := runOn(t, "basic", "hardened", deps)
	if o.Verdict != verdict.Pass {
		t.Errorf("verdict: got %s; want PASS", o.Verdict)
	}
	prefix := audit.KeyPrefix()
	if !strings.HasPrefix(prefix, "gonogo:") || len(prefix) < len("gonogo:x:") {
		t.Fatalf("key prefix: got %q; want gonogo:<run id>:", prefix)
	}
	if len(audit.keys) == 0 {
		t.Error("no keys in Redis at the end of the run; want the run's keys")
	}
	for _, k := range audit.keys {
		if !strings.HasPrefix(k, prefix) {
			t.Errorf("key %q written without the run's prefix %q", k, prefix)
		}
	}
	if n := rdb.DBSize(context.Background()).Val(); n != 0 {
		left, _ := rdb.Keys(context.Background(), "*").Result()
		t.Errorf("keys left after the run: got %d %q; want 0", n, left)
	}
	h := savedHistory(t, o)
	for k, want := range map[string]string{MetaTargetKind: "url", MetaTargetTLS: "false", MetaRedisVersion: "7."} {
		if !strings.HasPrefix(h.Meta[k], want) {
			t.Errorf("meta %s: got %q; want %q…", k, h.Meta[k], want)
		}
	}
	if h.Meta[MetaTargetRTT] == "" {
		t.Errorf("meta %s: not recorded", MetaTargetRTT)
	}
	assertNoSecret(t, o.Dir, urlPassword)
}

// assertNoSecret fails when any file under dir contains secret.
func assertNoSecret(t *testing.T, dir, secret string) {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("%s contains the password", path)
		}
		return nil
	})
	if n == 0 {
		t.Errorf("no files under %s", dir)
	}
}

// TestUnavailableNotRun runs scenarios whose faults or target options the
// target does not offer: each is INCONCLUSIVE with the reasons, before any
// traffic (no operation recorded, no key written), and `harness report`
// (Judge on the saved history) agrees.
func TestUnavailableNotRun(t *testing.T) {
	needRedis(t)
	p, rdb := targettest.PasswordRedis(t, urlPassword)
	tests := []struct {
		name     string
		scenario string
		deps     *Deps
		want     []string
	}{
		{"kill on url", "kill_aof", NewDeps(TargetOptions{Kind: target.KindURL, URL: p.URL()}), []string{
			"fault kill not available on target url: refused on a url target the harness does not own",
			"target option aof not available on target url"}},
		{"kill on url, destructive allowed", "kill_aof", NewDeps(TargetOptions{Kind: target.KindURL, URL: p.URL(), AllowDestructive: true}), []string{
			"fault kill not available on target url: a url target cannot be killed and restarted"}},
		{"quota on TLS", "quota", NewDeps(TargetOptions{Kind: target.KindRemoteSim}), []string{
			"fault quota not available on target remote-sim"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			o := runOn(t, tt.scenario, "hardened", tt.deps)
			if o.Verdict != verdict.Inconclusive {
				t.Errorf("verdict: got %s; want INCONCLUSIVE", o.Verdict)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s; want it not run (the workload lasts 6s)", d)
			}
			for _, r := range o.Results {
				if r.Verdict != verdict.Inconclusive || !errors.Is(r.Err, ErrUnavailable) {
					t.Errorf("check %s: got %s (%v); want INCONCLUSIVE: %v", r.Check, r.Verdict, r.Err, ErrUnavailable)
				}
			}
			notes := strings.Join(o.Notes, "\n")
			for _, w := range tt.want {
				if !strings.Contains(notes, w) {
					t.Errorf("notes: got %q; want them to contain %q", notes, w)
				}
			}
			h := savedHistory(t, o)
			if len(h.Ops) != 0 || len(h.Faults) != 0 {
				t.Errorf("history: got %d ops, %d faults; want none (not run)", len(h.Ops), len(h.Faults))
			}
			spec, _ := Load(tt.scenario, DefaultKnown(profiles.Default()))
			res, err := Judge(h, spec)
			if err != nil || Fold(res) != verdict.Inconclusive || !errors.Is(res[0].Err, ErrUnavailable) {
				t.Errorf("re-judged: got %s (%v, %v); want INCONCLUSIVE: %v", Fold(res), res[0].Err, err, ErrUnavailable)
			}
			if n := rdb.DBSize(context.Background()).Val(); n != 0 {
				t.Errorf("keys on the url server: got %d; want 0", n)
			}
		})
	}
}

// TestRemoteSimTarget runs remote_basic on remote-sim: hardened passes and
// the history records the environment (TLS on, 20 ms RTT, Redis version).
func TestRemoteSimTarget(t *testing.T) {
	needRedis(t)
	o := runOn(t, "remote_basic", "hardened", DefaultDeps())
	if o.Verdict != verdict.Pass {
		t.Errorf("verdict: got %s; want PASS", o.Verdict)
	}
	h := savedHistory(t, o)
	for k, want := range map[string]string{MetaTargetKind: "remote-sim", MetaTargetTLS: "true", MetaTargetRTT: "20"} {
		if got := h.Meta[k]; got != want {
			t.Errorf("meta %s: got %q; want %q", k, got, want)
		}
	}
	if v := h.Meta[MetaRedisVersion]; !strings.HasPrefix(v, "7.") {
		t.Errorf("meta %s: got %q; want 7.x", MetaRedisVersion, v)
	}
	if u := h.Meta[MetaTargetURL]; !strings.HasPrefix(u, "rediss://127.0.0.1:") {
		t.Errorf("meta %s: got %q; want rediss://127.0.0.1:…", MetaTargetURL, u)
	}
}

// TestContainerTarget runs three representative scenarios on the container
// target for hardened (an outage, a blackhole, kill -9 with AOF): each
// passes; a TLS fault, which only the process target can show, is not run.
func TestContainerTarget(t *testing.T) {
	needRedis(t)
	containertest.Need(t, target.LocalImage, "redis")
	deps := NewDeps(TargetOptions{Kind: target.KindContainer, Image: target.LocalImage})
	for _, name := range []string{"proxy_down", "blackhole", "kill_aof"} {
		t.Run(name, func(t *testing.T) {
			o := runOn(t, name, "hardened", deps)
			if o.Verdict != verdict.Pass {
				t.Errorf("verdict: got %s; want PASS", o.Verdict)
			}
			if got := savedHistory(t, o).Meta[MetaTargetKind]; got != "container" {
				t.Errorf("meta %s: got %q; want container", MetaTargetKind, got)
			}
		})
	}
	t.Run("tls_expired", func(t *testing.T) {
		o := runOn(t, "tls_expired", "hardened", deps)
		if o.Verdict != verdict.Inconclusive || !strings.Contains(strings.Join(o.Notes, " "), "fault tls_expired not available on target container") {
			t.Errorf("got %s %q; want INCONCLUSIVE, fault tls_expired not available on target container", o.Verdict, o.Notes)
		}
	})
}

// TestWatchBeforeWipe: in a run whose fault wipes Redis (kill_no_aof),
// the harness looks at the streams during the traffic: events
// acknowledged before the kill, gone from Redis after it, are in its
// looks, each with the time Redis stored it (by its entry ID), no earlier
// than its publish was called. A run without such a fault does not look.
func TestWatchBeforeWipe(t *testing.T) {
	t.Parallel()
	needRedis(t)
	h := savedHistory(t, runOn(t, "kill_no_aof", "hardened", DefaultDeps()))
	kill := h.Faults[0].Start
	calls := map[string]time.Duration{}
	before := 0
	for _, o := range h.Ops {
		if o.Kind == history.Publish && o.OK {
			calls[o.EventID] = o.Call
			if o.Return < kill {
				before++
			}
		}
	}
	seen := 0
	eachStored(t, h, history.StreamSeen, func(_, id string, stored time.Duration) {
		call, ok := calls[id]
		if !ok {
			return
		}
		if stored < call-10*time.Millisecond {
			t.Errorf("%s stored at %s, before its publish was called (%s)", id, stored, call)
		}
		if stored < kill {
			seen++
		}
	})
	if before == 0 || seen < before*9/10 {
		t.Errorf("looks during the traffic saw %d events stored before the kill; %d were acknowledged before it", seen, before)
	}
	for _, o := range savedHistory(t, runOn(t, "basic", "hardened", DefaultDeps())).Ops {
		if o.Kind == history.StreamSeen {
			t.Fatalf("basic (no fault wipes Redis): a look during the traffic at %s", o.Call)
		}
	}
}
