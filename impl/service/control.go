package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gonogo/harness/impl"
)

// Control configures the harness control API (docs/http.md, "Harness
// control API"): a reset builds a fresh layer from Base with the reset's
// overrides, and the registry can be driven directly. Every control
// request must carry "Authorization: Bearer <Token>".
type Control struct {
	// Token is the secret every control request must send. Empty: every
	// control request is refused (401).
	Token string
	// New builds a layer from cfg. Required.
	New func(ctx context.Context, cfg impl.Config) (*impl.Layer, error)
	// Base is what a reset's overrides apply to; the Redis URL, TLS,
	// server ID and hooks always stay as Base says.
	Base impl.Config
	// StreamWait bounds how long a reset waits for the SSE streams of the
	// layer it replaces to end. Default 10s.
	StreamWait time.Duration

	mu sync.Mutex // one reset at a time
	// prefix is the key prefix of the layer the last reset built (reset
	// says whether there was one: before, Base's).
	prefix string
	reset  bool
}

// FlowPlaceholder stands for the flow ID in the stream key GET /_harness
// names ("streams"), which the harness reads under a reset's key prefix.
const FlowPlaceholder = "{flow}"

// MinTokenLength is the shortest control token `harness serve` accepts.
const MinTokenLength = 16

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
	DrainTimeoutMS      int64 `json:"drain_timeout_ms,omitempty"`
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
		DrainTimeoutMS:      ms(cfg.DrainTimeout),
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

// A resetRange is the allowed range of one numeric field of a reset; 0
// (absent) always means "keep the base's".
type resetRange struct {
	name     string
	v        int64
	min, max int64
}

const (
	second = int64(time.Second / time.Millisecond)
	hour   = 3600 * second
	day    = 24 * hour
)

// ranges lists every numeric field of r with its allowed range: sizes
// that bound memory and Redis connections, durations that stay far from
// overflowing time.Duration and from busy-looping tickers.
func (r Reset) ranges() []resetRange {
	return []resetRange{
		{"pool_size", int64(r.PoolSize), 1, 500},
		{"connect_timeout_ms", r.ConnectTimeoutMS, 1, 60 * second},
		{"drain_timeout_ms", r.DrainTimeoutMS, 1, int64(impl.MaxDrainTimeout / time.Millisecond)},
		{"publish_budget_ms", r.PublishBudgetMS, 1, 60 * second},
		{"call_budget_ms", r.CallBudgetMS, 1, 60 * second},
		{"probe_interval_ms", r.ProbeIntervalMS, 10, hour},
		{"health_interval_ms", r.HealthIntervalMS, 10, hour},
		{"stream_maxlen", r.StreamMaxLen, 1, 1_000_000},
		{"stream_ttl_ms", r.StreamTTLMS, 1, 30 * day},
		{"memory_events", int64(r.MemoryEvents), 1, 100_000},
		{"outbox_cap", int64(r.OutboxCap), 1, 1_000_000},
		{"registry_ttl_ms", r.RegistryTTLMS, 1, day},
		{"cleanup_interval_ms", r.CleanupIntervalMS, 10, hour},
		{"cache_ttl_active_ms", r.CacheTTLActiveMS, 1, 30 * day},
		{"cache_ttl_completed_ms", r.CacheTTLCompletedMS, 1, 30 * day},
		{"cache_ttl_failed_ms", r.CacheTTLFailedMS, 1, 30 * day},
		{"heartbeat_interval_ms", r.HeartbeatIntervalMS, 10, hour},
	}
}

// maxKeyPrefix bounds key_prefix, which prefixes every key.
const maxKeyPrefix = 256

// Validate checks every field of r against its range; the error names
// each field out of range and the range allowed.
func (r Reset) Validate() error {
	var bad []string
	for _, f := range r.ranges() {
		if f.v != 0 && (f.v < f.min || f.v > f.max) {
			bad = append(bad, fmt.Sprintf("%s %d: want 0 (keep) or %d-%d", f.name, f.v, f.min, f.max))
		}
	}
	if len(r.KeyPrefix) > maxKeyPrefix || strings.IndexFunc(r.KeyPrefix, func(c rune) bool { return c <= ' ' || c > '~' }) >= 0 {
		bad = append(bad, fmt.Sprintf("key_prefix %q: want at most %d printable ASCII characters, no spaces", truncate(r.KeyPrefix, 64), maxKeyPrefix))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
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
		{r.ConnectTimeoutMS, &c.ConnectTimeout}, {r.DrainTimeoutMS, &c.DrainTimeout}, {r.PublishBudgetMS, &c.PublishBudget},
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
	if c.JournalDir != "" {
		// One journal per key prefix, under the service's: the layer a
		// reset replaces may still hold the journal it used (one layer
		// per directory), and an instance started again on the same
		// directory and reset to the same prefix finds what it kept.
		sum := sha256.Sum256([]byte(c.KeyPrefix))
		c.JournalDir = filepath.Join(c.JournalDir, "prefix-"+hex.EncodeToString(sum[:8]))
	}
	return c
}

// control registers the control API's routes, each behind the token.
func (s *Service) control() {
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /_harness":                                        s.controlInfo,
		"POST /_harness/reset":                                 s.reset,
		"POST /_harness/registry/connections":                  s.regRegister,
		"POST /_harness/registry/connections/{conn}/heartbeat": s.regHeartbeat,
		"DELETE /_harness/registry/connections/{conn}":         s.regUnregister,
		"GET /_harness/registry/flows/{id}":                    s.regLookup,
		"POST /_harness/registry/cleanup":                      s.regCleanup,
	} {
		s.mux.HandleFunc(pattern, s.guard(h))
	}
}

