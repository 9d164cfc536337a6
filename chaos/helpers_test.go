package chaos

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/target"
)

// startRedis spawns a redis-server closed at the end of the test.
func startRedis(t *testing.T, o target.ProcessOptions) *target.Process {
	t.Helper()
	p, err := target.StartProcess(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// newProxy puts an embedded proxy in front of upstream for the test.
func newProxy(t *testing.T, upstream string) *EmbeddedProxy {
	t.Helper()
	e := NewEmbedded(context.Background())
	t.Cleanup(func() { e.Close() })
	p, err := e.NewProxy("redis", upstream)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// setup is a redis-server behind an embedded proxy.
func setup(t *testing.T, o target.ProcessOptions) (*target.Process, *EmbeddedProxy, Env) {
	t.Helper()
	r := startRedis(t, o)
	p := newProxy(t, r.Addr())
	return r, p, Env{Target: r, Proxy: p}
}

// rclient is a go-redis client for addr that never retries and dials with
// a short timeout, so each call shows the first error it meets.
func rclient(t *testing.T, addr string, tc *tls.Config) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: addr, TLSConfig: tc, MaxRetries: -1, DialerRetries: 1,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, PoolSize: 2,
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// pingErr pings once through a fresh client and returns the error.
func pingErr(t *testing.T, addr string, tc *tls.Config) error {
	t.Helper()
	return rclient(t, addr, tc).Ping(context.Background()).Err()
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// eventually polls cond every 10ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawConn is a plain TCP connection speaking RESP by hand.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

// send writes commands, each given as its words, in one write.
func (c *rawConn) send(t *testing.T, cmds ...string) {
	t.Helper()
	var b strings.Builder
	for _, cmd := range cmds {
		words := strings.Fields(cmd)
		b.WriteString("*" + strconv.Itoa(len(words)) + "\r\n")
		for _, w := range words {
			b.WriteString("$" + strconv.Itoa(len(w)) + "\r\n" + w + "\r\n")
		}
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
}

// replies reads n reply frames as raw text.
func (c *rawConn) replies(t *testing.T, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		f, _, err := readFrame(c.r, nil, 0)
		if err != nil {
			t.Fatalf("reply %d of %d: %v (got %q)", i+1, n, err, out[:i])
		}
		out[i] = string(f)
	}
	return out
}
