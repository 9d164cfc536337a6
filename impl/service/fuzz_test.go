package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/seed"
	"github.com/gonogo/harness/impl/service"
)

// fuzzRoutes are the requests whose decoding FuzzRequestDecoding drives:
// the flow ID in the path, the query and the body are the fuzzer's.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/flows/{id}/events"},
	{"GET", "/flows/{id}/events/history"},
	{"PUT", "/flows/{id}/state"},
	{"GET", "/metrics/redis"},
	{"POST", "/_harness/reset"},
	{"POST", "/_harness/registry/connections"},
	{"GET", "/_harness/registry/flows/{id}"},
}

// FuzzRequestDecoding sends the service (a memory-only seed layer, control
// API on) requests with fuzzed flow IDs, queries and bodies: it never
// panics or answers 5xx, and every refusal is a 4xx with a JSON
// {"error": "<message>"}. Its corpus is testdata/fuzz/FuzzRequestDecoding.
func FuzzRequestDecoding(f *testing.F) {
	for _, s := range []struct {
		route     uint8
		id, query string
		body      string
	}{
		{0, "f1", "", `{"id":"e1","event_type":"STEP","payload":{"n":1},"timestamp":"2025-01-02T03:04:05Z"}`},
		{0, "f1", "", `{"event_type":"X","payload":[1]}`},
		{1, "f1", "count=10&since=2025-01-02T03:04:05.123Z", ""},
		{1, "a b", "count=99999999999999999999", ""},
		{2, "f1", "", `{"state":{"step":2},"status":"active","lease":"x"}`},
		{3, "", "flow=a%20b", ""},
		{4, "", "", `{"key_prefix":"p:","pool_size":10,"probe_interval_ms":100,"heartbeat_interval_ms":50}`},
		{4, "", "", `{"probe_interval_ms":9223372036854775807}`},
		{5, "", "", `{"connection_id":"c1","flow_id":"f1","user_id":"u","client_info":{"ip":"127.0.0.1"}}`},
		{6, "f1", "", ""},
	} {
		f.Add(s.route, s.id, s.query, []byte(s.body))
	}
	ctx := context.Background()
	memory := func(ctx context.Context, c impl.Config) (*impl.Layer, error) {
		c.Enabled = false // never Redis, whatever a reset says
		return seed.New(ctx, c)
	}
	l0, err := memory(ctx, impl.Config{})
	if err != nil {
		f.Fatal(err)
	}
	svc := service.New(l0, service.Options{MaxBody: 4096, Control: &service.Control{New: memory, Token: token}})
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); err != nil {
			f.Error(err)
		}
		svc.Layer().Close()
	})
	f.Fuzz(func(t *testing.T, route uint8, id, query string, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req := httptest.NewRequest(r.method, strings.Replace(r.path, "{id}", url.PathEscape(id), 1), bytes.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		svc.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s?%q body %q: %d %s", r.method, req.URL.Path, query, body, w.Code, w.Body)
		}
		if w.Code < 400 {
			return
		}
		var e struct {
			Error string `json:"error"`
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error == "" {
			t.Fatalf("%s %s?%q body %q: %d with %s %q; want a JSON error", r.method, req.URL.Path, query, body, w.Code, ct, w.Body)
		}
		if w.Code == http.StatusUnauthorized {
			t.Fatalf("%s %s: 401 with the token", r.method, req.URL.Path)
		}
	})
}
