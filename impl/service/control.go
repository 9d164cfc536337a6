package service

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gonogo/harness/impl"
)

// Control configures the harness control API (docs/http.md, "Harness
// control API"): a reset builds a fresh layer from Base with the reset's
// overrides, and the registry can be driven directly.
type Control struct {
	// New builds a layer from cfg. Required.
	New func(ctx context.Context, cfg impl.Config) (*impl.Layer, error)
	// Base is what a reset's overrides apply to; the Redis URL, TLS,
	// server ID and hooks always stay as Base says.
	Base impl.Config
	// StreamWait bounds how long a reset waits for the SSE streams of the
	// layer it replaces to end. Default 10s.
	StreamWait time.Duration

	mu sync.Mutex // one reset at a time
}

// Abilities are what GET /_harness lists: reset and registry.
var Abilities = []string{"reset", "registry"}

// Reset is the body of POST /_harness/reset. An absent (zero) field keeps
// the service's base configuration; durations are in milliseconds.
// Unknown fields are ignored.
type Reset struct {
	// KeyPrefix namespaces every key and channel of the new layer.
	KeyPrefix string `json:"key_prefix"`
	Enabled   *bool  `json:"enabled,omitempty"`
	EventBus  *bool  `json:"event_bus,omitempty"`
	Cache     *bool  `json:"cache,omitempty"`
	SSE       *bool  `json:"sse,omitempty"`

	PoolSize            int   `json:"pool_size,omitempty"`
	ConnectTimeoutMS    int64 `json:"connect_timeout_ms,omitempty"`
	PublishBudgetMS     int64 `json:"publish_budget_ms,omitempty"`
	CallBudgetMS        int64 `json:"call_budget_ms,omitempty"`
	ProbeIntervalMS     int64 `json:"probe_interval_ms,omitempty"`
	HealthIntervalMS    int64 `json:"health_interval_ms,omitempty"`
	StreamMaxLen        int64 `json:"stream_maxlen,omitempty"`
	StreamTTLMS         int64 `json:"stream_ttl_ms,omitempty"`
	MemoryEvents        int   `json:"memory_events,omitempty"`
	OutboxCap           int   `json:"outbox_cap,omitempty"`
	RegistryTTLMS       int64 `json:"registry_ttl_ms,omitempty"`
	CleanupIntervalMS   int64 `json:"cleanup_interval_ms,omitempty"`
	CacheTTLActiveMS    int64 `json:"cache_ttl_active_ms,omitempty"`
	CacheTTLCompletedMS int64 `json:"cache_ttl_completed_ms,omitempty"`
	CacheTTLFailedMS    int64 `json:"cache_ttl_failed_ms,omitempty"`
	// HeartbeatIntervalMS is the SSE heartbeat of streams opened after
	// the reset. Default: the service's.
	HeartbeatIntervalMS int64 `json:"heartbeat_interval_ms,omitempty"`
}

// ResetFor is the reset that sets every override cfg carries (the flags,
// sizes, budgets, intervals and TTLs, and KeyPrefix; not URL, TLS, server
// ID or hooks), with heartbeat as the SSE heartbeat (0: the service's).
func ResetFor(cfg impl.Config, heartbeat time.Duration) Reset {
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	return Reset{
		KeyPrefix: cfg.KeyPrefix,
		Enabled:   &cfg.Enabled, EventBus: &cfg.EventBus, Cache: &cfg.Cache, SSE: &cfg.SSE,
		PoolSize:            cfg.PoolSize,
		ConnectTimeoutMS:    ms(cfg.ConnectTimeout),
		PublishBudgetMS:     ms(cfg.PublishBudget),
		CallBudgetMS:        ms(cfg.CallBudget),
		ProbeIntervalMS:     ms(cfg.ProbeInterval),
		HealthIntervalMS:    ms(cfg.HealthInterval),
		StreamMaxLen:        cfg.StreamMaxLen,
		StreamTTLMS:         ms(cfg.StreamTTL),
		MemoryEvents:        cfg.MemoryEvents,
		OutboxCap:           cfg.OutboxCap,
		RegistryTTLMS:       ms(cfg.RegistryTTL),
		CleanupIntervalMS:   ms(cfg.CleanupInterval),
		CacheTTLActiveMS:    ms(cfg.CacheTTLActive),
		CacheTTLCompletedMS: ms(cfg.CacheTTLCompleted),
		CacheTTLFailedMS:    ms(cfg.CacheTTLFailed),
		HeartbeatIntervalMS: ms(heartbeat),
	}
}

