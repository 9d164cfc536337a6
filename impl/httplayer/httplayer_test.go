package httplayer_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/gonogo/harness/impl/httplayer"
	"github.com/gonogo/harness/impl/service"
	"github.com/gonogo/harness/impl/service/servicetest"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/target"
)

// token is the control token of the services these tests start.
const token = "test-token-0123456789"

// serve starts a reference service of the hardened profile with the
// control API (guarded by token), over a memory-only layer whose base
// configuration is cfg, and returns it dialled with token.
func serve(t *testing.T, cfg impl.Config, opts service.Options) *httplayer.Service {
	t.Helper()
	ctx := context.Background()
	l0, err := hardened.New(ctx, impl.Config{})
	require.NoError(t, err)
	if opts.Control != nil {
		opts.Control.Base = cfg
		opts.Control.New = hardened.New
		opts.Control.Token = token
	}
	_, base := servicetest.Start(t, l0, opts)
	s, err := httplayer.Dial(ctx, base, token)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// TestConformance runs the profiles' conformance suite through the HTTP
// layer: each instance is a reference service (hardened, control API on)
// over the suite's real redis-server, reset to the suite's configuration.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T, cfg impl.Config) *impl.Layer {
		h := counter.New()
		base := cfg
		base.Hooks = append(base.Hooks, h)
		s := serve(t, base, service.Options{Counter: h, Control: &service.Control{}})
		l, err := s.Layer(context.Background(), cfg, 0)
		require.NoError(t, err)
		t.Cleanup(func() { l.Close() })
		return l
	})
}

func TestDialBadInput(t *testing.T) {
	ctx := context.Background()
	port, err := target.FreePort()
	require.NoError(t, err)
	notContract := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	defer notContract.Close()
	for _, c := range []struct{ url, want string }{
		{fmt.Sprintf("http://127.0.0.1:%d", port), "connection refused"},
		{"ftp://example.com", "want an http:// or https:// URL"},
		{"127.0.0.1:8080", "want an http:// or https:// URL"},
		{notContract.URL, "no services.redis"},
	} {
		_, err := httplayer.Dial(ctx, c.url, token)
		if assert.Error(t, err, "Dial(%s)", c.url) {
			assert.Contains(t, err.Error(), c.want, "Dial(%s)", c.url)
			assert.Contains(t, err.Error(), c.url, "the error names the service")
			assert.NotContains(t, err.Error(), "\n", "one line")
		}
	}
}

// TestDialControlToken: a service whose control API refuses the harness's
// token (none, or another) is an error at Dial that says which, never a
// service silently run without its control API.
func TestDialControlToken(t *testing.T) {
	ctx := context.Background()
	l0, err := hardened.New(ctx, impl.Config{})
	require.NoError(t, err)
	_, base := servicetest.Start(t, l0, service.Options{Control: &service.Control{New: hardened.New, Token: token}})
	for _, c := range []struct{ token, want string }{
		{"", "HARNESS_CONTROL_TOKEN is not set"},
		{"another-token-0123456789", "HARNESS_CONTROL_TOKEN is not the service's"},
	} {
		_, err := httplayer.Dial(ctx, base, c.token)
		if assert.Error(t, err, "Dial with token %q", c.token) {
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), "401")
			assert.NotContains(t, err.Error(), token, "the error shows no token")
		}
	}
	s, err := httplayer.Dial(ctx, base, token)
	require.NoError(t, err)
	defer s.Close()
	assert.True(t, s.Has(httplayer.Reset), "reset ability with the right token")
}

func TestWithoutControl(t *testing.T) {
	s := serve(t, impl.Config{}, service.Options{})
	assert.False(t, s.Has(httplayer.Reset), "reset ability of a service without the control API")
	assert.False(t, s.Has(httplayer.Registry), "registry ability of a service without the control API")
	assert.Equal(t, "hardened", s.Profile())
	ctx := context.Background()
	l, err := s.Layer(ctx, impl.Config{KeyPrefix: "ignored:"}, 0)
	require.NoError(t, err)
	require.NoError(t, l.Bus.Publish(ctx, conformance.Event("f", "e1", 1, time.Now())), "publish: core contract")
	got, err := l.Bus.History(ctx, "f", 10, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []string{"e1"}, conformance.IDs(got))
	assert.Equal(t, "memory", l.Manager.Mode())
	err = l.Registry.Register(ctx, impl.Conn{ID: "c1", FlowID: "f"})
	assert.ErrorIs(t, err, httplayer.ErrNoControl, "register without the control API")
	n, err := l.Registry.Count(ctx)
	require.NoError(t, err, "count: core contract (GET /metrics/redis)")
	assert.Zero(t, n)
	_, _, ok, err := l.Manager.(interface {
		Counts(context.Context) (map[string]counter.Counts, int64, bool, error)
	}).Counts(ctx)
	require.NoError(t, err)
	assert.False(t, ok, "counts of a service that does not count")
}

