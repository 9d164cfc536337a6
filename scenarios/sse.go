package scenarios

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/httplayer"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/scenarios/check"
)

// sseClient is one logical SSE client: it follows one flow across as many
// connections as it makes, reconnecting as a browser's EventSource does.
type sseClient struct {
	name string
	flow string
	inst int // instance of the first connection
	rng  *rand.Rand
	// read, when set, makes the client a consumer that falls behind.
	read *Consumer
	// events counts what the client received over all its connections.
	events int
	// stalled is set once the client has stalled (it stalls once).
	stalled bool
	// gate holds the client's socket unread while it is stalled.
	gate gate
}

// gate holds reads back until a time (unix ns in until; 0: open).
type gate struct{ until atomic.Int64 }

// wait returns when the gate opens (true) or closed is closed (false).
func (g *gate) wait(closed <-chan struct{}) bool {
	for {
		d := time.Until(time.Unix(0, g.until.Load()))
		if d <= 0 {
			return true
		}
		t := time.NewTimer(min(d, 50*time.Millisecond))
		select {
		case <-closed:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// startSSE starts the SSE clients of the workload: Clients per flow, spread
// over the instances, then the slow and stalled consumers on the first
// flow.
func (r *run) startSSE(ctx context.Context, start func(c *sseClient)) {
	w := r.spec.Workload.SSE
	for f := 0; f < w.Flows; f++ {
		for c := 0; c < w.Clients; c++ {
			start(&sseClient{name: fmt.Sprintf("sse-%d-%d", f, c), flow: flowName(f), inst: (f*w.Clients + c) % len(r.layers), rng: r.childRand()})
		}
	}
	for _, k := range []struct {
		kind string
		c    *Consumer
	}{{"rate", &w.Slow}, {"stall", &w.Stalled}} {
		for i := 0; i < k.c.Clients; i++ {
			name := fmt.Sprintf("%s%s-%d", check.SlowClientPrefix, k.kind, i)
			start(&sseClient{name: name, flow: flowName(0), inst: i % len(r.layers), rng: r.childRand(), read: k.c})
		}
	}
}

// subscriber follows c's flow until ctx ends. Each connection is recorded
// as a subscribe op (Seq numbers it, Value names the instance, Values[0]
// the Last-Event-ID sent) and each event as a deliver op with the same
// Seq. A connection ends when the server ends it, or when the reconnect
// timer (workload.sse.reconnect, jittered) fires; the client then waits
// the stream's "retry:" time (else workload.sse.retry) and reconnects,
// to the instance workload.sse.move picks, sending the last cursor it
// saw. A failed connect doubles the wait, up to max_backoff, and moves
// again; after attempts failures in a row the client gives up.
func (r *run) subscriber(ctx context.Context, c *sseClient) {
	w := r.spec.Workload.SSE
	var cursor string
	var retry atomic.Int64 // the server's retry: time, ns; 0 none
	inst, failures := c.inst, 0
	for seq := int64(1); ctx.Err() == nil; seq++ {
		sub := history.Op{Client: c.name, Kind: history.Subscribe, Flow: c.flow, Seq: seq, Value: instanceID(inst)}
		if cursor != "" {
			sub.Values = []string{cursor}
		}
		cctx, cancel := context.WithCancel(ctx)
		if w.Reconnect > 0 {
			d := w.Reconnect.D() - w.Jitter.D() + time.Duration(c.rng.Int64N(2*int64(w.Jitter)+1))
			t := time.AfterFunc(d, cancel)
			context.AfterFunc(cctx, func() { t.Stop() })
		}
		// While inst is down (an instance fault) the client connects to
		// the instance the engine routes it to.
		l, to, release, _ := r.route(inst, true)
		sub.Value = r.instanceName(to)
		var start atomic.Value // the stream's start cursor (string)
		ch, err := r.open(cctx, c, to, l, cursor, httplayer.Hooks{
			Retry: func(d time.Duration) { retry.Store(int64(d)) },
			Start: func(s string) { start.Store(s) },
		})
		release()
		// Open returns once the stream is subscribed: events published
		// from now on are the connection's, those before it the catch-up's.
		sub.Call = r.rec.Now()
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return
			}
			sub.Return, sub.Err, sub.Mode = sub.Call, err.Error(), l.Manager.Mode()
			r.rec.Add(sub)
			failures++
			if failures >= w.Attempts {
				r.notes.add("SSE client %s gave up on %s after %d failed connects in a row: %v", c.name, c.flow, failures, err)
				return
			}
			wait := min(r.retryWait(&retry)<<min(failures, 16), w.MaxBackoff.D())
			if !sleepCtx(ctx, wait) {
				return
			}
			inst = r.move(c, inst)
			continue
		}
		failures = 0
		for e := range ch {
			now := r.rec.Now()
			r.rec.Add(history.Op{Client: c.name, Kind: history.Deliver, Flow: c.flow, EventID: e.ID, Value: e.Cursor, Seq: seq, Call: now, Return: now, OK: true})
			if e.Cursor != "" {
				cursor = e.Cursor
			}
			c.events++
			r.stall(ctx, c)
		}
		// A stream that named where it starts gives a client that got no
		// event yet its first cursor, as EventSource's lastEventId.
		if s, _ := start.Load().(string); s != "" && cursor == "" {
			cursor = s
		}
		timer := cctx.Err() != nil && ctx.Err() == nil
		cancel()
		sub.OK = true
		r.record(ctx, sub, l, nil)
		if ctx.Err() != nil {
			return
		}
		if !timer {
			fmt.Fprintf(r.logw, "%s: stream %d of %s on %s ended at %s; resuming after %q\n", c.name, seq, c.flow, sub.Value, sub.Return, cursor)
		}
		if !sleepCtx(ctx, r.retryWait(&retry)) {
			return
		}
		inst = r.move(c, inst)
	}
}

// retryWait is the server's retry: time when it sent one, else
// workload.sse.retry.
func (r *run) retryWait(retry *atomic.Int64) time.Duration {
	if d := retry.Load(); d > 0 {
		return time.Duration(d)
	}
	return r.spec.Workload.SSE.Retry.D()
}

// move picks the instance of c's next connection.
func (r *run) move(c *sseClient, inst int) int {
	n := len(r.layers)
	switch r.spec.Workload.SSE.Move {
	case "other":
		return (inst + 1) % n
	case "random":
		return c.rng.IntN(n)
	}
	return inst
}

// stall blocks a stalled consumer, once, when it has received its
// stall.after events or the run reached stall.at, for stall.for (default:
// until ctx ends). Its socket is not read meanwhile (the gate): the
// connection stays open while the events back up into its receive buffer
// and the server.
func (r *run) stall(ctx context.Context, c *sseClient) {
	st := c.read
	if st == nil || c.stalled || (st.After == 0 || c.events < st.After) && (st.At == 0 || r.rec.Now() < st.At.D()) {
		return
	}
	c.stalled = true
	fmt.Fprintf(r.logw, "%s: stops reading at %s after %d events\n", c.name, r.rec.Now(), c.events)
	if st.For == 0 {
		c.gate.until.Store(math.MaxInt64)
		<-ctx.Done()
		return
	}
	c.gate.until.Store(time.Now().Add(st.For.D()).UnixNano())
	sleepCtx(ctx, st.For.D())
	fmt.Fprintf(r.logw, "%s: reads again at %s\n", c.name, r.rec.Now())
}

// open opens one connection of c to instance inst: the service's SSE
// stream when the instance is served over HTTP (through a throttled
// socket for a consumer with a read rate), else the layer's Subscribe
// (whose start cursor, when the layer names one, goes to h.Start as the
// service's connected frame would).
func (r *run) open(ctx context.Context, c *sseClient, inst int, l *impl.Layer, cursor string, h httplayer.Hooks) (<-chan impl.Event, error) {
	if len(r.bases) <= inst {
		ch, start, err := impl.SubscribeAt(counter.WithOp(ctx, history.Subscribe), l.Bus, c.flow, cursor)
		if err == nil && start != cursor {
			h.Start(start)
		}
		return ch, err
	}
	hc := http.DefaultClient
	if c.read != nil {
		hc = slowHTTPClient(c.read, &c.gate)
	}
	return httplayer.SubscribeWith(ctx, hc, r.bases[inst], c.flow, cursor, h)
}

// slowHTTPClient makes one connection per stream, with a receive buffer of
// RecvBuffer bytes, reading at most ReadRate bytes per second (0: as fast
// as it can) while g is open.
func slowHTTPClient(cs *Consumer, g *gate) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, cs.RecvBuffer)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &throttled{Conn: conn, rate: cs.ReadRate, gate: g, closed: make(chan struct{})}, nil
		},
	}
	return &http.Client{Transport: tr}
}

// throttled reads nothing while its gate is shut, and at most rate bytes
// per second (when rate > 0): each read takes at most a twentieth of a
// second's worth, then waits until the bytes read are due.
type throttled struct {
	net.Conn
	rate      int
	gate      *gate
	closed    chan struct{}
	closeOnce sync.Once
	start     time.Time
	read      int64
}

func (t *throttled) Read(p []byte) (int, error) {
	if !t.gate.wait(t.closed) {
		return 0, net.ErrClosed
	}
	if t.rate == 0 {
		return t.Conn.Read(p)
	}
	if t.start.IsZero() {
		t.start = time.Now()
	}
	if chunk := max(t.rate/20, 1); len(p) > chunk {
		p = p[:chunk]
	}
	n, err := t.Conn.Read(p)
	t.read += int64(n)
	due := t.start.Add(time.Duration(float64(t.read) / float64(t.rate) * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
	return n, err
}

// Close ends a read waiting at the gate, then closes the connection.
func (t *throttled) Close() error {
	t.closeOnce.Do(func() { close(t.closed) })
	return t.Conn.Close()
}
