package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/impl/service"
	"github.com/gonogo/harness/impl/service/servicetest"
	"github.com/gonogo/harness/target"
)

// token guards the control API of the services these tests start.
const token = "service-test-token-0123"

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// rawConn is a plain TCP connection to the service at base, closed at
// cleanup.
func rawConn(t *testing.T, base string) net.Conn {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reads c until the service closes it and reports whether
// that happened within d (what was read is dropped).
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// checkCut opens a connection to a service whose timeout under test (set
// sets it in the options) is 1 s, runs prepare on it, and wants it closed
// within 30 s; then the mutant: with an hour, still open after 3 s.
func checkCut(t *testing.T, set func(*service.Options, time.Duration), prepare func(t *testing.T, conn net.Conn)) {
	for _, c := range []struct {
		name    string
		timeout time.Duration
		closed  bool
		within  time.Duration
	}{
		{"closed", time.Second, true, 30 * time.Second},
		{"mutant without the timeout", time.Hour, false, 3 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var opts service.Options
			set(&opts, c.timeout)
			conn := rawConn(t, memoryInstance(t, opts).url)
			prepare(t, conn)
			start := time.Now()
			closed := closedWithin(conn, c.within)
			t.Logf("closed %v after %v", closed, time.Since(start).Round(time.Millisecond))
			assert.Equal(t, c.closed, closed, "connection closed within %v (timeout %v)", c.within, c.timeout)
		})
	}
}

// TestSlowBodyCut: a client that sends its headers and then trickles the
// body (one byte every 100 ms of a 1000-byte body: 100 s) is disconnected
// once BodyTimeout passes.
func TestSlowBodyCut(t *testing.T) {
	checkCut(t, func(o *service.Options, d time.Duration) { o.BodyTimeout = d }, func(t *testing.T, conn net.Conn) {
		_, err := fmt.Fprint(conn, "POST /flows/f/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
		require.NoError(t, err)
		stop := make(chan struct{})
		t.Cleanup(func() { close(stop) })
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
					if _, err := conn.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
	})
}

// TestIdleKeepAliveClosed: a keep-alive connection that sends nothing
// after its first request is closed once IdleTimeout passes.
func TestIdleKeepAliveClosed(t *testing.T) {
	checkCut(t, func(o *service.Options, d time.Duration) { o.IdleTimeout = d }, func(t *testing.T, conn net.Conn) {
		_, err := fmt.Fprint(conn, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.False(t, resp.Close, "the service kept the connection alive")
	})
}

// TestSSEOutlivesTimeouts: the write, body and idle timeouts do not end an
// SSE stream: with each at 300 ms, a stream keeps getting heartbeats for
// 3 s, and a plain request still gets its answer.
func TestSSEOutlivesTimeouts(t *testing.T) {
	in := memoryInstance(t, service.Options{WriteTimeout: 300 * time.Millisecond, BodyTimeout: 300 * time.Millisecond,
		IdleTimeout: 300 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond})
	client := &http.Client{}
	defer client.CloseIdleConnections()
	s := dial(t, client, in.url+"/flows/f/events", "")
	start := time.Now()
	beats := 0
	for time.Since(start) < 3*time.Second {
		f := s.next(t, 5*time.Second, true)
		if strings.HasPrefix(f.comment, "heartbeat ") {
			beats++
		}
	}
	assert.GreaterOrEqual(t, beats, 3, "heartbeats on a stream open 3 s past every timeout")
	post(t, in.url, "f", "e1")
	assert.Equal(t, "e1", s.event(t, 5*time.Second).ID, "the stream still delivers")
}

// TestHeaderTooLarge: a header block over MaxHeaderBytes (32 KiB by
// default) gets 431 before any handler stores it.
func TestHeaderTooLarge(t *testing.T) {
	in := memoryInstance(t, service.Options{})
	code, _ := doWith(t, http.Header{"X-Pad": {strings.Repeat("p", 64<<10)}}, "GET", in.url+"/health", "")
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, code)
}

// storedConn finds the connection connID under prefix in Redis (read with
// the test's own client, not through the layer): a hash field (hardened)
// or a key named after it (seed). It returns its stored value and the
// keys' total memory.
func storedConn(t *testing.T, rdb *redis.Client, prefix, connID string) (string, int64) {
	t.Helper()
	ctx := context.Background()
	var value string
	var mem int64
	for _, k := range conformance.Keys(t, rdb, prefix) {
		n, err := rdb.MemoryUsage(ctx, k).Result()
		require.NoError(t, err)
		mem += n
		typ, err := rdb.Type(ctx, k).Result()
		require.NoError(t, err)
		v, err := "", redis.Nil
		switch {
		case typ == "hash":
			v, err = rdb.HGet(ctx, k, connID).Result()
		case typ == "string" && strings.HasSuffix(k, connID):
			v, err = rdb.Get(ctx, k).Result()
		}
		if err == nil && strings.HasPrefix(v, "{") {
			value = v
		}
	}
	return value, mem
}

// TestHeaderValuesCapped: what an SSE request's headers put in Redis is
// bounded before it is stored: a bad or long X-User-ID gets 400 (a huge
// one 431) and registers nothing; User-Agent is cut to 256 bytes (a whole
// UTF-8 character at a time). Each profile, against a real redis-server.
func TestHeaderValuesCapped(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	rdb := conformance.Client(t, p)
	for _, profile := range profiles.Default().Names() {
		t.Run(profile, func(t *testing.T) {
			cfg := conformance.Config(p, "A")
			in := start(t, profile, cfg, service.Options{})
			for _, c := range []struct {
				name, user string
				code       int
				msg        string
			}{
				{"long", strings.Repeat("u", 1000), 400, `X-User-ID "uuuu`},
				{"space", "alice smith", 400, "want 1-128 characters of [A-Za-z0-9_.:@-]"},
				{"percent", "a%0Ab", 400, "want 1-128 characters"},
				{"over MaxHeaderBytes", strings.Repeat("u", 64<<10), 431, ""},
			} {
				code, body := doWith(t, http.Header{"X-User-ID": {c.user}}, "GET", in.url+"/flows/f/events", "")
				assert.Equal(t, c.code, code, "%s X-User-ID", c.name)
				if c.msg != "" {
					assert.Contains(t, body["error"], c.msg, "%s X-User-ID", c.name)
				}
			}
			_, mem := storedConn(t, rdb, cfg.KeyPrefix, "none")
			assert.Zero(t, mem, "keys after refused streams: none registered")

			for _, ua := range []struct {
				name, value string
				want        int
			}{
				{"ascii", strings.Repeat("A", 10000), 256},
				{"multibyte", strings.Repeat("€", 100), 255}, // 3 bytes each: 85 whole ones
			} {
				ctx, cancel := context.WithCancel(context.Background())
				req, err := http.NewRequestWithContext(ctx, "GET", in.url+"/flows/f/events", nil)
				require.NoError(t, err)
				req.Header.Set("X-User-ID", "alice@example.com")
				req.Header.Set("User-Agent", ua.value)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				connID := resp.Header.Get("X-Connection-ID")
				var stored string
				var mem int64
				for deadline := time.Now().Add(10 * time.Second); stored == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					stored, mem = storedConn(t, rdb, cfg.KeyPrefix, connID)
				}
				cancel()
				resp.Body.Close()
				require.NotEmpty(t, stored, "%s: connection %s in Redis", ua.name, connID)
				var info struct {
					UserID     string            `json:"user_id"`
					ClientInfo map[string]string `json:"client_info"`
				}
				require.NoError(t, json.Unmarshal([]byte(stored), &info), "stored %s", stored)
				got := info.ClientInfo["user_agent"]
				t.Logf("%s: stored user agent %d bytes, registry keys %d bytes", ua.name, len(got), mem)
				assert.Equal(t, "alice@example.com", info.UserID)
				assert.Len(t, got, ua.want, "%s user agent stored", ua.name)
				assert.True(t, utf8.ValidString(got), "stored user agent is valid UTF-8")
				assert.Less(t, mem, int64(8<<10), "registry keys of one connection")
			}
		})
	}
}

