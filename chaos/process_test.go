package chaos

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/target"
)

func TestKillAndUndoRestarts(t *testing.T) {
	ctx := context.Background()
	r, p, env := setup(t, target.ProcessOptions{})
	inject(t, env, Kill{})
	if r.Pid() != 0 {
		t.Fatalf("pid %d after kill; want 0", r.Pid())
	}
	if err := pingErr(t, p.Listen(), nil); err == nil {
		t.Fatal("PING through the proxy succeeded with Redis killed")
	}
	undo(t, env, Kill{})
	if err := rclient(t, p.Listen(), nil).Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after undo: %v", err)
	}
}

func TestPauseHangsCalls(t *testing.T) {
	ctx := context.Background()
	_, p, env := setup(t, target.ProcessOptions{})
	rdb := rclient(t, p.Listen(), nil)
	rdb.Ping(ctx)
	inject(t, env, Pause{})
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := rdb.Ping(cctx).Err(); !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		t.Fatalf("PING of a paused server: got %v; want a timeout", err)
	}
	undo(t, env, Pause{})
	if err := rclient(t, p.Listen(), nil).Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after undo: %v", err)
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func TestRestartAndAOF(t *testing.T) {
	tests := []struct {
		aof, hard bool
		survives  bool
	}{
		{aof: true, survives: true},
		{aof: true, hard: true, survives: true},
		{aof: false, survives: false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("aof=%v hard=%v", tt.aof, tt.hard), func(t *testing.T) {
			ctx := context.Background()
			r, p, env := setup(t, target.ProcessOptions{AOF: tt.aof})
			if err := rclient(t, r.Addr(), nil).Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			pid := r.Pid()
			inject(t, env, Restart{Hard: tt.hard})
			if r.Pid() == pid || r.Pid() == 0 {
				t.Fatalf("pid %d after restart; want a new process (was %d)", r.Pid(), pid)
			}
			got, err := rclient(t, p.Listen(), nil).Get(ctx, "k").Result()
			if tt.survives && (err != nil || got != "v") {
				t.Fatalf("GET k after restart: %q, %v; want v (AOF)", got, err)
			}
			if !tt.survives && !errors.Is(err, redis.Nil) {
				t.Fatalf("GET k after restart: %q, %v; want nil (no AOF)", got, err)
			}
		})
	}
}

func TestMaxMemoryEvictsAndRestores(t *testing.T) {
	ctx := context.Background()
	r, _, env := setup(t, target.ProcessOptions{})
	f := &MaxMemory{Bytes: 4 << 20}
	inject(t, env, f)
	if got, _ := r.ConfigGet(ctx, "maxmemory-policy"); got != "allkeys-lru" {
		t.Fatalf("maxmemory-policy %q; want allkeys-lru", got)
	}
	rdb := rclient(t, r.Addr(), nil)
	value := strings.Repeat("x", 10<<10)
	for i := 0; i < 1000; i++ { // 10 MB into 4 MB
		if err := rdb.Set(ctx, fmt.Sprint("k", i), value, 0).Err(); err != nil {
			t.Fatalf("SET %d: %v", i, err)
		}
	}
	if n := rdb.DBSize(ctx).Val(); n >= 1000 || n == 0 {
		t.Fatalf("DBSIZE %d after writing 10MB under a 4MB maxmemory; want evictions", n)
	}
	undo(t, env, f)
	for key, want := range map[string]string{"maxmemory": "0", "maxmemory-policy": "noeviction"} {
		if got, err := r.ConfigGet(ctx, key); got != want || err != nil {
			t.Errorf("%s %q (%v) after undo; want %q", key, got, err, want)
		}
	}
}

