package conform_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/conform"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/impl/service"
	"github.com/gonogo/harness/target"
)

const origin = "http://app.example:3000"

// serve serves profile over cfg through wrap (nil: as is) and returns its
// URL; everything stops at cleanup.
func serve(t *testing.T, profile string, cfg impl.Config, opts service.Options, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	l, err := profiles.Default().New(context.Background(), profile, cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc := service.New(l, opts)
	var h http.Handler = svc
	if wrap != nil {
		h = wrap(svc)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svc.Shutdown(ctx)
		ts.Close()
		l.Close()
	})
	return ts.URL
}

func check(t *testing.T, url string) []conform.Result {
	t.Helper()
	rs, err := conform.Check(context.Background(), conform.Options{Service: url, Origin: origin, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if len(rs) != len(conform.Rules()) {
		t.Fatalf("%d results; want one per rule (%d)", len(rs), len(conform.Rules()))
	}
	return rs
}

// failing lists the rules that did not pass.
func failing(rs []conform.Result) []string {
	var out []string
	for _, r := range rs {
		if r.Verdict != conform.Pass {
			out = append(out, r.Rule)
		}
	}
	return out
}

// TestHardenedConforms: the hardened profile on a real redis-server, CORS
// on for the origin, passes every rule.
func TestHardenedConforms(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	p := conformance.StartRedis(t, target.ProcessOptions{})
	url := serve(t, "hardened", conformance.Config(p, "A"), service.Options{CORS: service.CORS{Origins: []string{origin}}}, nil)
	for _, r := range check(t, url) {
		if r.Verdict != conform.Pass {
			t.Errorf("%s: %s: %s", r.Rule, r.Verdict, r.Detail)
		}
	}
}

// rewrite passes every write of the answers to requests match accepts
// through f (each write of the service is whole frames or a whole JSON
// body).
func rewrite(match func(*http.Request) bool, f func(string) string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if match(r) {
				w = rewriter{w, f}
			}
			h.ServeHTTP(w, r)
		})
	}
}

type rewriter struct {
	http.ResponseWriter
	f func(string) string
}

func (w rewriter) Write(b []byte) (int, error) {
	_, err := w.ResponseWriter.Write([]byte(w.f(string(b))))
	return len(b), err
}

