package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/impl/service"
	"github.com/gonogo/harness/target"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stallEvents and stallSize are the load: 3,000 events of 16 KB
// while one SSE reader is stalled.
const (
	stallEvents = 3000
	stallSize   = 16 << 10
)

// stallBound is the retained heap growth a stalled stream may cost with
// the default stream options (4 MiB queue, plus the batch being written):
// generous, and far below the 48 MB the events weigh.
const stallBound = 24 << 20

// shutdownBound is how long Shutdown may take with a stalled stream.
const shutdownBound = 5 * time.Second

// stalled opens the flow's SSE stream on a raw connection with a 4 KB
// receive buffer, reads the response headers, and never reads again.
func stalled(t *testing.T, base, flow string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	c, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /flows/%s/events HTTP/1.1\r\nHost: test\r\n\r\n", flow)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var head strings.Builder
	one := make([]byte, 1)
	for !strings.HasSuffix(head.String(), "\r\n\r\n") {
		_, err := c.Read(one)
		require.NoError(t, err, "reading the stalled stream's headers")
		head.Write(one)
	}
	require.True(t, strings.HasPrefix(head.String(), "HTTP/1.1 200"), "stalled stream: %s", head.String())
	return c
}

// heapInuse is the heap in use after a GC.
func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// growth is the heap in use now less base (0 if less).
func growth(base uint64) uint64 {
	now := heapInuse()
	return now - min(now, base)
}

// stallResult is what one run of stallRun measured.
type stallResult struct {
	growth   uint64        // largest retained heap growth over the run
	closed   bool          // the stalled stream was closed by the service
	got      []string      // what the normal client received, in order
	want     []string      // what was published, in order
	shutdown time.Duration // how long Shutdown took (the stalled client still connected)
	shutErr  error
}