// controlInstance is a hardened service over a real redis-server with the
// control API guarded by tok.
func controlInstance(t *testing.T, tok string) (*instance, *impl.Layer) {
	return controlOn(t, conformance.StartRedis(t, target.ProcessOptions{}), tok)
}

// controlOn is controlInstance on the server p.
func controlOn(t *testing.T, p *target.Process, tok string) (*instance, *impl.Layer) {
	cfg := conformance.Config(p, "A")
	newHardened := func(ctx context.Context, c impl.Config) (*impl.Layer, error) {
		return profiles.Default().New(ctx, "hardened", c)
	}
	l0, err := newHardened(context.Background(), cfg)
	require.NoError(t, err)
	svc, base := servicetest.Start(t, l0, service.Options{HeartbeatInterval: time.Hour,
		Control: &service.Control{Base: cfg, New: newHardened, Token: tok}})
	return &instance{layer: l0, svc: svc, url: base}, l0
}

// TestControlToken: every control route answers 401 without the token,
// with another one, with it in another scheme, and always when the
// service has no token; an SSE stream's connection cannot be unregistered
// without it, and can with it.
func TestControlToken(t *testing.T) {
	routes := []struct{ method, path, body string }{
		{"GET", "/_harness", ""},
		{"POST", "/_harness/reset", "{}"},
		{"POST", "/_harness/registry/connections", `{"connection_id":"c1","flow_id":"f"}`},
		{"POST", "/_harness/registry/connections/c1/heartbeat", ""},
		{"DELETE", "/_harness/registry/connections/c1", ""},
		{"GET", "/_harness/registry/flows/f", ""},
		{"POST", "/_harness/registry/cleanup", ""},
	}
	in, l0 := controlInstance(t, token)
	for _, h := range []http.Header{
		nil,
		bearer("wrong-token-0123456789"),
		bearer(token + "x"),
		bearer(""),
		{"Authorization": {"Basic " + token}},
		{"Authorization": {token}},
	} {
		for _, r := range routes {
			code, body := doWith(t, h, r.method, in.url+r.path, r.body)
			assert.Equal(t, http.StatusUnauthorized, code, "%s %s with %v", r.method, r.path, h)
			assert.Contains(t, body["error"], "Authorization: Bearer", "%s %s", r.method, r.path)
		}
	}
	client := &http.Client{}
	defer client.CloseIdleConnections()
	s := dial(t, client, in.url+"/flows/f/events", "")
	conn := s.resp.Header.Get("X-Connection-ID")
	code, _ := do(t, "DELETE", in.url+"/_harness/registry/connections/"+conn, "")
	require.Equal(t, http.StatusUnauthorized, code, "unregister without the token")
	ids, err := l0.Registry.Lookup(context.Background(), "f")
	require.NoError(t, err)
	assert.Contains(t, ids, conn, "the stream's connection after an unregister without the token")
	code, _ = doWith(t, bearer(token), "DELETE", in.url+"/_harness/registry/connections/"+conn, "")
	require.Equal(t, http.StatusNoContent, code, "unregister with the token")
	ids, err = l0.Registry.Lookup(context.Background(), "f")
	require.NoError(t, err)
	assert.NotContains(t, ids, conn, "the stream's connection after an unregister with the token")

	empty, _ := controlInstance(t, "")
	code, body := doWith(t, bearer(""), "GET", empty.url+"/_harness", "")
	assert.Equal(t, http.StatusUnauthorized, code, "a service without a token refuses every control request: %v", body)
}

