package chaos

import (
	"context"
	"errors"
	"strconv"
	"syscall"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/target"
)

// startToxiproxyAPI serves a Toxiproxy API on a free loopback port, as the
// toxiproxy-server binary does. It runs until the test binary exits (the
// server has no shutdown).
func startToxiproxyAPI(t *testing.T) string {
	t.Helper()
	port, err := target.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	go srv.Listen("127.0.0.1", strconv.Itoa(port))
	return "127.0.0.1:" + strconv.Itoa(port)
}

// externalProxy starts an external Toxiproxy API and a redis-server, and
// has the API proxy "redis" to it (closed at cleanup).
func externalProxy(t *testing.T) (*External, *target.Process, Proxy) {
	t.Helper()
	api := startToxiproxyAPI(t)
	var ext *External
	eventually(t, 5*time.Second, "toxiproxy API up", func() bool {
		var err error
		ext, err = NewExternal(api)
		return err == nil
	})
	r := startRedis(t, target.ProcessOptions{})
	p, err := ext.NewProxy("redis", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return ext, r, p
}

func TestExternalProxy(t *testing.T) {
	ctx := context.Background()
	_, r, p := externalProxy(t)
	env := Env{Target: r, Proxy: p}
	rdb := rclient(t, p.Listen(), nil)
	rdb.Ping(ctx)

	f := Latency{Latency: 100 * time.Millisecond}
	inject(t, env, f)
	if d := timed(func() { rdb.Ping(ctx) }); d < 100*time.Millisecond || d > 500*time.Millisecond {
		t.Fatalf("PING took %s; want >= 100ms and < 500ms", d)
	}
	undo(t, env, f)
	undo(t, env, f) // removing a toxic that is gone is no error

	inject(t, env, Down{})
	if err := pingErr(t, p.Listen(), nil); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("PING with the proxy down: got %v; want connection refused", err)
	}
	undo(t, env, Down{})
	if err := pingErr(t, p.Listen(), nil); err != nil {
		t.Fatalf("PING after undo: %v", err)
	}
	if err := (Quota{Limit: 1}).Available(env); err == nil {
		t.Fatal("quota available on an external proxy; want refused")
	}
}

func TestNewExternalUnreachable(t *testing.T) {
	port, err := target.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewExternal("127.0.0.1:" + strconv.Itoa(port))
	if exitcode.Of(err) != exitcode.BadInput {
		t.Fatalf("got %v (exit %d); want exit %d", err, exitcode.Of(err), exitcode.BadInput)
	}
}

func TestExternalAttach(t *testing.T) {
	ctx := context.Background()
	ext, r, p := externalProxy(t)
	// Left behind by an earlier run: a toxic, the proxy disabled.
	if err := p.AddToxic(ctx, Toxic{Name: "left", Type: "latency", Attributes: map[string]any{"latency": 1000}}); err != nil {
		t.Fatal(err)
	}
	if err := p.SetEnabled(ctx, false); err != nil {
		t.Fatal(err)
	}
	a, err := ext.Proxy("redis")
	if err != nil {
		t.Fatal(err)
	}
	if a.Listen() != p.Listen() || a.Upstream() != r.Addr() {
		t.Fatalf("attached listen %s upstream %s; want %s, %s", a.Listen(), a.Upstream(), p.Listen(), r.Addr())
	}
	if d := timed(func() {
		if err := pingErr(t, a.Listen(), nil); err != nil {
			t.Errorf("PING through the attached proxy: %v", err)
		}
	}); d > 500*time.Millisecond {
		t.Errorf("PING took %s: the toxic left behind was not removed", d)
	}
	if _, err := ext.Proxy("nope"); exitcode.Of(err) != exitcode.BadInput {
		t.Errorf("attaching an unknown proxy: got %v; want exit %d", err, exitcode.BadInput)
	}
}
