package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gonogo/harness/impl"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeError answers {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// unavailable answers 503 for a failed layer call and logs it.
func (s *Service) unavailable(w http.ResponseWriter, what string, err error) {
	s.opts.Logger.Warn(what, "err", err)
	writeError(w, http.StatusServiceUnavailable, what+": "+err.Error())
}

// decode reads one JSON object from the body into v, answering 413 for a
// body over the limit and 400 for anything that is not one JSON value.
func (s *Service) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", tooBig.Limit))
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return false
	}
	// The body is in: the rest of the request has no read deadline (one
	// left would cancel the request's context when it passes).
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON body: "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "malformed JSON body: data after the JSON value")
		return false
	}
	return true
}

// isObject reports whether raw is absent or a JSON object.
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || raw[0] == '{'
}

func (s *Service) health(w http.ResponseWriter, r *http.Request) {
	l := s.current()
	h := l.Manager.Health(r.Context())
	redis := map[string]any{"status": h.Status, "mode": h.Mode}
	if h.Status == "healthy" {
		redis["latency_ms"] = h.LatencyMS
	}
	if h.Error != "" {
		redis["error"] = h.Error
	}
	status := "healthy"
	if h.Status == "unhealthy" || h.Status == "unavailable" {
		status = "degraded"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status":    status,
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"profile":   l.Profile,
		"services":  map[string]any{"database": "unknown", "redis": redis},
	})
}

func (s *Service) healthRedis(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.current().Manager.Info(r.Context()))
}

func (s *Service) metrics(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	l := s.current()
	out := map[string]any{
		"profile": l.Profile,
		"mode":    l.Manager.Mode(),
		"streams": s.Streams(),
	}
	if n, err := l.Registry.Count(ctx); err != nil {
		out["connections_error"] = err.Error()
	} else {
		out["connections"] = n
	}
	if s.opts.Counter != nil {
		out["operations"] = s.opts.Counter.Snapshot()
		out["dials"] = s.opts.Counter.Dials()
	}
	if f := r.URL.Query().Get("flow"); f != "" {
		if !idRE.MatchString(f) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid flow id %q", truncate(f, 64)))
			return
		}
		m, err := l.Cache.Metrics(ctx, f)
		if err != nil {
			s.unavailable(w, "cache metrics", err)
			return
		}
		out["cache"] = m
	}
	writeJSON(w, http.StatusOK, out)
}

// publishRequest is the body of POST /flows/{id}/events.
type publishRequest struct {
	ID            string          `json:"id"`
	Type          string          `json:"event_type"`
	Payload       json.RawMessage `json:"payload"`
	Timestamp     *time.Time      `json:"timestamp"`
	Source        string          `json:"source"`
	CorrelationID string          `json:"correlation_id"`
}

func (s *Service) publish(w http.ResponseWriter, r *http.Request) {
	flow, ok := flowID(w, r)
	if !ok {
		return
	}
	var req publishRequest
	if !s.decode(w, r, &req) {
		return
	}
	switch {
	case req.Type == "":
		writeError(w, http.StatusBadRequest, "event_type is required")
		return
	case req.ID != "" && !idRE.MatchString(req.ID):
		writeError(w, http.StatusBadRequest, "invalid event id: want 1-128 characters of [A-Za-z0-9_.:-]")
		return
	case !isObject(req.Payload):
		writeError(w, http.StatusBadRequest, "payload must be a JSON object")
		return
	}
	e := impl.Event{
		ID: req.ID, FlowID: flow, Type: req.Type, Payload: req.Payload,
		Timestamp: time.Now().UTC(), Source: req.Source, CorrelationID: req.CorrelationID,
	}
	if e.ID == "" {
		e.ID = newID("ev")
	}
	if req.Timestamp != nil {
		e.Timestamp = req.Timestamp.UTC()
	}
	ctx, note := impl.WithModeNote(r.Context())
	if err := s.current().Bus.Publish(ctx, e); err != nil {
		s.unavailable(w, "publish failed", err)
		return
	}
	if m := note.Or(""); m != "" {
		w.Header().Set("X-Layer-Mode", m) // how it was acknowledged (modeWriter keeps it)
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": e.ID, "flow_id": flow})
}

// eventJSON is an event as the contract sends it (history, SSE data):
// every field present, whatever the layer left empty.
type eventJSON struct {
	ID            string          `json:"id"`
	FlowID        string          `json:"flow_id"`
	Type          string          `json:"event_type"`
	Payload       json.RawMessage `json:"payload"`
	Timestamp     time.Time       `json:"timestamp"`
	Source        string          `json:"source"`
	CorrelationID string          `json:"correlation_id"`
	Cursor        string          `json:"cursor"`
}

// wire is e as the contract sends it: payload {} and source "system"
// when the publisher gave none, correlation_id and cursor "" when unset.
func wire(e impl.Event) eventJSON {
	p := bytes.TrimSpace(e.Payload)
	if len(p) == 0 || bytes.Equal(p, []byte("null")) {
		p = []byte("{}")
	}
	if e.Source == "" {
		e.Source = "system"
	}
	return eventJSON{ID: e.ID, FlowID: e.FlowID, Type: e.Type, Payload: p, Timestamp: e.Timestamp,
		Source: e.Source, CorrelationID: e.CorrelationID, Cursor: e.Cursor}
}

func (s *Service) history(w http.ResponseWriter, r *http.Request) {
	flow, ok := flowID(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	count := 100
	if c := q.Get("count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("count %q: want an integer from 1 to 10000", truncate(c, 32)))
			return
		}
		count = n
	}
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since %q: want an RFC 3339 time", truncate(v, 64)))
			return
		}
		since = t
	}
	evs, err := s.current().Bus.History(r.Context(), flow, count, since)
	if err != nil {
		s.unavailable(w, "history", err)
		return
	}
	out := make([]eventJSON, len(evs))
	for i, e := range evs {
		out[i] = wire(e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"flow_id": flow, "events": out})
}