// guard answers 401 to a request without "Authorization: Bearer <token>"
// of the control's token (compared in constant time), and to every
// request when the token is empty.
func (s *Service) guard(h http.HandlerFunc) http.HandlerFunc {
	want := sha256.Sum256([]byte(s.opts.Control.Token))
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || s.opts.Control.Token == "" || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="harness-control"`)
			writeError(w, http.StatusUnauthorized, "control API: want the header Authorization: Bearer followed by the service's HARNESS_CONTROL_TOKEN")
			return
		}
		h(w, r)
	}
}

// controlInfo answers GET /_harness: the abilities, the profile and, when
// the layer names its streams (impl.Streams), their key without the key
// prefix, so that the harness reads them from Redis itself.
func (s *Service) controlInfo(w http.ResponseWriter, r *http.Request) {
	c := s.opts.Control
	c.mu.Lock()
	prefix := c.Base.KeyPrefix
	if c.reset {
		prefix = c.prefix
	}
	l := s.current()
	c.mu.Unlock()
	info := map[string]any{"control": 1, "abilities": Abilities, "profile": l.Profile}
	if st, ok := l.Bus.(impl.Streams); ok {
		if k := st.StreamKey(FlowPlaceholder); strings.HasPrefix(k, prefix) {
			info["streams"] = k[len(prefix):]
		}
	}
	writeJSON(w, http.StatusOK, info)
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
	if err := req.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "reset: "+err.Error())
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := req.Apply(c.Base)
	heartbeat := s.opts.HeartbeatInterval
	if req.HeartbeatIntervalMS > 0 {
		heartbeat = time.Duration(req.HeartbeatIntervalMS) * time.Millisecond
	}
	// A reset to the key prefix the current layer serves builds its layer
	// on the journal the current one holds (one layer per directory): the
	// current one lets it go first (its streams end, what its outbox holds
	// is written to Redis or kept in the journal for the new one).
	// Requests until the new layer serves get the closed one's errors.
	var closed *impl.Layer
	if cfg.JournalDir != "" && c.reset && cfg.KeyPrefix == c.prefix {
		closed = s.current()
		s.closeFor(closed, "reset: closing the layer for its journal")
	}
	l, err := c.New(context.WithoutCancel(r.Context()), cfg)
	if err != nil {
		writeError(w, http.StatusBadRequest, "reset: "+err.Error())
		return
	}
	old := s.swap(l, heartbeat, c.StreamWait)
	c.prefix, c.reset = cfg.KeyPrefix, true
	if old != closed {
		s.closeFor(old, "reset: closing the replaced layer")
	}
	if s.opts.Counter != nil {
		s.opts.Counter.Reset()
	}
	writeJSON(w, http.StatusOK, map[string]any{"profile": l.Profile, "mode": l.Manager.Mode(), "key_prefix": req.KeyPrefix})
}

// closeFor closes l, logging an error with why.
func (s *Service) closeFor(l *impl.Layer, why string) {
	if err := l.Close(); err != nil {
		s.opts.Logger.Warn(why, "err", err)
	}
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
	if msg := checkConn(c); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
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
	ctx, note := impl.WithModeNote(r.Context())
	ids, err := s.current().Registry.Lookup(ctx, flow)
	if err != nil {
		s.unavailable(w, "lookup", err)
		return
	}
	if ids == nil {
		ids = []string{}
	}
	if m := note.Or(""); m != "" {
		w.Header().Set("X-Layer-Mode", m) // where this answer came from (modeWriter keeps it)
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

// Bounds of what a registered connection may carry besides its IDs.
const (
	maxClientInfo    = 16
	maxClientInfoKey = 64
)

// checkConn checks the user_id and client_info of a connection to
// register; it returns the 400 message, or "".
func checkConn(c impl.Conn) string {
	if c.UserID != "" && !userIDRE.MatchString(c.UserID) {
		return fmt.Sprintf("user_id %q: %s", truncate(c.UserID, 64), userIDRange)
	}
	if len(c.ClientInfo) > maxClientInfo {
		return fmt.Sprintf("client_info has %d entries: want at most %d", len(c.ClientInfo), maxClientInfo)
	}
	for k, v := range c.ClientInfo {
		if k == "" || len(k) > maxClientInfoKey || len(v) > maxUserAgent {
			return fmt.Sprintf("client_info %q: want keys of 1-%d bytes and values of at most %d bytes", truncate(k, 64), maxClientInfoKey, maxUserAgent)
		}
	}
	return ""
}