// stallRun serves a hardened layer with opts, connects one stalled and one
// normal client to a flow, publishes n events of stallSize bytes (paced by
// the normal client, which keeps up), waits up to closeWait for the stalled
// stream to be closed, then shuts the service down.
func stallRun(t *testing.T, opts service.Options, n int, closeWait time.Duration) stallResult {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	cfg := conformance.Config(p, "A")
	cfg.PublishBudget = 5 * time.Second // the events go to Redis, not the outbox
	l, err := profiles.Default().New(context.Background(), "hardened", cfg)
	require.NoError(t, err)
	defer l.Close()
	svc := service.New(l, opts)
	base, err := svc.Start(context.Background(), "127.0.0.1:0")
	require.NoError(t, err)
	var res stallResult
	shut := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*shutdownBound)
		defer cancel()
		start := time.Now()
		res.shutErr = svc.Shutdown(ctx)
		res.shutdown = time.Since(start)
	}
	defer func() {
		if res.shutdown == 0 {
			shut()
		}
	}()

	stalled(t, base, "f")
	normal := dial(t, &http.Client{}, base+"/flows/f/events", "")
	var received atomic.Int64
	gotc := make(chan []string, 1)
	go func() {
		var got []string
		for f := range normal.frames {
			if f.data == "" {
				continue
			}
			var e impl.Event
			if json.Unmarshal([]byte(f.data), &e) == nil {
				got = append(got, e.ID)
				received.Add(1)
			}
		}
		gotc <- got
	}()
	require.Eventually(t, func() bool { return svc.Streams() == 2 }, 5*time.Second, 10*time.Millisecond)

	base0 := heapInuse()
	pad := strings.Repeat("x", stallSize)
	ctx := context.Background()
	for i := range n {
		e := impl.Event{ID: fmt.Sprintf("e%05d", i), FlowID: "f", Type: "BIG", Timestamp: time.Now().UTC(),
			Payload: json.RawMessage(`{"pad":"` + pad + `"}`)}
		require.NoError(t, l.Bus.Publish(ctx, e))
		res.want = append(res.want, e.ID)
		// The normal client keeps up: at most 64 events behind.
		deadline := time.Now().Add(10 * time.Second)
		for received.Load() < int64(i-64) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if i%250 == 249 {
			res.growth = max(res.growth, growth(base0))
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for received.Load() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	res.growth = max(res.growth, growth(base0))
	// The stalled stream ends once its queue overflowed or a write missed
	// its deadline (10 s by default).
	res.closed = waitFor(closeWait, func() bool { return svc.Streams() == 1 })
	t.Logf("heap in use: %d MiB at start, largest growth %d MiB; stalled stream closed: %v",
		base0>>20, res.growth>>20, res.closed)
	shut()
	normal.close()
	res.got = <-gotc
	t.Logf("shutdown took %s (err %v)", res.shutdown, res.shutErr)
	return res
}

func waitFor(d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return f()
}

// TestStalledConsumer (issue 12, item 3): one SSE reader that stops
// reading while 3,000 events of 16 KB are published costs bounded memory,
// loses its stream, slows no other client, and does not hold up shutdown.
func TestStalledConsumer(t *testing.T) {
	res := stallRun(t, service.Options{}, stallEvents, 15*time.Second)
	assert.Less(t, res.growth, uint64(stallBound), "retained heap growth with a stalled reader")
	assert.True(t, res.closed, "the stalled stream is closed")
	assert.Equal(t, res.want, res.got, "the normal client: every event once, in order")
	assert.NoError(t, res.shutErr, "shutdown")
	assert.Less(t, res.shutdown, shutdownBound, "shutdown with a stalled client connected")
}

// TestStalledWriteShutdown: a stream whose write is blocked on a reader
// that stopped (queue not full, write deadline far away) is ended at once
// by Shutdown. 600 events of 16 KB are more than the socket buffers hold.
func TestStalledWriteShutdown(t *testing.T) {
	res := stallRun(t, service.Options{Stream: service.StreamOptions{QueueEvents: -1, QueueBytes: -1, WriteTimeout: time.Hour}}, 600, 0)
	assert.NoError(t, res.shutErr, "shutdown")
	assert.Less(t, res.shutdown, shutdownBound, "shutdown with a write blocked on a stalled reader")
}

// TestStalledConsumerMutant: with the bounds and deadlines off (the
// defect, as the service had it) the same runs fail: memory grows with
// what is published, the stalled stream is never closed, and shutdown
// waits for the blocked write.
func TestStalledConsumerMutant(t *testing.T) {
	res := stallRun(t, service.Options{Stream: service.StreamOptions{QueueEvents: -1, QueueBytes: -1, WriteTimeout: -1}}, stallEvents, 15*time.Second)
	assert.Greater(t, res.growth, uint64(stallBound), "mutant: retained heap growth must exceed the bound")
	assert.False(t, res.closed, "mutant: the stalled stream is never closed")
	assert.True(t, res.shutErr != nil || res.shutdown >= shutdownBound, "mutant: shutdown must be held up (took %s)", res.shutdown)
}

// TestStreamFields: a stream starts with the retry: field (100 ms by
// default) and hardened events carry payload {} and source "system" when
// published without them, as the contract's example shows.
func TestStreamFields(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	in := start(t, "hardened", conformance.Config(p, "A"), service.Options{})
	resp, err := http.Get(in.url + "/flows/f/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	first, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "retry: 100\n", first, "first line of the stream")
	code, body := do(t, http.MethodPost, in.url+"/flows/f/events", `{"id":"bare","event_type":"T"}`)
	require.Equal(t, http.StatusCreated, code, "publish: %v", body)
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var e map[string]any
			require.NoError(t, json.Unmarshal([]byte(data), &e))
			assert.Equal(t, map[string]any{}, e["payload"], "payload of an event published without one")
			assert.Equal(t, "system", e["source"], "source of an event published without one")
			return
		}
	}
}