func (s *Service) getState(w http.ResponseWriter, r *http.Request) {
	flow, ok := flowID(w, r)
	if !ok {
		return
	}
	e, err := s.current().Cache.Get(r.Context(), flow)
	if err != nil {
		s.unavailable(w, "cache get", err)
		return
	}
	if !e.Hit {
		if e.Lease != "" {
			w.Header().Set("X-Cache-Lease", e.Lease)
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not cached", "flow_id": flow, "lease": e.Lease})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"flow_id": flow, "state": e.State})
}

// stateRequest is the body of PUT /flows/{id}/state.
type stateRequest struct {
	State  map[string]any `json:"state"`
	Status string         `json:"status"`
	Lease  string         `json:"lease"`
}

func (s *Service) putState(w http.ResponseWriter, r *http.Request) {
	flow, ok := flowID(w, r)
	if !ok {
		return
	}
	var req stateRequest
	if !s.decode(w, r, &req) {
		return
	}
	if req.State == nil {
		writeError(w, http.StatusBadRequest, "state is required and must be a JSON object")
		return
	}
	err := s.current().Cache.Set(r.Context(), flow, req.State, req.Status, req.Lease)
	switch {
	case errors.Is(err, impl.ErrFillRefused):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		s.unavailable(w, "cache set", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Service) deleteState(w http.ResponseWriter, r *http.Request) {
	flow, ok := flowID(w, r)
	if !ok {
		return
	}
	err := s.current().Cache.Invalidate(r.Context(), flow)
	switch {
	case errors.Is(err, impl.ErrInvalidateDeferred):
		writeJSON(w, http.StatusAccepted, map[string]any{"flow_id": flow, "deferred": true, "reason": err.Error()})
	case err != nil:
		s.unavailable(w, "cache invalidate", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// userIDRE is the accepted form of X-User-ID (and of a registered
// connection's user_id); maxUserAgent is how much of User-Agent is kept.
var userIDRE = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,128}$`)

const (
	userIDRange  = "want 1-128 characters of [A-Za-z0-9_.:@-]"
	maxUserAgent = 256
)

// capHeaders checks the request headers the service stores with a
// connection before any handler sees them: X-User-ID must match userIDRE
// (it returns the 400 message when not), User-Agent is cut to its first
// maxUserAgent bytes (a whole UTF-8 character at a time).
func capHeaders(h http.Header) string {
	for _, u := range h.Values("X-User-ID") {
		if !userIDRE.MatchString(u) {
			return fmt.Sprintf("X-User-ID %q: %s", truncate(u, 64), userIDRange)
		}
	}
	if ua := h.Values("User-Agent"); len(ua) > 1 || (len(ua) == 1 && len(ua[0]) > maxUserAgent) {
		h.Set("User-Agent", cutUTF8(ua[0], maxUserAgent))
	}
	return ""
}

// cutUTF8 is s cut to at most n bytes without splitting a UTF-8 character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// jsonErrorWriter turns the mux's own text/plain 404 and 405 answers into
// the contract's {"error": ...}.
type jsonErrorWriter struct {
	http.ResponseWriter
	r       *http.Request
	replied bool
}

func (j *jsonErrorWriter) WriteHeader(code int) {
	if code < 400 || j.replied {
		j.ResponseWriter.WriteHeader(code)
		return
	}
	j.replied = true
	h := j.Header()
	h.Del("Content-Length")
	msg := fmt.Sprintf("no route for %s %s", j.r.Method, truncate(j.r.URL.Path, 128))
	if code == http.StatusMethodNotAllowed {
		msg = fmt.Sprintf("method %s not allowed on %s (allowed: %s)", j.r.Method, truncate(j.r.URL.Path, 128), h.Get("Allow"))
	}
	writeError(j.ResponseWriter, code, msg)
}

// Write drops the mux's text body once the JSON error is written.
func (j *jsonErrorWriter) Write(b []byte) (int, error) {
	if j.replied {
		return len(b), nil
	}
	return j.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (j *jsonErrorWriter) Unwrap() http.ResponseWriter { return j.ResponseWriter }
