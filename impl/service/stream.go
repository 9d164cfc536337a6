package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gonogo/harness/impl"
)

// open records a new stream and returns the layer it runs on and its
// heartbeat interval; it returns false once Shutdown has begun or while a
// reset (control API) waits for the streams of the layer it replaces.
func (s *Service) open(connID string, stop context.CancelFunc) (*impl.Layer, time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.resetting {
		return nil, 0, false
	}
	s.streams[connID] = stop
	s.wg.Add(1)
	return s.layer, s.heartbeat, true
}

func (s *Service) closeStream(connID string) {
	s.mu.Lock()
	delete(s.streams, connID)
	s.mu.Unlock()
	s.wg.Done()
}

// stream is GET /flows/{id}/events: subscribe (resuming after
// Last-Event-ID), register the connection, then write events and
// heartbeats until the client leaves or the service shuts down; unregister
// at the end.
func (s *Service) stream(w http.ResponseWriter, r *http.Request) {
	flow, ok := flowID(w, r)
	if !ok {
		return
	}
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = r.URL.Query().Get("last_event_id")
	}
	connID := newID("conn")
	ctx, stop := context.WithCancel(r.Context())
	defer stop()
	l, heartbeat, ok := s.open(connID, stop)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "shutting down or resetting")
		return
	}
	defer s.closeStream(connID)

	events, err := l.Bus.Subscribe(ctx, flow, after)
	if err != nil {
		s.unavailable(w, "subscribe", err)
		return
	}
	if err := l.Registry.Register(ctx, s.conn(r, connID, flow)); err != nil {
		s.unavailable(w, "register", err)
		return
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.UnregisterTimeout)
		defer cancel()
		if err := l.Registry.Unregister(uctx, connID); err != nil {
			s.opts.Logger.Warn("unregister", "conn", connID, "err", err)
		}
	}()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Connection-ID", connID)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(text string) bool {
		if _, err := fmt.Fprint(w, text); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(": connected " + connID + "\n\n") {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-tick.C:
			if err := l.Registry.Heartbeat(ctx, connID); err != nil {
				s.opts.Logger.Warn("heartbeat", "conn", connID, "err", err)
			}
			if !send(": heartbeat " + t.UTC().Format(time.RFC3339) + "\n\n") {
				return
			}
		case e, ok := <-events:
			if !ok {
				return
			}
			frame, err := formatEvent(e)
			if err != nil {
				s.opts.Logger.Warn("encode event", "id", e.ID, "err", err)
				continue
			}
			if !send(frame) {
				return
			}
		}
	}
}

func (s *Service) conn(r *http.Request, connID, flow string) impl.Conn {
	user := r.Header.Get("X-User-ID")
	if user == "" {
		user = "anonymous"
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return impl.Conn{ID: connID, FlowID: flow, UserID: user,
		ClientInfo: map[string]string{"ip": host, "user_agent": r.UserAgent()}}
}

// oneLine keeps a value from breaking out of its SSE field.
var oneLine = strings.NewReplacer("\r", " ", "\n", " ")

// formatEvent renders e as one SSE frame:
// "id: <cursor>\nevent: <type>\ndata: <json>\n\n".
func formatEvent(e impl.Event) (string, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if e.Cursor != "" {
		fmt.Fprintf(&b, "id: %s\n", oneLine.Replace(e.Cursor))
	}
	fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", oneLine.Replace(e.Type), data)
	return b.String(), nil
}