func TestResetAndCounts(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	rdb := conformance.Client(t, p)
	cfg := conformance.Config(p, "A")
	h := counter.New()
	base := cfg
	base.Hooks = []redis.Hook{h}
	s := serve(t, base, service.Options{Counter: h, Control: &service.Control{}})
	assert.True(t, s.Has(httplayer.Reset) && s.Has(httplayer.Registry), "abilities")
	ctx := context.Background()
	for i, prefix := range []string{"run1:", "run2:"} {
		cfg.KeyPrefix = prefix
		l, err := s.Layer(ctx, cfg, 0)
		require.NoError(t, err)
		for n := 1; n <= 3; n++ {
			require.NoError(t, l.Bus.Publish(ctx, conformance.Event("f", fmt.Sprintf("e%d-%d", i, n), n, time.Now())))
		}
		got, err := l.Bus.History(ctx, "f", 10, time.Time{})
		require.NoError(t, err)
		assert.Len(t, got, 3, "history under the fresh prefix %s holds only its own events", prefix)
		assert.NotEmpty(t, conformance.Keys(t, rdb, prefix), "keys under %s", prefix)
		ops, _, ok, err := l.Manager.(interface {
			Counts(context.Context) (map[string]counter.Counts, int64, bool, error)
		}).Counts(ctx)
		require.NoError(t, err)
		require.True(t, ok, "the reference service counts")
		assert.Equal(t, int64(3), ops["publish"].RoundTrips, "publish round trips since the reset")
		assert.Equal(t, "redis", l.Manager.Mode())
		require.NoError(t, l.Close())
	}
	// Closed, the layer put the service back on its own prefix.
	resp, err := http.Post(s.Base()+"/flows/after/events", "application/json", strings.NewReader(`{"event_type":"X"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Contains(t, strings.Join(conformance.Keys(t, rdb, base.KeyPrefix), " "), "after", "a publish after Close lands under the service's own prefix %s", base.KeyPrefix)
	for _, prefix := range []string{"run1:", "run2:"} {
		for _, k := range conformance.Keys(t, rdb, prefix) {
			assert.NotContains(t, k, "after", "a publish after Close landed under the closed layer's prefix")
		}
	}
}

// TestSubscribeHooks: a stream's "retry:" fields reach the Retry hook, in
// milliseconds, malformed ones ignored as EventSource ignores them; the
// id: of a frame without data reaches the Start hook, that of an event
// only the event.
func TestSubscribeHooks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: 0-1\n: connected c1\n\nretry: 2500\n\nretry: 1.5\nretry: x\n\n"+
			"id: 1-0\ndata: {\"id\":\"e1\",\"flow_id\":\"f\"}\n\nretry:40\n\n")
	}))
	defer srv.Close()
	var mu sync.Mutex
	var got []time.Duration
	var starts []string
	ch, err := httplayer.SubscribeWith(context.Background(), srv.Client(), srv.URL, "f", "", httplayer.Hooks{
		Retry: func(d time.Duration) {
			mu.Lock()
			got = append(got, d)
			mu.Unlock()
		},
		Start: func(c string) {
			mu.Lock()
			starts = append(starts, c)
			mu.Unlock()
		}})
	require.NoError(t, err)
	var ids []string
	for e := range ch {
		ids = append(ids, e.ID+"@"+e.Cursor)
	}
	assert.Equal(t, []string{"e1@1-0"}, ids)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []time.Duration{2500 * time.Millisecond, 40 * time.Millisecond}, got)
	assert.Equal(t, []string{"0-1"}, starts)
}

// fakeControl is a service answering only /health, GET /_harness (with
// streams as its "streams") and POST /_harness/reset.
func fakeControl(t *testing.T, streams string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/health":
			w.Write([]byte(`{"status":"healthy","profile":"fake","services":{"redis":{"status":"healthy","mode":"redis"}}}`))
		case "/_harness":
			fmt.Fprintf(w, `{"control":1,"abilities":["reset","registry"],"streams":%q}`, streams)
		case "/_harness/reset":
			w.Write([]byte(`{"profile":"fake","mode":"redis"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestNamedStreams: a service that names its flows' streams in GET
// /_harness gets a bus the harness reads Redis through (impl.Streams, under
// the reset's key prefix); one that names none is judged on its own
// history reads; a malformed name is an error at Dial.
func TestNamedStreams(t *testing.T) {
	ctx := context.Background()
	s, err := httplayer.Dial(ctx, fakeControl(t, "flow:events:{flow}"), token)
	require.NoError(t, err)
	assert.Equal(t, "flow:events:{flow}", s.Streams())
	l, err := s.Layer(ctx, impl.Config{KeyPrefix: "run1:"}, 0)
	require.NoError(t, err)
	st, ok := l.Bus.(impl.Streams)
	require.True(t, ok, "the bus names the service's streams")
	assert.Equal(t, "run1:flow:events:f-1", st.StreamKey("f-1"))

	s, err = httplayer.Dial(ctx, fakeControl(t, ""), token)
	require.NoError(t, err)
	l, err = s.Layer(ctx, impl.Config{KeyPrefix: "run1:"}, 0)
	require.NoError(t, err)
	_, ok = l.Bus.(impl.Streams)
	assert.False(t, ok, "no streams named: the harness reads through the service")

	for _, bad := range []string{"flow:events", "a{flow}b{flow}", "with space {flow}", strings.Repeat("k", 257) + "{flow}"} {
		_, err := httplayer.Dial(ctx, fakeControl(t, bad), token)
		if assert.Error(t, err, "streams %q", bad) {
			assert.Contains(t, err.Error(), "names streams")
			assert.NotContains(t, err.Error(), "\n", "one line")
		}
	}
}

// TestServedStreams: the reference service names its layer's streams in
// GET /_harness, before and after a reset, so that the harness reads a
// served hardened layer's streams from Redis itself (process instances
// were judged on the service's own history answers).
func TestServedStreams(t *testing.T) {
	ctx := context.Background()
	base := impl.Config{KeyPrefix: "base:"}
	l0, err := hardened.New(ctx, base)
	require.NoError(t, err)
	_, url := servicetest.Start(t, l0, service.Options{Control: &service.Control{Base: base, New: hardened.New, Token: token}})
	for _, prefix := range []string{"run1:", "run2:"} {
		s, err := httplayer.Dial(ctx, url, token)
		require.NoError(t, err)
		assert.Equal(t, "{flow:{flow}}:events", s.Streams(), "streams named before the reset to %s", prefix)
		l, err := s.Layer(ctx, impl.Config{KeyPrefix: prefix}, 0)
		require.NoError(t, err)
		st, ok := l.Bus.(impl.Streams)
		require.True(t, ok, "the bus names the service's streams")
		assert.Equal(t, prefix+"{flow:f-1}:events", st.StreamKey("f-1"))
		s.Close()
	}
}

// TestSubscribeNotStarted: a 200 event stream that ends before its
// connected comment (the service's answer while it cannot serve a stream)
// is a failed connect naming why, and its retry: still counts.
func TestSubscribeNotStarted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 1000\n: unavailable subscribe failed: redis down\n\n")
	}))
	defer srv.Close()
	var got time.Duration
	_, err := httplayer.SubscribeWith(context.Background(), srv.Client(), srv.URL, "f", "", httplayer.Hooks{Retry: func(d time.Duration) { got = d }})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unavailable subscribe failed: redis down")
	assert.Equal(t, time.Second, got)
}

