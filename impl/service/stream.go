package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
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

// StreamOptions bound what one SSE stream may cost (docs/http.md, "Slow
// consumers"). Zero values mean the default stated on each field; -1
// disables a bound.
type StreamOptions struct {
	// QueueEvents and QueueBytes bound the events waiting to be written
	// to one stream (counted as the bytes of their SSE frames). Past
	// either the stream is closed: its client resumes with Last-Event-ID.
	// Defaults 4096 events and 4 MiB.
	QueueEvents int
	QueueBytes  int64
	// WriteTimeout bounds every write (and flush) of the stream: a client
	// that does not read for that long loses the stream. Shutdown ends a
	// write in progress at once. Default 10s.
	WriteTimeout time.Duration
	// Retry is sent as the stream's "retry:" field: how long a browser's
	// EventSource waits before it reconnects once the stream ended. The
	// service ends streams only at shutdown, on a reset or for a slow
	// consumer, and the client misses live delivery until it is back, so
	// the default is short: 100ms.
	Retry time.Duration
	// UnavailableRetry is the "retry:" of a stream that could not start
	// (the layer could not subscribe or register the connection, or the
	// service is shutting down or resetting): it is answered 200 with
	// that field and a comment saying why, then ended, so that a
	// browser's EventSource tries again rather than give up as it does on
	// any other status. Default 1s.
	UnavailableRetry time.Duration
	// Unnamed leaves the "event:" field out of every event, so that a
	// browser's EventSource hands every event to onmessage (its type is
	// the event_type of data). Default false: an event is named by its
	// event_type and reaches only the listeners of that name.
	Unnamed bool
}

func (o StreamOptions) withDefaults() StreamOptions {
	if o.QueueEvents == 0 {
		o.QueueEvents = 4096
	}
	if o.QueueBytes == 0 {
		o.QueueBytes = 4 << 20
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = 100 * time.Millisecond
	}
	if o.UnavailableRetry <= 0 {
		o.UnavailableRetry = time.Second
	}
	return o
}

// frames is a stream's queue of SSE frames between the goroutine that
// reads the subscription and the one that writes the response.
type frames struct {
	mu     sync.Mutex
	q      []string
	bytes  int64
	wake   chan struct{}
	events int   // bound, -1 none
	max    int64 // bound in bytes, -1 none
}

// push queues a frame; it reports false when the queue is past a bound.
func (f *frames) push(frame string) bool {
	f.mu.Lock()
	f.q = append(f.q, frame)
	f.bytes += int64(len(frame))
	over := (f.events >= 0 && len(f.q) > f.events) || (f.max >= 0 && f.bytes > f.max)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return !over
}

// take empties the queue.
func (f *frames) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.q
	f.q, f.bytes = nil, 0
	return q
}

