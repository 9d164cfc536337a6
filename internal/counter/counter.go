// Package counter is a go-redis hook that counts, per operation kind, the
// round trips, commands and dials a client makes, and the bytes its
// connections carry (all kinds together). One ProcessHook call is one
// round trip with one command; one ProcessPipelineHook call is one round trip
// carrying len(cmds) commands. Set MaxRetries to -1 on the client when
// counting exactly, or retries show up as extra round trips.
package counter

import (
	"context"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/redis/go-redis/v9"
)

type opKey struct{}

// WithOp tags ctx so that Redis traffic made under it is counted under op.
func WithOp(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, opKey{}, op)
}

// Op returns the operation kind ctx was tagged with, or "other".
func Op(ctx context.Context) string {
	if op, ok := ctx.Value(opKey{}).(string); ok {
		return op
	}
	return "other"
}

// Counts is what was counted for one operation kind.
type Counts struct {
	RoundTrips int64            `json:"round_trips"`
	Commands   int64            `json:"commands"`
	Errors     int64            `json:"errors"`
	ByCommand  map[string]int64 `json:"by_command,omitempty"`
}

type counts struct {
	roundTrips, commands, errors atomic.Int64
	mu                           sync.Mutex
	byCommand                    map[string]int64
}

// Hook counts traffic. The zero value is not usable; use New.
type Hook struct {
	mu                       sync.RWMutex
	ops                      map[string]*counts
	dials, bytesOut, bytesIn atomic.Int64
}

// New returns an empty counting hook.
func New() *Hook { return &Hook{ops: map[string]*counts{}} }

var _ redis.Hook = (*Hook)(nil)

func (h *Hook) get(op string) *counts {
	h.mu.RLock()
	c := h.ops[op]
	h.mu.RUnlock()
	if c != nil {
		return c
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c = h.ops[op]; c == nil {
		c = &counts{byCommand: map[string]int64{}}
		h.ops[op] = c
	}
	return c
}

func (c *counts) add(cmds []redis.Cmder, err error) {
	c.roundTrips.Add(1)
	c.commands.Add(int64(len(cmds)))
	if err != nil && err != redis.Nil {
		c.errors.Add(1)
	}
	c.mu.Lock()
	for _, cmd := range cmds {
		c.byCommand[cmd.Name()]++
	}
	c.mu.Unlock()
}

// DialHook counts new connections, and wraps each to count the bytes it
// carries (the RESP bytes: inside TLS, when the client dials TLS).
func (h *Hook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		h.dials.Add(1)
		c, err := next(ctx, network, addr)
		if err != nil {
			return c, err
		}
		cc := countingConn{Conn: c, h: h}
		if _, ok := c.(syscall.Conn); ok {
			return countingSysConn{cc}, nil
		}
		return cc, nil
	}
}

// countingConn counts what a connection reads and writes. It shows
// go-redis's socket health checks (which look for syscall.Conn on the
// connection, then unwrap NetConn) the connection it wraps: a TCP
// connection is still checked, a TLS one still not.
type countingConn struct {
	net.Conn
	h *Hook
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.h.bytesIn.Add(int64(n))
	return n, err
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.h.bytesOut.Add(int64(n))
	return n, err
}

// NetConn returns the wrapped connection.
func (c countingConn) NetConn() net.Conn { return c.Conn }

// countingSysConn is a countingConn over a connection with a file
// descriptor.
type countingSysConn struct{ countingConn }

func (c countingSysConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

// Bytes is what the hook's connections wrote and read so far.
func (h *Hook) Bytes() (out, in int64) { return h.bytesOut.Load(), h.bytesIn.Load() }

// ProcessHook counts one round trip with one command.
func (h *Hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		cmds := []redis.Cmder{cmd}
		h.get(opOf(ctx, cmds)).add(cmds, err)
		return err
	}
}

// ProcessPipelineHook counts one round trip carrying len(cmds) commands.
// MULTI/EXEC wrappers that go-redis adds for transactions are counted as
// the commands they are.
func (h *Hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.get(opOf(ctx, cmds)).add(cmds, err)
		return err
	}
}

// ConnInit is the operation kind under which the commands go-redis sends to
// set up a new connection (HELLO, AUTH, SELECT, CLIENT SETINFO/SETNAME/
// MAINT_NOTIFICATIONS) are
// counted, whatever operation caused the dial.
const ConnInit = "conn_init"

func opOf(ctx context.Context, cmds []redis.Cmder) string {
	for _, c := range cmds {
		switch c.Name() {
		case "hello", "auth", "select", "readonly":
		case "client":
			sub := ""
			if args := c.Args(); len(args) > 1 {
				sub, _ = args[1].(string)
			}
			switch strings.ToLower(sub) {
			case "setinfo", "setname", "maint_notifications":
			default:
				return Op(ctx)
			}
		default:
			return Op(ctx)
		}
	}
	return ConnInit
}

// Add adds counts made elsewhere (another process's hook, reported over
// HTTP) to op's.
func (h *Hook) Add(op string, c Counts) {
	k := h.get(op)
	k.roundTrips.Add(c.RoundTrips)
	k.commands.Add(c.Commands)
	k.errors.Add(c.Errors)
	k.mu.Lock()
	for cmd, n := range c.ByCommand {
		k.byCommand[cmd] += n
	}
	k.mu.Unlock()
}

// AddDials adds n dials made elsewhere.
func (h *Hook) AddDials(n int64) { h.dials.Add(n) }

// Dials is the number of connections dialled so far.
func (h *Hook) Dials() int64 { return h.dials.Load() }

// Snapshot returns the counts per operation kind.
func (h *Hook) Snapshot() map[string]Counts {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make(map[string]Counts, len(h.ops))
	for op, c := range h.ops {
		c.mu.Lock()
		by := make(map[string]int64, len(c.byCommand))
		for k, v := range c.byCommand {
			by[k] = v
		}
		c.mu.Unlock()
		out[op] = Counts{RoundTrips: c.roundTrips.Load(), Commands: c.commands.Load(), Errors: c.errors.Load(), ByCommand: by}
	}
	return out
}

// Ops lists the operation kinds seen, sorted.
func (h *Hook) Ops() []string {
	snap := h.Snapshot()
	ops := make([]string, 0, len(snap))
	for op := range snap {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}

// Reset forgets everything counted.
func (h *Hook) Reset() {
	h.mu.Lock()
	h.ops = map[string]*counts{}
	h.mu.Unlock()
	h.dials.Store(0)
	h.bytesOut.Store(0)
	h.bytesIn.Store(0)
}