// TestResetSamePrefixJournal: a service with an outbox journal reset twice
// to the same key prefix (the harness resets an instance process again to
// its scenario's prefix) builds the new layer on the journal directory the
// current one holds: the current layer must let it go first. The second
// reset failed with "journal directory in use by another instance" (explore
// seed 3030's duplicated-d32356de, 1 replay in 3 INCONCLUSIVE).
func TestResetSamePrefixJournal(t *testing.T) {
	ctx := context.Background()
	p := conformance.StartRedis(t, target.ProcessOptions{})
	base := conformance.Config(p, "J")
	base.JournalDir = t.TempDir()
	l0, err := hardened.New(ctx, base)
	require.NoError(t, err)
	_, url := servicetest.Start(t, l0, service.Options{Control: &service.Control{Base: base, New: hardened.New, Token: token}})
	s, err := httplayer.Dial(ctx, url, token)
	require.NoError(t, err)
	defer s.Close()
	run := conformance.Config(p, "J")
	run.KeyPrefix = "run:"
	for i := range 2 {
		l, err := s.Layer(ctx, run, 0)
		require.NoError(t, err, "reset %d to the same prefix", i+1)
		require.NoError(t, l.Bus.Publish(ctx, conformance.Event("f", fmt.Sprintf("e%d", i), i, time.Now())))
	}
}