// stream is GET /flows/{id}/events: subscribe (resuming after
// Last-Event-ID), register the connection, then write events and
// heartbeats until the client leaves or the service shuts down; unregister
// at the end. The subscription is read into a bounded queue of frames
// while the response is written with a deadline per write: a client that
// falls behind past the queue's bound or stops reading past the deadline
// loses the stream, never the service's memory or its shutdown.
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
	o := s.opts.Stream.withDefaults()
	l, heartbeat, ok := s.open(connID, stop)
	if !ok {
		s.notStarted(w, o, "shutting down or resetting", nil)
		return
	}
	defer s.closeStream(connID)

	events, start, err := impl.SubscribeAt(ctx, l.Bus, flow, after)
	if err != nil {
		s.notStarted(w, o, "subscribe failed", err)
		return
	}
	if err := l.Registry.Register(ctx, s.conn(r, connID, flow)); err != nil {
		s.notStarted(w, o, "register failed", err)
		return
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.UnregisterTimeout)
		defer cancel()
		if err := l.Registry.Unregister(uctx, connID); err != nil {
			s.opts.Logger.Warn("unregister", "conn", connID, "err", err)
		}
	}()

	sseHeaders(w.Header())
	w.Header().Set("X-Connection-ID", connID)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if o.WriteTimeout > 0 {
		// The stream ending (shutdown, overflow, client gone) ends a
		// write in progress. send sets its deadline before it looks at
		// ctx, so a deadline set here is never overwritten unseen.
		defer context.AfterFunc(ctx, func() { rc.SetWriteDeadline(time.Now()) })()
	}
	send := func(text string) bool {
		if o.WriteTimeout > 0 && rc.SetWriteDeadline(time.Now().Add(o.WriteTimeout)) != nil {
			return false
		}
		if ctx.Err() != nil {
			return false
		}
		if _, err := io.WriteString(w, text); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// The first frame names where the stream starts (id:, when the layer
	// can say and the client sent no cursor it could resume after): a
	// client that moves before its first event resumes from there.
	first := fmt.Sprintf("retry: %d\n", o.Retry.Milliseconds())
	if start != "" && start != after {
		first += "id: " + start + "\n"
	}
	if !send(first + ": connected " + connID + "\n\n") {
		return
	}

	q := &frames{wake: make(chan struct{}, 1), events: o.QueueEvents, max: o.QueueBytes}
	read := make(chan struct{})
	go func() {
		defer close(read)
		s.queue(ctx, stop, connID, events, q)
	}()
	defer func() {
		stop() // ends the subscription, and so the reader
		<-read
	}()
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
		case <-q.wake:
			for _, frame := range q.take() {
				if !send(frame) {
					return
				}
			}
		case <-read:
			// The subscription ended (the layer closed): write what is
			// queued, then end the stream.
			for _, frame := range q.take() {
				if !send(frame) {
					return
				}
			}
			return
		}
	}
}

// sseHeaders are the headers of every event stream.
func sseHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
}

// notStarted answers an SSE request whose stream cannot start for a
// reason that passes (an outage, a shutdown, a reset): 200, the
// UnavailableRetry as "retry:" and a comment ": unavailable <why>", then
// the end of the stream. A browser's EventSource reconnects after the
// retry time (with its Last-Event-ID), where a 503 would end it for good;
// the harness's clients read the missing "connected" comment as a failed
// connect.
func (s *Service) notStarted(w http.ResponseWriter, o StreamOptions, why string, err error) {
	if err != nil {
		s.opts.Logger.Warn(why, "err", err)
		why += ": " + err.Error()
	}
	sseHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: %d\n: unavailable %s\n\n", o.UnavailableRetry.Milliseconds(), oneLine.Replace(why))
}

// queue reads the subscription into q until it ends; past q's bound it
// ends the stream (stop).
func (s *Service) queue(ctx context.Context, stop context.CancelFunc, connID string, events <-chan impl.Event, q *frames) {
	for e := range events {
		frame, err := formatEvent(e, s.opts.Stream.Unnamed)
		if err != nil {
			s.opts.Logger.Warn("encode event", "id", e.ID, "err", err)
			continue
		}
		if !q.push(frame) {
			s.opts.Logger.Warn("slow consumer: stream closed", "conn", connID, "queue_limit_events", q.events, "queue_limit_bytes", q.max)
			stop()
			// The subscription closes its channel once ctx ended.
			for range events {
			}
			return
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
// "id: <cursor>\nevent: <type>\ndata: <json>\n\n" (no event: line when
// unnamed).
func formatEvent(e impl.Event, unnamed bool) (string, error) {
	data, err := json.Marshal(wire(e))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if e.Cursor != "" {
		fmt.Fprintf(&b, "id: %s\n", oneLine.Replace(e.Cursor))
	}
	if !unnamed {
		fmt.Fprintf(&b, "event: %s\n", oneLine.Replace(e.Type))
	}
	fmt.Fprintf(&b, "data: %s\n\n", data)
	return b.String(), nil
}