// Apply returns base with the reset's overrides.
func (r Reset) Apply(base impl.Config) impl.Config {
	c := base
	if r.KeyPrefix != "" {
		c.KeyPrefix = r.KeyPrefix
	}
	for _, f := range []struct {
		v   *bool
		dst *bool
	}{{r.Enabled, &c.Enabled}, {r.EventBus, &c.EventBus}, {r.Cache, &c.Cache}, {r.SSE, &c.SSE}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	for _, f := range []struct {
		ms  int64
		dst *time.Duration
	}{
		{r.ConnectTimeoutMS, &c.ConnectTimeout}, {r.PublishBudgetMS, &c.PublishBudget},
		{r.CallBudgetMS, &c.CallBudget}, {r.ProbeIntervalMS, &c.ProbeInterval},
		{r.HealthIntervalMS, &c.HealthInterval}, {r.StreamTTLMS, &c.StreamTTL},
		{r.RegistryTTLMS, &c.RegistryTTL}, {r.CleanupIntervalMS, &c.CleanupInterval},
		{r.CacheTTLActiveMS, &c.CacheTTLActive}, {r.CacheTTLCompletedMS, &c.CacheTTLCompleted},
		{r.CacheTTLFailedMS, &c.CacheTTLFailed},
	} {
		if f.ms > 0 {
			*f.dst = time.Duration(f.ms) * time.Millisecond
		}
	}
	if r.PoolSize > 0 {
		c.PoolSize = r.PoolSize
	}
	if r.StreamMaxLen > 0 {
		c.StreamMaxLen = r.StreamMaxLen
	}
	if r.MemoryEvents > 0 {
		c.MemoryEvents = r.MemoryEvents
	}
	if r.OutboxCap > 0 {
		c.OutboxCap = r.OutboxCap
	}
	return c
}

// control registers the control API's routes.
func (s *Service) control() {
	s.mux.HandleFunc("GET /_harness", s.controlInfo)
	s.mux.HandleFunc("POST /_harness/reset", s.reset)
	s.mux.HandleFunc("POST /_harness/registry/connections", s.regRegister)
	s.mux.HandleFunc("POST /_harness/registry/connections/{conn}/heartbeat", s.regHeartbeat)
	s.mux.HandleFunc("DELETE /_harness/registry/connections/{conn}", s.regUnregister)
	s.mux.HandleFunc("GET /_harness/registry/flows/{id}", s.regLookup)
	s.mux.HandleFunc("POST /_harness/registry/cleanup", s.regCleanup)
}

func (s *Service) controlInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"control": 1, "abilities": Abilities, "profile": s.current().Profile})
}

// reset builds a layer from the control's base configuration with the
// request's overrides, ends the streams of the current layer, swaps the new
// one in, closes the old one and zeroes the command counts.
func (s *Service) reset(w http.ResponseWriter, r *http.Request) {
	c := s.opts.Control
	var req Reset
	if !s.decode(w, r, &req) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.New(context.WithoutCancel(r.Context()), req.Apply(c.Base))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reset: "+err.Error())
		return
	}
	heartbeat := s.opts.HeartbeatInterval
	if req.HeartbeatIntervalMS > 0 {
		heartbeat = time.Duration(req.HeartbeatIntervalMS) * time.Millisecond
	}
	old := s.swap(l, heartbeat, c.StreamWait)
	if err := old.Close(); err != nil {
		s.opts.Logger.Warn("reset: closing the replaced layer", "err", err)
	}
	if s.opts.Counter != nil {
		s.opts.Counter.Reset()
	}
	writeJSON(w, http.StatusOK, map[string]any{"profile": l.Profile, "mode": l.Manager.Mode(), "key_prefix": req.KeyPrefix})
}

// swap makes l the current layer, ends every open stream and waits (at
// most wait, default 10s) for them to end; it returns the layer replaced.
// No stream opens meanwhile.
func (s *Service) swap(l *impl.Layer, heartbeat, wait time.Duration) *impl.Layer {
	if wait <= 0 {
		wait = 10 * time.Second
	}
	s.mu.Lock()
	old := s.layer
	s.layer, s.heartbeat, s.resetting = l, heartbeat, true
	for _, stop := range s.streams {
		stop()
	}
	s.mu.Unlock()
	for deadline := time.Now().Add(wait); s.Streams() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.opts.Logger.Warn("reset: streams still open", "streams", s.Streams())
			break
		}
	}
	s.mu.Lock()
	s.resetting = false
	s.mu.Unlock()
	return old
}

func (s *Service) regRegister(w http.ResponseWriter, r *http.Request) {
	var c impl.Conn
	if !s.decode(w, r, &c) {
		return
	}
	if !idRE.MatchString(c.ID) || !idRE.MatchString(c.FlowID) {
		writeError(w, http.StatusBadRequest, "connection_id and flow_id: want 1-128 characters of [A-Za-z0-9_.:-]")
		return
	}
	s.noContent(w, "register", s.current().Registry.Register(r.Context(), c))
}

func (s *Service) regHeartbeat(w http.ResponseWriter, r *http.Request) {
	if id, ok := pathID(w, r, "conn", "connection"); ok {
		s.noContent(w, "heartbeat", s.current().Registry.Heartbeat(r.Context(), id))
	}
}

func (s *Service) regUnregister(w http.ResponseWriter, r *http.Request) {
	if id, ok := pathID(w, r, "conn", "connection"); ok {
		s.noContent(w, "unregister", s.current().Registry.Unregister(r.Context(), id))
	}
}

// noContent answers 204, or 503 for err.
func (s *Service) noContent(w http.ResponseWriter, what string, err error) {
	if err != nil {
		s.unavailable(w, what, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) regLookup(w http.ResponseWriter, r *http.Request) {
	flow, ok := flowID(w, r)
	if !ok {
		return
	}
	ids, err := s.current().Registry.Lookup(r.Context(), flow)
	if err != nil {
		s.unavailable(w, "lookup", err)
		return
	}
	if ids == nil {
		ids = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"flow_id": flow, "connections": ids})
}

func (s *Service) regCleanup(w http.ResponseWriter, r *http.Request) {
	n, err := s.current().Registry.Cleanup(r.Context())
	if err != nil {
		s.unavailable(w, "cleanup", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"removed": n})
}
