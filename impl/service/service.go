// Package service is the HTTP service over one *impl.Layer: health, Redis
// monitor and metrics, an SSE stream per flow with registry bookkeeping and
// Last-Event-ID resume, publish, history and the flow-state cache. The
// contract is written down in docs/http.md so another implementation (the
// tracker's Python backend) can be put under the same scenarios by URL.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
)

// DefaultHeartbeatInterval is the SSE heartbeat of a service that sets
// none: what a production deployment runs.
const DefaultHeartbeatInterval = 15 * time.Second

// Options configure a Service. Zero values mean the default on each field.
type Options struct {
	// HeartbeatInterval is how often an SSE stream heartbeats, both in the
	// registry and as an SSE comment line. Default DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// MaxBody bounds a request body in bytes; larger bodies get 413.
	// Default 64 KiB.
	MaxBody int64
	// UnregisterTimeout bounds unregistering a stream that ended. Default 5s.
	UnregisterTimeout time.Duration
	// Counter, if set, is the counting hook of the layer's Redis clients;
	// GET /metrics/redis reports its counts per operation.
	Counter *counter.Hook
	// Logger receives one line per failed layer call. Default: discard.
	Logger *slog.Logger
	// Stream bounds each SSE stream (queue, write deadline, retry).
	Stream StreamOptions
	// CORS lists the other origins whose pages may use the service from
	// a browser. Default: none.
	CORS CORS
	// Control, when set, serves the harness control API under /_harness/
	// (docs/http.md), guarded by its Token. Default nil: not served (404).
	// Never set it in production: it lets its caller replace the layer.
	Control *Control

	// BodyTimeout bounds reading a request body: a client that has sent
	// its headers and trickles the body is disconnected once it passes.
	// Default 10s.
	BodyTimeout time.Duration
	// WriteTimeout bounds a response other than an SSE stream, from the
	// request's headers to its last byte. SSE streams have none here: a
	// stream lives as long as its client. Default 60s.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that has sent no request
	// for this long. Default 60s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header block; larger gets 431.
	// Default 32 KiB.
	MaxHeaderBytes int
}

func (o Options) withDefaults() Options {
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	if o.UnregisterTimeout <= 0 {
		o.UnregisterTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 60 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 32 << 10
	}
	return o
}

// Service serves one layer over HTTP. It is an http.Handler; Start runs it
// on its own listener.
type Service struct {
	opts Options
	mux  *http.ServeMux

	mu        sync.Mutex
	layer     *impl.Layer                   // replaced by a reset (control API)
	heartbeat time.Duration                 // SSE heartbeat interval of new streams
	streams   map[string]context.CancelFunc // connection ID -> stop
	wg        sync.WaitGroup                // open streams
	closing   bool                          // Shutdown has begun
	resetting bool                          // a reset waits for the streams to end
	srv       *http.Server
	done      chan struct{} // closed when srv.Serve returns
}

// New returns a service over layer. Every response carries the header
// X-Layer-Mode: the layer's mode (redis or memory) when it answered.
func New(layer *impl.Layer, opts Options) *Service {
	opts = opts.withDefaults()
	s := &Service{layer: layer, heartbeat: opts.HeartbeatInterval, opts: opts, mux: http.NewServeMux(), streams: map[string]context.CancelFunc{}}
	s.mux.HandleFunc("GET /health", s.health)
	s.mux.HandleFunc("GET /health/redis", s.healthRedis)
	s.mux.HandleFunc("GET /metrics/redis", s.metrics)
	s.mux.HandleFunc("GET /flows/{id}/events", s.stream)
	s.mux.HandleFunc("POST /flows/{id}/events", s.publish)
	s.mux.HandleFunc("GET /flows/{id}/events/history", s.history)
	s.mux.HandleFunc("GET /flows/{id}/state", s.getState)
	s.mux.HandleFunc("PUT /flows/{id}/state", s.putState)
	s.mux.HandleFunc("DELETE /flows/{id}/state", s.deleteState)
	if opts.Control != nil {
		s.control()
	}
	return s
}

// streamPattern is the route of the SSE stream, which has no write
// deadline here.
const streamPattern = "GET /flows/{id}/events"

