package scenarios

import (
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
)

// TestThrottledReadRate: a slow consumer's socket delivers every byte, no
// faster than its read rate (a lower bound only: a loaded machine reads
// slower still, never faster).
func TestThrottledReadRate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size, rate = 48 << 10, 64 << 10 // 0.75 s at rate
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(make([]byte, size))
	}()
	tr := slowHTTPClient(&Consumer{ReadRate: rate, RecvBuffer: 4096}, &gate{}).Transport.(*http.Transport)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	c, err := tr.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != size {
		t.Fatalf("read %d bytes (%v); want %d", n, err, size)
	}
	if el, min := time.Since(start), time.Duration(float64(size)/rate*float64(time.Second))*9/10; el < min {
		t.Errorf("read %d bytes in %s; want at least %s at %d bytes/s", size, el, min, rate)
	}
}

// TestMove: a reconnecting client goes where workload.sse.move says.
func TestMove(t *testing.T) {
	r := &run{layers: make([]*impl.Layer, 3)}
	c := &sseClient{rng: rand.New(rand.NewPCG(1, 2))}
	for _, tt := range []struct {
		move string
		want []int
	}{{"same", []int{1, 1, 1}}, {"other", []int{2, 0, 1}}} {
		r.spec.Workload.SSE.Move = tt.move
		inst := 1
		for i, want := range tt.want {
			if inst = r.move(c, inst); inst != want {
				t.Errorf("move %s, step %d: got instance %d; want %d", tt.move, i, inst, want)
			}
		}
	}
	r.spec.Workload.SSE.Move = "random"
	seen := map[int]bool{}
	for range 100 {
		seen[r.move(c, 0)] = true
	}
	if len(seen) != 3 {
		t.Errorf("move random: 100 moves reached instances %v; want all 3", seen)
	}
}

// TestGateHoldsReads: a stalled consumer's socket is not read while its
// gate is shut, and closing the connection ends a read waiting there.
func TestGateHoldsReads(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	g := &gate{}
	start := time.Now() // before the gate's deadline is set: elapsed is then at least 300 ms
	g.until.Store(start.Add(300 * time.Millisecond).UnixNano())
	c := &throttled{Conn: a, gate: g, closed: make(chan struct{})}
	go b.Write([]byte("x"))
	buf := make([]byte, 1)
	if n, err := c.Read(buf); n != 1 || err != nil {
		t.Fatalf("read: %d, %v; want 1 byte", n, err)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("read returned after %s; want it held at the gate for 300ms", el)
	}
	g.until.Store(math.MaxInt64)
	done := make(chan error, 1)
	go func() { _, err := c.Read(buf); done <- err }()
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("read after close: %v; want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read at a shut gate did not end when the connection closed")
	}
}