// TestControlRanges: a reset or registration with a field out of its
// range gets 400 naming the field and its range, and changes nothing: on
// main, probe_interval_ms of MaxInt64 crashed the process (a ticker's
// panic) and pool_size 200000000 took 4 GB and thousands of connections.
func TestControlRanges(t *testing.T) {
	in, l0 := controlInstance(t, token)
	maxInt := fmt.Sprint(int64(math.MaxInt64))
	for _, c := range []struct{ path, body, msg string }{
		{"/_harness/reset", `{"probe_interval_ms":` + maxInt + `}`, "probe_interval_ms 9223372036854775807: want 0 (keep) or 10-3600000"},
		{"/_harness/reset", `{"heartbeat_interval_ms":` + maxInt + `}`, "heartbeat_interval_ms 9223372036854775807: want 0 (keep) or 10-3600000"},
		{"/_harness/reset", `{"pool_size":200000000}`, "pool_size 200000000: want 0 (keep) or 1-500"},
		{"/_harness/reset", `{"registry_ttl_ms":-1}`, "registry_ttl_ms -1: want 0 (keep) or 1-86400000"},
		{"/_harness/reset", `{"outbox_cap":1000000000,"memory_events":-3}`, "memory_events -3: want 0 (keep) or 1-100000; outbox_cap 1000000000: want 0 (keep) or 1-1000000"},
		{"/_harness/reset", `{"key_prefix":"a b"}`, `key_prefix "a b": want at most 256 printable ASCII characters, no spaces`},
		{"/_harness/reset", `{"key_prefix":"` + strings.Repeat("k", 257) + `"}`, "want at most 256 printable ASCII"},
		{"/_harness/reset", `{"pool_size":1e30}`, "malformed JSON body"},
		{"/_harness/registry/connections", `{"connection_id":"c1","flow_id":"f","user_id":"` + strings.Repeat("u", 200) + `"}`, "user_id"},
		{"/_harness/registry/connections", `{"connection_id":"c1","flow_id":"f","client_info":{"user_agent":"` + strings.Repeat("a", 300) + `"}}`, "values of at most 256 bytes"},
	} {
		code, body := doWith(t, bearer(token), "POST", in.url+c.path, c.body)
		assert.Equal(t, http.StatusBadRequest, code, "%s %.80s", c.path, c.body)
		assert.Contains(t, body["error"], c.msg, "%s %.80s", c.path, c.body)
	}
	assert.Same(t, l0, in.svc.Layer(), "no refused reset replaced the layer")
	ids, err := l0.Registry.Lookup(context.Background(), "f")
	require.NoError(t, err)
	assert.Empty(t, ids, "no refused registration registered")
	code, body := do(t, "GET", in.url+"/health", "")
	assert.Equal(t, http.StatusOK, code, "health after the refused requests: %v", body)

	code, body = doWith(t, bearer(token), "POST", in.url+"/_harness/reset", `{"probe_interval_ms":3600000,"heartbeat_interval_ms":10,"pool_size":20,"key_prefix":"k:{x}/y"}`)
	assert.Equal(t, http.StatusOK, code, "a reset within every range: %v", body)
}