// ServeHTTP implements http.Handler. Before the route's handler runs it
// sets the request's body and write deadlines, answers CORS (headers for
// an allowed origin, preflights) and checks the headers the service stores
// (X-User-ID, User-Agent); a path or method the contract does not know
// gets a JSON error.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := s.mux.Handler(r)
	rc := http.NewResponseController(w)
	now := time.Now()
	if r.Body != nil && r.Body != http.NoBody {
		// Errors mean the writer cannot set deadlines (not a served
		// connection, e.g. httptest.ResponseRecorder): nothing to bound.
		_ = rc.SetReadDeadline(now.Add(s.opts.BodyTimeout))
	}
	if pattern != streamPattern {
		_ = rc.SetWriteDeadline(now.Add(s.opts.WriteTimeout))
	}
	if s.cors(w, r) {
		return
	}
	if msg := capHeaders(r.Header); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	if pattern == "" {
		w = &jsonErrorWriter{ResponseWriter: w, r: r}
	}
	s.mux.ServeHTTP(&modeWriter{ResponseWriter: w, s: s}, r)
}

// current is the layer requests are served by now.
func (s *Service) current() *impl.Layer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.layer
}

// Layer is the layer the service serves now: the one given to New, or the
// one the last reset built. It is the caller's to close.
func (s *Service) Layer() *impl.Layer { return s.current() }

// modeWriter sets X-Layer-Mode when the response header is written, so
// that it says the mode the layer answered in.
type modeWriter struct {
	http.ResponseWriter
	s     *Service
	wrote bool
}

func (m *modeWriter) WriteHeader(code int) {
	if !m.wrote {
		m.wrote = true
		if m.Header().Get("X-Layer-Mode") == "" {
			m.Header().Set("X-Layer-Mode", m.s.current().Manager.Mode())
		}
	}
	m.ResponseWriter.WriteHeader(code)
}

func (m *modeWriter) Write(b []byte) (int, error) {
	if !m.wrote {
		m.WriteHeader(http.StatusOK)
	}
	return m.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the flusher.
func (m *modeWriter) Unwrap() http.ResponseWriter { return m.ResponseWriter }

// Start listens on addr (e.g. "127.0.0.1:0" for a free port) and serves in
// the background. It returns the base URL ("http://127.0.0.1:port").
func (s *Service) Start(ctx context.Context, addr string) (string, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("service: listen %s: %w", addr, err)
	}
	// No ReadTimeout or WriteTimeout on the server: they would end SSE
	// streams. ServeHTTP sets per-request body and write deadlines instead.
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: s.opts.IdleTimeout, MaxHeaderBytes: s.opts.MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	s.mu.Lock()
	s.srv, s.done = srv, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("serve", "err", err)
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// Streams is the number of SSE streams open now.
func (s *Service) Streams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// Shutdown refuses new streams, ends the open ones (each unregisters its
// connection), then stops the server if Start started one. It does not
// close the layer.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for _, stop := range s.streams {
		stop()
	}
	srv, done := s.srv, s.done
	s.mu.Unlock()
	ended := make(chan struct{})
	go func() { s.wg.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-ctx.Done():
		return fmt.Errorf("service: waiting for streams to end: %w", ctx.Err())
	}
	if srv == nil {
		return nil
	}
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("service: shutdown: %w", err)
	}
	<-done
	return nil
}

// idRE is the accepted form of flow and event IDs.
var idRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// flowID validates the {id} path segment, answering 400 when it is bad.
func flowID(w http.ResponseWriter, r *http.Request) (string, bool) {
	return pathID(w, r, "id", "flow")
}

// pathID validates the path segment key (a what id), answering 400 when
// it is bad.
func pathID(w http.ResponseWriter, r *http.Request, key, what string) (string, bool) {
	id := r.PathValue(key)
	if !idRE.MatchString(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid %s id %q: want 1-128 characters of [A-Za-z0-9_.:-]", what, truncate(id, 64)))
		return "", false
	}
	return id, true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// newID returns prefix-<16 hex digits>.
func newID(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}