func TestDestructiveFaultsRefusedOnURLTargets(t *testing.T) {
	r := startRedis(t, target.ProcessOptions{})
	u, err := target.OpenURL(context.Background(), r.URL(), target.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	p := newProxy(t, r.Addr())
	faults := []Fault{Kill{}, Pause{}, Restart{}, Restart{Hard: true}, &MaxMemory{Bytes: 1 << 20}, &TLSFault{Kind: TLSExpired},
		&Failover{}, &PrimaryKill{}, &PrimaryPause{}, ReplicaLag{}}
	for _, f := range faults {
		env := Env{Target: u, Proxy: p}
		err := f.Available(env)
		if err == nil || !strings.Contains(err.Error(), "does not own") {
			t.Errorf("%s on a URL target: got %v; want refused", f.Name(), err)
		}
		if err := f.Inject(context.Background(), env); err == nil {
			t.Errorf("%s injected on a URL target; want refused", f.Name())
		}
		env.AllowDestructive = true
		if err := f.Available(env); err == nil || !strings.Contains(err.Error(), "cannot") {
			t.Errorf("%s on a URL target with destructive allowed: got %v; want it lacks the ability", f.Name(), err)
		}
	}
	// Network faults act on the proxy, so a URL target takes them.
	if err := (Latency{Latency: time.Millisecond}).Available(Env{Target: u, Proxy: p}); err != nil {
		t.Errorf("latency on a URL target: %v; want available", err)
	}
}

func TestAvailability(t *testing.T) {
	plain := startRedis(t, target.ProcessOptions{})
	tlsTarget := startRedis(t, target.ProcessOptions{TLS: true})
	withCert := startRedis(t, target.ProcessOptions{TLS: true, TLSAuthClients: true})
	p := newProxy(t, plain.Addr())
	tests := []struct {
		f    Fault
		env  Env
		want string // "" means available
	}{
		{Down{}, Env{Target: plain}, "needs a proxy"},
		{&Flapping{Period: time.Second}, Env{Target: plain}, "needs a proxy"},
		{Quota{Limit: 1}, Env{Target: plain, Proxy: p}, ""},
		{Quota{Limit: 1}, Env{Target: tlsTarget, Proxy: p}, "speaks TLS"},
		{ConnLimit{Limit: 1}, Env{Target: plain, Proxy: fakeExternal{}}, "embedded proxy"},
		{Kill{}, Env{Target: plain}, ""},
		{&Failover{}, Env{Target: plain}, "a process target cannot fail over (it has no replicas and no sentinels)"},
		{&PrimaryKill{}, Env{Target: plain}, "a process target cannot kill its primary and promote a replica"},
		{&PrimaryPause{}, Env{Target: plain}, "a process target cannot pause its primary"},
		{ReplicaLag{}, Env{Target: plain}, "a process target cannot hold its replicas back"},
		{Down{}, Env{Target: sentinelKind{plain}, Proxy: p}, "in front of one sentinel only"},
		{Quota{Limit: 1}, Env{Target: sentinelKind{plain}, Proxy: p}, "in front of one sentinel only"},
		{&TLSFault{Kind: TLSExpired}, Env{Target: plain}, "needs a TLS target"},
		{&TLSFault{Kind: TLSExpired}, Env{Target: tlsTarget}, ""},
		{&TLSFault{Kind: TLSPlainToTLS}, Env{Target: tlsTarget}, "needs a plain target"},
		{&TLSFault{Kind: TLSPlainToTLS}, Env{Target: plain}, ""},
		{&TLSFault{Kind: TLSClientCert}, Env{Target: withCert}, "present no certificate"},
		{&TLSFault{Kind: TLSHandshakeStall}, Env{Target: tlsTarget}, "needs a proxy"},
		{&TLSFault{Kind: "bogus"}, Env{Target: tlsTarget}, "unknown TLS fault kind"},
	}
	for _, tt := range tests {
		err := tt.f.Available(tt.env)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v; want available", tt.f.Name(), err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got %v; want an error saying %q", tt.f.Name(), err, tt.want)
		}
	}
}

// sentinelKind is a target that says it is a sentinel target: what the
// network faults refuse is decided by the kind alone.
type sentinelKind struct{ target.Target }

func (sentinelKind) Kind() target.Kind { return target.KindSentinel }

// fakeExternal stands for a proxy that is not a Limiter; its methods are
// never called.
type fakeExternal struct{ Proxy }
