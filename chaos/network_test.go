package chaos

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonogo/harness/target"
)

// inject injects f and registers its Undo for the end of the test.
func inject(t *testing.T, env Env, f Fault) {
	t.Helper()
	if err := f.Available(env); err != nil {
		t.Fatalf("%s not available: %v", f.Name(), err)
	}
	if err := f.Inject(context.Background(), env); err != nil {
		t.Fatalf("inject %s: %v", f.Name(), err)
	}
	t.Cleanup(func() { f.Undo(context.Background(), env) })
}

func undo(t *testing.T, env Env, f Fault) {
	t.Helper()
	if err := f.Undo(context.Background(), env); err != nil {
		t.Fatalf("undo %s: %v", f.Name(), err)
	}
}

func TestLatency(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		f    Latency
	}{
		{"downstream", Latency{Latency: 100 * time.Millisecond}},
		{"upstream with jitter", Latency{Latency: 100 * time.Millisecond, Jitter: 10 * time.Millisecond, Stream: Upstream}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, p, env := setup(t, target.ProcessOptions{})
			rdb := rclient(t, p.Listen(), nil)
			if err := rdb.Ping(ctx).Err(); err != nil { // warm the connection
				t.Fatal(err)
			}
			inject(t, env, tt.f)
			low := tt.f.Latency - tt.f.Jitter
			for i := 0; i < 3; i++ {
				d := timed(func() { rdb.Ping(ctx) })
				t.Logf("PING %s", d)
				if d < low || d > tt.f.Latency+400*time.Millisecond {
					t.Fatalf("PING took %s; want >= %s and < %s", d, low, tt.f.Latency+400*time.Millisecond)
				}
			}
			undo(t, env, tt.f)
			if d := timed(func() { rdb.Ping(ctx) }); d >= 100*time.Millisecond {
				t.Fatalf("PING took %s after undo; want < 100ms", d)
			}
		})
	}
}

func TestLatencyToxicityNearZeroSparesConnections(t *testing.T) {
	ctx := context.Background()
	_, p, env := setup(t, target.ProcessOptions{})
	inject(t, env, Latency{Latency: 300 * time.Millisecond, Toxicity: 0.0001})
	rdb := rclient(t, p.Listen(), nil)
	if d := timed(func() { rdb.Ping(ctx) }); d >= 300*time.Millisecond {
		t.Fatalf("PING took %s with toxicity 0.0001; want < 300ms", d)
	}
}

func TestTimeoutBlackholes(t *testing.T) {
	ctx := context.Background()
	_, p, env := setup(t, target.ProcessOptions{})
	rdb := rclient(t, p.Listen(), nil)
	rdb.Ping(ctx)
	f := Timeout{Stream: Upstream}
	inject(t, env, f)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	var err error
	d := timed(func() { err = rdb.Ping(cctx).Err() })
	var ne net.Error
	if !(errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("PING with a 50ms deadline: got %v; want a timeout", err)
	}
	if d > time.Second {
		t.Fatalf("PING gave up after %s; want about 50ms", d)
	}
	undo(t, env, f)
	if err := pingErr(t, p.Listen(), nil); err != nil {
		t.Fatalf("PING after undo: %v", err)
	}
}

func TestDownRefuses(t *testing.T) {
	ctx := context.Background()
	_, p, env := setup(t, target.ProcessOptions{})
	held := rclient(t, p.Listen(), nil)
	held.Ping(ctx)
	addr := p.Listen()
	inject(t, env, Down{})
	if err := pingErr(t, addr, nil); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("PING of a new client: got %v; want connection refused", err)
	}
	if err := held.Ping(ctx).Err(); err == nil {
		t.Fatal("PING on a connection open before down succeeded; want it dropped")
	}
	undo(t, env, Down{})
	if p.Listen() != addr {
		t.Fatalf("listen %s after undo; want the same %s", p.Listen(), addr)
	}
	if err := pingErr(t, addr, nil); err != nil {
		t.Fatalf("PING after undo: %v", err)
	}
}

func TestResetPeer(t *testing.T) {
	_, p, env := setup(t, target.ProcessOptions{})
	inject(t, env, ResetPeer{Stream: Upstream})
	err := pingErr(t, p.Listen(), nil)
	if !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF)) {
		t.Fatalf("PING: got %v; want connection reset", err)
	}
}