func (w rewriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func isStream(r *http.Request) bool {
	return r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/flows/") && strings.HasSuffix(r.URL.Path, "/events")
}

var dataRE = regexp.MustCompile(`(?m)^data: (.*)$`)

// dropEmpty removes payload {}, source "system" and an empty
// correlation_id from an event, as the hardened profile once left them out.
func dropEmpty(e map[string]any) {
	if e["correlation_id"] == "" {
		delete(e, "correlation_id")
	}
	if p, ok := e["payload"].(map[string]any); ok && len(p) == 0 {
		delete(e, "payload")
	}
	if e["source"] == "system" {
		delete(e, "source")
	}
}

// TestDefects re-introduces each contract defect of issue 17 in front of
// a conforming service (hardened, memory only) and checks that conform
// fails exactly the rules that state it.
func TestDefects(t *testing.T) {
	cors := service.Options{CORS: service.CORS{Origins: []string{origin}}}
	all := []string{}
	tests := []struct {
		name string
		opts service.Options
		wrap func(http.Handler) http.Handler
		want []string
	}{
		{name: "conforming", opts: cors, want: all},
		{name: "unnamed events conform too", opts: service.Options{CORS: cors.CORS, Stream: service.StreamOptions{Unnamed: true}}, want: all},
		{name: "no CORS", opts: service.Options{},
			want: []string{"cors.origin", "cors.expose", "cors.preflight.post", "cors.preflight.sse"}},
		// A miss after the PUT conforms in memory mode only: the same
		// service claiming Redis mode fails the cache rule.
		{name: "no hit while claiming redis mode", opts: cors, wrap: rewrite(func(r *http.Request) bool { return r.URL.Path == "/health" }, func(s string) string {
			return strings.ReplaceAll(s, `"mode":"memory"`, `"mode":"redis"`)
		}), want: []string{"state"}},
		{name: "no retry: field", opts: cors, wrap: rewrite(isStream, func(s string) string {
			return regexp.MustCompile(`(?m)^retry: \d+\n`).ReplaceAllString(s, "")
		}), want: []string{"sse.retry"}},
		{name: "retry: not digits", opts: cors, wrap: rewrite(isStream, func(s string) string {
			return strings.Replace(s, "retry: 100\n", "retry: 0.1s\n", 1)
		}), want: []string{"sse.retry"}},
		{name: "503 on the SSE request", opts: cors, wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if isStream(r) && !strings.Contains(r.URL.Path, "%20") && !strings.Contains(r.URL.Path, " ") {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusServiceUnavailable)
					w.Write([]byte(`{"error":"subscribe failed"}` + "\n"))
					return
				}
				h.ServeHTTP(w, r)
			})
		}, want: []string{"sse.open", "sse.retry", "sse.connected", "sse.event", "sse.resume", "sse.resume.query", "cors.expose"}},
		{name: "payload and source left out", opts: cors, wrap: rewrite(func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/flows/") }, func(s string) string {
			if strings.HasPrefix(s, "{") { // history
				var h map[string]any
				if json.Unmarshal([]byte(s), &h) != nil {
					return s
				}
				evs, _ := h["events"].([]any)
				for _, e := range evs {
					dropEmpty(e.(map[string]any))
				}
				b, _ := json.Marshal(h)
				return string(b) + "\n"
			}
			return dataRE.ReplaceAllStringFunc(s, func(line string) string {
				var e map[string]any
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e) != nil {
					return line
				}
				dropEmpty(e)
				b, _ := json.Marshal(e)
				return "data: " + string(b)
			})
		}), want: []string{"event.defaults"}},
		{name: "404 and 405 in text/plain", opts: cors, wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/conform-no-such-path":
					http.NotFound(w, r)
				case r.Method == "PATCH":
					w.Header().Set("Allow", "GET, HEAD")
					http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				default:
					h.ServeHTTP(w, r)
				}
			})
		}, want: []string{"error.404", "error.405"}},
		{name: "Last-Event-ID ignored (the seed's flaw)", opts: cors, wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Header.Del("Last-Event-ID")
				q := r.URL.Query()
				q.Del("last_event_id")
				r.URL.RawQuery = q.Encode()
				h.ServeHTTP(w, r)
			})
		}, want: []string{"sse.resume", "sse.resume.query"}},
		{name: "event: not the event_type", opts: cors, wrap: rewrite(isStream, func(s string) string {
			return strings.Replace(s, "event: CONFORM\n", "event: update\n", 1)
		}), want: []string{"sse.event"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := serve(t, "hardened", impl.Config{ServerID: "m"}, tt.opts, tt.wrap)
			rs := check(t, url)
			if got := failing(rs); !slices.Equal(got, tt.want) {
				for _, r := range rs {
					if r.Verdict != conform.Pass {
						t.Logf("%s %s: %s", r.Verdict, r.Rule, r.Detail)
					}
				}
				t.Errorf("rules not passing: got %v; want %v", got, tt.want)
			}
		})
	}
}

// TestSeedFailsResume: the seed profile on a real redis-server fails the
// resume rules (it ignores Last-Event-ID) and passes the rest.
func TestSeedFailsResume(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	p := conformance.StartRedis(t, target.ProcessOptions{})
	url := serve(t, "seed", conformance.Config(p, "A"), service.Options{CORS: service.CORS{Origins: []string{origin}}}, nil)
	if got, want := failing(check(t, url)), []string{"sse.resume", "sse.resume.query"}; !slices.Equal(got, want) {
		t.Errorf("rules not passing: got %v; want %v", got, want)
	}
}

// TestBadOptions: a URL that is not http(s) or a bad origin is refused
// before any request; a service that does not answer is ErrUnreachable.
func TestBadOptions(t *testing.T) {
	for _, o := range []conform.Options{{Service: "ftp://x"}, {Service: "127.0.0.1:80"}, {Service: "http://x", Origin: "x"}} {
		if _, err := conform.Check(context.Background(), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	ts := httptest.NewServer(http.NotFoundHandler())
	ts.Close()
	if _, err := conform.Check(context.Background(), conform.Options{Service: ts.URL, Timeout: time.Second}); !errors.Is(err, conform.ErrUnreachable) {
		t.Errorf("closed server: got %v; want %v", err, conform.ErrUnreachable)
	}
}
