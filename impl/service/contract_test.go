package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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

// memoryOnly serves a hardened layer without Redis (REDIS_ENABLED=false):
// the contract's glue needs no server.
func memoryOnly(t *testing.T, opts service.Options) *instance {
	t.Helper()
	return start(t, "hardened", impl.Config{ServerID: "m"}, opts)
}

func request(t *testing.T, method, url string, h map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestParseOrigins(t *testing.T) {
	for in, want := range map[string][]string{
		"":  nil,
		"*": {"*"},
		"http://a.example, https://B.example:8443,,http://a.example": {"http://a.example", "https://b.example:8443"},
	} {
		got, err := service.ParseOrigins(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"a.example", "ftp://a", "http://a/", "http://a/x", "http://u:p@a", "http://a?x", "http://a#", "http://"} {
		_, err := service.ParseOrigins(bad)
		assert.Error(t, err, bad)
	}
}

// TestCORS: an allowed origin reads answers (and the headers it needs);
// its preflight, JSON POST included, is answered 204; another origin gets
// no CORS header and a 403 preflight; without origins nothing changes;
// the control API is never offered to other origins.
func TestCORS(t *testing.T) {
	const ok, other = "http://app.example:3000", "http://evil.example"
	in := memoryOnly(t, service.Options{CORS: service.CORS{Origins: []string{ok}}})
	resp, _ := request(t, "GET", in.url+"/health", map[string]string{"Origin": ok})
	assert.Equal(t, ok, resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), "X-Connection-ID")
	assert.Contains(t, resp.Header.Values("Vary"), "Origin")

	resp, _ = request(t, "OPTIONS", in.url+"/flows/f1/events", map[string]string{"Origin": ok,
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Content-Type")
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Last-Event-ID")

	resp, _ = request(t, "GET", in.url+"/health", map[string]string{"Origin": other})
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	resp, body := request(t, "OPTIONS", in.url+"/flows/f1/events", map[string]string{"Origin": other, "Access-Control-Request-Method": "GET"})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, body, `"error"`)

	resp, _ = request(t, "GET", in.url+"/_harness", map[string]string{"Origin": ok})
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "control API")

	plain := memoryOnly(t, service.Options{})
	resp, body = request(t, "OPTIONS", plain.url+"/flows/f1/events", map[string]string{"Origin": ok, "Access-Control-Request-Method": "GET"})
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "no CORS configured")
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, body, `"error"`)
}

// TestStreamNotStarted: an SSE request the service cannot serve now (it is
// shutting down) gets 200 with retry: and a comment saying why, so that a
// browser's EventSource tries again instead of giving up on a 503.
func TestStreamNotStarted(t *testing.T) {
	l, err := profiles.Default().New(context.Background(), "hardened", impl.Config{ServerID: "m"})
	require.NoError(t, err)
	defer l.Close()
	svc := service.New(l, service.Options{})
	require.NoError(t, svc.Shutdown(context.Background()))
	w := httptest.NewRecorder()
	svc.ServeHTTP(w, httptest.NewRequest("GET", "/flows/f1/events", nil))
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "text/event-stream", w.Header().Get("Content-Type"))
	assert.Equal(t, "retry: 1000\n: unavailable shutting down or resetting\n\n", w.Body.String())
}

// TestUnnamedEvents: with StreamOptions.Unnamed events carry no event:
// field (EventSource.onmessage gets them); by default they are named.
func TestUnnamedEvents(t *testing.T) {
	for _, unnamed := range []bool{false, true} {
		in := memoryOnly(t, service.Options{Stream: service.StreamOptions{Unnamed: unnamed}})
		s := dial(t, http.DefaultClient, in.url+"/flows/f1/events", "")
		post(t, in.url, "f1", "u1")
		f := s.next(t, 5*time.Second, false)
		want := "STEP"
		if unnamed {
			want = ""
		}
		assert.Equal(t, want, f.event, "event: field, unnamed %v", unnamed)
		assert.Contains(t, f.data, `"event_type":"STEP"`)
	}
}

// TestEventShape: every field of an event is present in history and in
// SSE data, whatever the publisher left out.
func TestEventShape(t *testing.T) {
	in := memoryOnly(t, service.Options{})
	s := dial(t, http.DefaultClient, in.url+"/flows/f1/events", "")
	resp, err := http.Post(in.url+"/flows/f1/events", "application/json", strings.NewReader(`{"id":"bare","event_type":"STEP"}`))
	require.NoError(t, err)
	resp.Body.Close()
	f := s.next(t, 5*time.Second, false)
	_, body := request(t, "GET", in.url+"/flows/f1/events/history", nil)
	var h struct{ Events []map[string]any }
	require.NoError(t, json.Unmarshal([]byte(body), &h))
	require.Len(t, h.Events, 1)
	var live map[string]any
	require.NoError(t, json.Unmarshal([]byte(f.data), &live))
	for _, e := range []map[string]any{h.Events[0], live} {
		for _, k := range []string{"id", "flow_id", "event_type", "payload", "timestamp", "source", "correlation_id", "cursor"} {
			assert.Contains(t, e, k)
		}
		assert.Equal(t, map[string]any{}, e["payload"])
		assert.Equal(t, "system", e["source"])
	}
}

// TestKeyspaceOfConfiguredDB: /health/redis reports the keyspace of the
// database REDIS_URL names, not db0's.
func TestKeyspaceOfConfiguredDB(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	rdb := conformance.Client(t, p)
	for i := 0; i < 50; i++ {
		require.NoError(t, rdb.Set(context.Background(), fmt.Sprintf("db0-%d", i), "x", 0).Err())
	}
	cfg := conformance.Config(p, "A")
	cfg.URL = strings.TrimSuffix(cfg.URL, "/0") + "/3"
	in := start(t, "hardened", cfg, service.Options{})
	post(t, in.url, "f-db3", "k1")
	_, body := request(t, "GET", in.url+"/health/redis", nil)
	var got struct {
		Keyspace map[string]int64 `json:"keyspace"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &got), body)
	// db0 holds 50 keys, db3 the few the layer wrote.
	assert.True(t, got.Keyspace["keys"] > 0 && got.Keyspace["keys"] < 50, "keyspace: %s", body)
}