func TestSlicerSplitsReplies(t *testing.T) {
	ctx := context.Background()
	r, p, env := setup(t, target.ProcessOptions{})
	value := strings.Repeat("v", 40)
	rclient(t, r.Addr(), nil).Set(ctx, "k", value, 0)
	inject(t, env, Slicer{AverageSize: 1, Delay: time.Millisecond})
	c := dialRaw(t, p.Listen())
	c.send(t, "GET k")
	want := "$40\r\n" + value + "\r\n"
	var got []byte
	reads := 0
	buf := make([]byte, 1024)
	for len(got) < len(want) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
		reads++
	}
	if string(got) != want || reads < 10 {
		t.Fatalf("got %q in %d reads; want %q in >= 10 reads", got, reads, want)
	}
}

func TestLimitDataCutsTheStream(t *testing.T) {
	ctx := context.Background()
	r, p, env := setup(t, target.ProcessOptions{})
	rclient(t, r.Addr(), nil).Set(ctx, "k", strings.Repeat("v", 100), 0)
	inject(t, env, LimitData{Bytes: 10})
	c := dialRaw(t, p.Listen())
	c.send(t, "GET k")
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("read %d bytes (%q) before close; want 10", len(got), got)
	}
}

func TestBandwidthSlowsLargeReplies(t *testing.T) {
	ctx := context.Background()
	r, p, env := setup(t, target.ProcessOptions{})
	rclient(t, r.Addr(), nil).Set(ctx, "k", strings.Repeat("v", 5*1024), 0)
	rdb := rclient(t, p.Listen(), nil)
	if d := timed(func() { rdb.Get(ctx, "k") }); d > 200*time.Millisecond {
		t.Fatalf("GET of 5KB took %s without the toxic; want < 200ms", d)
	}
	inject(t, env, Bandwidth{Rate: 10})
	var err error
	d := timed(func() { err = rdb.Get(ctx, "k").Err() })
	t.Logf("GET of 5KB at 10KB/s: %s", d)
	if err != nil || d < 400*time.Millisecond {
		t.Fatalf("GET of 5KB at 10KB/s took %s (%v); want >= 400ms", d, err)
	}
}

func TestSlowCloseDelaysTheClose(t *testing.T) {
	_, p, env := setup(t, target.ProcessOptions{})
	inject(t, env, SlowClose{Delay: 300 * time.Millisecond})
	c := dialRaw(t, p.Listen())
	var got []byte
	d := timed(func() {
		c.send(t, "QUIT")
		got, _ = io.ReadAll(c)
	})
	if string(got) != "+OK\r\n" || d < 300*time.Millisecond {
		t.Fatalf("QUIT answered %q and closed after %s; want +OK and >= 300ms", got, d)
	}
}

func TestFlappingToggles(t *testing.T) {
	_, p, env := setup(t, target.ProcessOptions{})
	f := &Flapping{Period: 100 * time.Millisecond}
	inject(t, env, f)
	if err := f.Inject(context.Background(), env); err == nil {
		t.Fatal("second Inject succeeded; want an error")
	}
	var up, refused bool
	eventually(t, 3*time.Second, "both refused and accepted dials", func() bool {
		c, err := net.DialTimeout("tcp", p.Listen(), 100*time.Millisecond)
		if err == nil {
			up = true
			c.Close()
		} else {
			refused = true
		}
		return up && refused
	})
	undo(t, env, f)
	for i := 0; i < 10; i++ { // 3 periods: it stays up
		if err := pingErr(t, p.Listen(), nil); err != nil {
			t.Fatalf("PING %d after undo: %v", i, err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	undo(t, env, f) // twice is safe
}

func TestUndoAfterFailedInjectIsSafe(t *testing.T) {
	_, p, env := setup(t, target.ProcessOptions{})
	bad := Latency{Latency: time.Millisecond, Stream: "sideways"}
	if err := bad.Inject(context.Background(), env); err == nil {
		t.Fatal("inject with a bad stream succeeded; want an error")
	}
	for _, f := range []Fault{bad, Timeout{}, &MaxMemory{}, &TLSFault{Kind: TLSExpired}, &Flapping{}} {
		if err := f.Undo(context.Background(), env); err != nil {
			t.Errorf("undo %s without inject: %v", f.Name(), err)
		}
	}
	if err := pingErr(t, p.Listen(), nil); err != nil {
		t.Fatalf("PING: %v", err)
	}
}
