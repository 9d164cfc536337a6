package httplayer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gonogo/harness/impl"
)

// bus is the event bus over POST/GET /flows/{id}/events[/history].
type bus client

// namedBus is the bus of a service with the Reset ability that names its
// flows' streams (GET /_harness "streams"): the harness reads them from
// Redis itself, so its loss checks judge what Redis holds, not what the
// service answers.
type namedBus struct {
	*bus
	prefix, key string
}

var _ impl.Streams = (*namedBus)(nil)

// StreamKey is the reset's key prefix and the service's key with the flow ID.
func (b *namedBus) StreamKey(flowID string) string {
	return b.prefix + strings.Replace(b.key, FlowPlaceholder, flowID, 1)
}

// publishBody is the body of POST /flows/{id}/events.
type publishBody struct {
	ID            string          `json:"id,omitempty"`
	Type          string          `json:"event_type"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	Timestamp     string          `json:"timestamp,omitempty"`
	Source        string          `json:"source,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
}

// Publish is POST /flows/{id}/events; 201 is the acknowledgement.
func (b *bus) Publish(ctx context.Context, e impl.Event) error {
	body := publishBody{ID: e.ID, Type: e.Type, Payload: e.Payload, Source: e.Source, CorrelationID: e.CorrelationID}
	if !e.Timestamp.IsZero() {
		body.Timestamp = e.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return (*client)(b).call(ctx, http.MethodPost, flowPath(e.FlowID, "/events"), body, nil, http.StatusCreated)
}

// History is GET /flows/{id}/events/history?count=&since=; count is
// clamped to the contract's 1 … 10000.
func (b *bus) History(ctx context.Context, flowID string, count int, since time.Time) ([]impl.Event, error) {
	q := url.Values{"count": {strconv.Itoa(min(max(count, 1), 10000))}}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	var out struct {
		Events []impl.Event `json:"events"`
	}
	err := (*client)(b).call(ctx, http.MethodGet, flowPath(flowID, "/events/history?"+q.Encode()), nil, &out, http.StatusOK)
	return out.Events, err
}

// connectWait bounds waiting for a stream's ": connected" comment.
const connectWait = 5 * time.Second

// Subscribe opens the flow's SSE stream (resuming after the cursor with
// Last-Event-ID) and returns once the service said it is subscribed (the
// ": connected" comment; at most connectWait, then the stream is used as
// it is). The channel closes when the stream or ctx ends.
//
// The stream is a connection in the service's registry (the contract
// registers every SSE stream); the layer's Registry.Lookup leaves out the
// streams the layer itself holds open, as an in-process Bus.Subscribe
// registers nothing.
func (b *bus) Subscribe(ctx context.Context, flowID, after string) (<-chan impl.Event, error) {
	c := (*client)(b)
	var conn string
	ch, err := subscribe(ctx, b.stream, b.base, flowID, after, Hooks{}, func(id string) {
		conn = id
		c.mu.Lock()
		c.streams[id] = true
		c.mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() {
		c.mu.Lock()
		delete(c.streams, conn)
		c.mu.Unlock()
	})
	return ch, nil
}

// Subscribe opens GET {base}/flows/{flow}/events with hc, resuming after
// the cursor after (Last-Event-ID), as the layer's Bus.Subscribe does.
func Subscribe(ctx context.Context, hc *http.Client, base, flow, after string) (<-chan impl.Event, error) {
	return subscribe(ctx, hc, base, flow, after, Hooks{}, func(string) {})
}

// Hooks are a stream's optional callbacks (nil: not called). They run on
// the stream's reader, before the events after what they report are
// delivered.
type Hooks struct {
	// Retry gets each reconnection time the stream sets with a "retry:"
	// field (in milliseconds, as EventSource reads it).
	Retry func(time.Duration)
	// Start gets the id: of each frame without data: where the stream
	// starts (the service's connected frame), the cursor a client that
	// got no event yet resumes after, as EventSource's lastEventId would.
	Start func(cursor string)
}

// SubscribeWith is Subscribe, telling h what the stream says besides
// events.
func SubscribeWith(ctx context.Context, hc *http.Client, base, flow, after string, h Hooks) (<-chan impl.Event, error) {
	return subscribe(ctx, hc, base, flow, after, h, func(string) {})
}

// subscribe is SubscribeWith, telling opened the stream's X-Connection-ID.
func subscribe(ctx context.Context, hc *http.Client, base, flow, after string, h Hooks, opened func(connID string)) (<-chan impl.Event, error) {
	path := flowPath(flow, "/events")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if after != "" {
		req.Header.Set("Last-Event-ID", after)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, transportError(http.MethodGet, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, decodeReply(resp, http.MethodGet, path, nil, []int{http.StatusOK})
	}
	opened(resp.Header.Get("X-Connection-ID"))
	ch := make(chan impl.Event, 64)
	connected := make(chan struct{})
	// started is set before connected is closed when the stream really
	// started (its connected comment or an event); unavailable holds the
	// comment of a stream the service could not start.
	var started bool
	var unavailable string
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		// Unblock the reader when ctx ends.
		stop := context.AfterFunc(ctx, func() { resp.Body.Close() })
		defer stop()
		first := true
		signal := func(ok bool) {
			if first {
				first, started = false, ok
				close(connected)
			}
		}
		defer signal(false)
		readSSE(resp.Body, h, func(comment string) {
			switch {
			case strings.HasPrefix(comment, "connected"):
				signal(true)
			case first && strings.HasPrefix(comment, "unavailable"):
				unavailable = comment
			}
		}, func(e impl.Event) bool {
			signal(true)
			select {
			case ch <- e:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	t := time.NewTimer(connectWait)
	defer t.Stop()
	select {
	case <-connected:
		if !started && ctx.Err() == nil {
			// The service answered 200 but ended the stream before it
			// started (docs/http.md: an outage, shutdown or reset).
			if unavailable == "" {
				unavailable = "stream ended before it connected"
			}
			return nil, fmt.Errorf("GET %s: 200 without a stream: %s", path, unavailable)
		}
	case <-t.C:
	case <-ctx.Done():
	}
	return ch, nil
}

// readSSE parses an event stream: comment is called with each comment line
// (without the colon), h's hooks with what they report (h.Retry only with
// digits, as EventSource ignores any other), event with each frame whose
// data is an event with an id (id: sets its cursor) until it returns false
// or the stream ends.
func readSSE(r io.Reader, h Hooks, comment func(string), event func(impl.Event) bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var id string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() > 0 {
				var e impl.Event
				if json.Unmarshal([]byte(data.String()), &e) == nil && e.ID != "" {
					if id != "" {
						e.Cursor = id
					}
					if !event(e) {
						return
					}
				}
			} else if id != "" && h.Start != nil {
				h.Start(id)
			}
			id = ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
			comment(strings.TrimSpace(line[1:]))
		case strings.HasPrefix(line, "retry:"):
			v := strings.TrimPrefix(strings.TrimPrefix(line, "retry:"), " ")
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && h.Retry != nil && strings.Trim(v, "0123456789") == "" {
				h.Retry(time.Duration(min(n, int64(time.Hour/time.Millisecond))) * time.Millisecond)
			}
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
}
