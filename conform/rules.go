package conform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// checker is the state the rules share: what was published and read.
type checker struct {
	o    Options
	base string
	flow string
	// events are the IDs published by the publish rule and their cursors
	// as the live stream gave them.
	seq     int
	cursors map[string]string
}

// reply is one answer, its body read (at most 1 MiB).
type reply struct {
	code int
	h    http.Header
	body []byte
}

// do makes one request with the timeout; body is JSON when not "".
func (c *checker) do(ctx context.Context, method, path, body string, h map[string]string) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return reply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := c.o.Client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: reading the body: %w", method, path, err)
	}
	return reply{code: resp.StatusCode, h: resp.Header, body: b}, nil
}

// want checks the status and, for JSON answers, the content type, and
// decodes the body into v (when not nil).
func (r reply) want(code int, v any) error {
	if r.code != code {
		return fmt.Errorf("status %d; want %d (body %.120q)", r.code, code, r.body)
	}
	if v == nil {
		return nil
	}
	if ct := r.h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("Content-Type %q; want application/json (body %.120q)", ct, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("body is not the JSON the contract states: %v (body %.120q)", err, r.body)
	}
	return nil
}

// wantError checks a JSON error answer {"error": "<message>"}.
func (r reply) wantError(code int) error {
	var e map[string]any
	if err := r.want(code, &e); err != nil {
		return err
	}
	if m, ok := e["error"].(string); !ok || m == "" {
		return fmt.Errorf("body %.120q has no \"error\" message", r.body)
	}
	return nil
}

func (c *checker) flowPath(suffix string) string { return "/flows/" + c.flow + suffix }

// publish publishes one event to the checker's flow and returns its ID.
func (c *checker) publish(ctx context.Context, bare bool) (string, error) {
	c.seq++
	id := fmt.Sprintf("%s.%d", c.flow, c.seq)
	body := fmt.Sprintf(`{"id":%q,"event_type":"CONFORM","payload":{"n":%d},"source":"conform","correlation_id":"c-%d"}`, id, c.seq, c.seq)
	if bare {
		body = fmt.Sprintf(`{"id":%q,"event_type":"CONFORM"}`, id)
	}
	r, err := c.do(ctx, "POST", c.flowPath("/events"), body, nil)
	if err != nil {
		return "", err
	}
	var ack struct {
		ID     string `json:"id"`
		FlowID string `json:"flow_id"`
	}
	if err := r.want(http.StatusCreated, &ack); err != nil {
		return "", fmt.Errorf("POST %s: %w", c.flowPath("/events"), err)
	}
	if ack.ID != id || ack.FlowID != c.flow {
		return "", fmt.Errorf("POST answered %s; want {\"id\": %q, \"flow_id\": %q}", r.body, id, c.flow)
	}
	return id, nil
}

// eventFields are the fields every event carries, each with its check.
var eventFields = []struct {
	name string
	ok   func(v any) bool
	want string
}{
	{"id", nonEmptyString, "a non-empty string"},
	{"flow_id", nonEmptyString, "a non-empty string"},
	{"event_type", nonEmptyString, "a non-empty string"},
	{"payload", func(v any) bool { _, ok := v.(map[string]any); return ok }, "an object"},
	{"timestamp", func(v any) bool {
		s, ok := v.(string)
		_, err := time.Parse(time.RFC3339Nano, s)
		return ok && err == nil
	}, "an RFC 3339 time"},
	{"source", isString, "a string"},
	{"correlation_id", isString, "a string"},
	{"cursor", isString, "a string"},
}

func isString(v any) bool       { _, ok := v.(string); return ok }
func nonEmptyString(v any) bool { s, ok := v.(string); return ok && s != "" }
func eventMap(b []byte) (map[string]any, error) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// checkEvent checks that e has every field in its form.
func checkEvent(e map[string]any) error {
	var bad []string
	for _, f := range eventFields {
		v, ok := e[f.name]
		switch {
		case !ok:
			bad = append(bad, f.name+" missing")
		case !f.ok(v):
			bad = append(bad, fmt.Sprintf("%s %v is not %s", f.name, v, f.want))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("event %v: %s", e["id"], strings.Join(bad, "; "))
	}
	return nil
}

// history reads the checker's flow's history.
func (c *checker) history(ctx context.Context) ([]map[string]any, error) {
	r, err := c.do(ctx, "GET", c.flowPath("/events/history?count=100"), "", nil)
	if err != nil {
		return nil, err
	}
	var h struct {
		FlowID string           `json:"flow_id"`
		Events []map[string]any `json:"events"`
	}
	if err := r.want(http.StatusOK, &h); err != nil {
		return nil, err
	}
	if h.FlowID != c.flow || h.Events == nil {
		return nil, fmt.Errorf("history %.160q: want {\"flow_id\": %q, \"events\": [...]}", r.body, c.flow)
	}
	return h.Events, nil
}

// stream is one open event stream.
type stream struct {
	resp   *http.Response
	frames chan frameOrErr
	cancel context.CancelFunc
	wait   time.Duration
}

type frameOrErr struct {
	f   frame
	err error
}

// open opens the flow's event stream (query is added to its path).
func (c *checker) open(ctx context.Context, query string, h map[string]string) (*stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+c.flowPath("/events")+query, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	t := time.AfterFunc(c.o.Timeout, cancel) // until the headers
	resp, err := c.o.Client.Do(req)
	t.Stop()
	if err != nil {
		cancel()
		return nil, err
	}
	s := &stream{resp: resp, frames: make(chan frameOrErr, 16), cancel: cancel, wait: c.o.Timeout}
	go func() {
		defer close(s.frames)
		rd := newSSEReader(resp.Body)
		for {
			f, err := rd.next()
			select {
			case s.frames <- frameOrErr{f, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return s, nil
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the stream's next block; with events, the next one that
// holds more than comments.
func (s *stream) next(events bool) (frame, error) {
	t := time.NewTimer(s.wait)
	defer t.Stop()
	for {
		select {
		case fe, ok := <-s.frames:
			if !ok || fe.err != nil {
				if fe.err == nil || errors.Is(fe.err, io.EOF) {
					return frame{}, errors.New("the stream ended")
				}
				return frame{}, fmt.Errorf("reading the stream: %w", fe.err)
			}
			if events && fe.f.isCommentOnly() {
				continue
			}
			return fe.f, nil
		case <-t.C:
			return frame{}, fmt.Errorf("nothing within %s", s.wait)
		}
	}
}

// connected opens a stream and reads up to its connected comment: the
// first block. It returns the stream and that block.
func (c *checker) connected(ctx context.Context, query string, h map[string]string) (*stream, frame, error) {
	s, err := c.open(ctx, query, h)
	if err != nil {
		return nil, frame{}, err
	}
	if s.resp.StatusCode != http.StatusOK || !strings.HasPrefix(s.resp.Header.Get("Content-Type"), "text/event-stream") {
		s.close()
		return nil, frame{}, fmt.Errorf("status %d, Content-Type %q; want 200 text/event-stream", s.resp.StatusCode, s.resp.Header.Get("Content-Type"))
	}
	f, err := s.next(false)
	if err != nil {
		s.close()
		return nil, frame{}, fmt.Errorf("first block: %w", err)
	}
	if !slices.ContainsFunc(f.comments, func(c string) bool { return strings.HasPrefix(c, "connected") }) {
		s.close()
		return nil, frame{}, fmt.Errorf("first block %+v has no \": connected\" comment", f)
	}
	return s, f, nil
}

// receive reads events from s until it has len(ids) of them and checks
// they are ids, in order; it returns their blocks.
func receive(s *stream, ids ...string) ([]frame, error) {
	var out []frame
	var got []string
	for len(got) < len(ids) {
		f, err := s.next(true)
		if err != nil {
			return out, fmt.Errorf("got %v, then %w; want %v", got, err, ids)
		}
		e, err := eventMap([]byte(f.data))
		if err != nil {
			return out, fmt.Errorf("data %.120q is not an event's JSON: %v", f.data, err)
		}
		id, _ := e["id"].(string)
		got = append(got, id)
		out = append(out, f)
	}
	if !slices.Equal(got, ids) {
		return out, fmt.Errorf("received %v; want %v", got, ids)
	}
	return out, nil
}

// rules is the contract, in the order Check runs it (later rules use what
// earlier ones published).
var rules = []rule{
	{Rule{"health", "GET /health answers 200 JSON with status, timestamp (RFC 3339), services.redis.status (healthy, unhealthy, unavailable or disabled) and services.redis.mode (redis or memory)"}, ruleHealth},
	{Rule{"health.redis", "GET /health/redis answers 200 JSON with status healthy (then version, connected_clients, used_memory_human, total_commands_processed and a keyspace object), unavailable or error"}, ruleHealthRedis},
	{Rule{"error.404", "an unknown path gets 404 with a JSON {\"error\": \"...\"} body"}, func(ctx context.Context, c *checker) error {
		r, err := c.do(ctx, "GET", "/conform-no-such-path", "", nil)
		if err != nil {
			return err
		}
		return r.wantError(http.StatusNotFound)
	}},
	{Rule{"error.405", "a method the path does not support (PATCH /health) gets 405 with Allow and a JSON error"}, func(ctx context.Context, c *checker) error {
		r, err := c.do(ctx, "PATCH", "/health", "", nil)
		if err != nil {
			return err
		}
		if err := r.wantError(http.StatusMethodNotAllowed); err != nil {
			return err
		}
		if r.h.Get("Allow") == "" {
			return errors.New("no Allow header")
		}
		return saw("Allow: %s", r.h.Get("Allow"))
	}},
	{Rule{"error.400", "a bad flow ID and a malformed JSON body get 400 with a JSON error"}, func(ctx context.Context, c *checker) error {
		r, err := c.do(ctx, "GET", "/flows/a%20b/events/history", "", nil)
		if err != nil {
			return err
		}
		if err := r.wantError(http.StatusBadRequest); err != nil {
			return fmt.Errorf("GET /flows/a%%20b/events/history: %w", err)
		}
		if r, err = c.do(ctx, "POST", c.flowPath("/events"), `{"event_type":`, nil); err != nil {
			return err
		}
		if err := r.wantError(http.StatusBadRequest); err != nil {
			return fmt.Errorf("POST of malformed JSON: %w", err)
		}
		return nil
	}},
	{Rule{"publish", "POST /flows/{id}/events with event_type and a payload object gets 201 {\"id\", \"flow_id\"} naming the event"}, func(ctx context.Context, c *checker) error {
		_, err := c.publish(ctx, false)
		return err
	}},
	{Rule{"publish.400", "a publish without event_type, or with a payload that is not an object, gets 400 with a JSON error"}, func(ctx context.Context, c *checker) error {
		for _, body := range []string{`{"payload":{}}`, `{"event_type":"X","payload":[1]}`} {
			r, err := c.do(ctx, "POST", c.flowPath("/events"), body, nil)
			if err != nil {
				return err
			}
			if err := r.wantError(http.StatusBadRequest); err != nil {
				return fmt.Errorf("POST %s: %w", body, err)
			}
		}
		return nil
	}},
	{Rule{"history", "GET /flows/{id}/events/history answers 200 {\"flow_id\", \"events\"}, oldest first, each event with every field: id, flow_id, event_type, payload (object), timestamp (RFC 3339), source, correlation_id, cursor (strings)"}, ruleHistory},
	{Rule{"event.defaults", "an event published with event_type alone reads back with every field: payload {}, source \"system\", correlation_id \"\""}, ruleDefaults},
	{Rule{"sse.open", "GET /flows/{id}/events answers 200 with Content-Type text/event-stream, Cache-Control no-cache and X-Connection-ID"}, ruleSSEOpen},
	{Rule{"sse.retry", "the stream's first block sets retry: in ASCII digits only (the wait a browser honours before it reconnects)"}, func(ctx context.Context, c *checker) error {
		s, f, err := c.connected(ctx, "", nil)
		if err != nil {
			return err
		}
		s.close()
		if !f.retryOK {
			return fmt.Errorf("first block: retry %q; want ASCII digits (a browser ignores any other)", f.retry)
		}
		return saw("retry: %s", f.retry)
	}},
	{Rule{"sse.connected", "the first block carries the comment \": connected <connection id>\", the id of X-Connection-ID"}, func(ctx context.Context, c *checker) error {
		s, f, err := c.connected(ctx, "", nil)
		if err != nil {
			return err
		}
		defer s.close()
		want := "connected " + s.resp.Header.Get("X-Connection-ID")
		if !slices.Contains(f.comments, want) {
			return fmt.Errorf("comments %q; want %q", f.comments, want)
		}
		return nil
	}},
	{Rule{"sse.event", "an event published after the connected comment arrives as one block: id: <cursor>, event: <event_type> (or none: unnamed events reach onmessage), one data: line holding the event's JSON with every field, and no field a browser ignores"}, ruleSSEEvent},
	{Rule{"sse.resume", "reconnecting with Last-Event-ID: <cursor of an event> delivers the events published after it while the client was away, in order, and not that event"}, func(ctx context.Context, c *checker) error {
		return c.resume(ctx, func(cursor string) (string, map[string]string) { return "", map[string]string{"Last-Event-ID": cursor} })
	}},
	{Rule{"sse.resume.query", "a first connection with ?last_event_id=<cursor> (a browser cannot set the header) resumes the same way"}, func(ctx context.Context, c *checker) error {
		return c.resume(ctx, func(cursor string) (string, map[string]string) {
			return "?last_event_id=" + url.QueryEscape(cursor), nil
		})
	}},
	{Rule{"sse.400", "an SSE request for a bad flow ID gets 400 with a JSON error, not a stream"}, func(ctx context.Context, c *checker) error {
		r, err := c.do(ctx, "GET", "/flows/a%20b/events", "", map[string]string{"Accept": "text/event-stream"})
		if err != nil {
			return err
		}
		return r.wantError(http.StatusBadRequest)
	}},
	{Rule{"state", "the cache: GET of an uncached flow is 404 JSON {\"error\", \"flow_id\"}; PUT {\"state\"} is 204; GET is then 200 {\"flow_id\", \"state\"} (or, in memory mode, may stay 404); DELETE is 204 (or 202 deferred)"}, ruleState},
	{Rule{"cors.origin", "an answer to a request from the allowed origin (--origin) carries Access-Control-Allow-Origin: that origin (or *), and Vary: Origin when it names the origin"}, func(ctx context.Context, c *checker) error {
		if c.o.Origin == "" {
			return skip("no --origin given (an origin the service allows)")
		}
		r, err := c.do(ctx, "GET", "/health", "", map[string]string{"Origin": c.o.Origin})
		if err != nil {
			return err
		}
		if err := allowsOrigin(r.h, c.o.Origin); err != nil {
			return err
		}
		return saw("Access-Control-Allow-Origin: %s", r.h.Get("Access-Control-Allow-Origin"))
	}},
	{Rule{"cors.expose", "the event stream's answer to the allowed origin exposes X-Connection-ID (Access-Control-Expose-Headers)"}, func(ctx context.Context, c *checker) error {
		if c.o.Origin == "" {
			return skip("no --origin given")
		}
		s, _, err := c.connected(ctx, "", map[string]string{"Origin": c.o.Origin})
		if err != nil {
			return err
		}
		defer s.close()
		if err := allowsOrigin(s.resp.Header, c.o.Origin); err != nil {
			return err
		}
		return listed(s.resp.Header, "Access-Control-Expose-Headers", "X-Connection-ID")
	}},
	{Rule{"cors.preflight.post", "the preflight of a JSON POST from the allowed origin (OPTIONS, Access-Control-Request-Method: POST, -Headers: content-type) gets 2xx allowing POST and Content-Type"}, func(ctx context.Context, c *checker) error {
		return c.preflight(ctx, "POST", "content-type")
	}},
	{Rule{"cors.preflight.sse", "the preflight of an EventSource reconnect from the allowed origin (GET with Last-Event-ID) gets 2xx allowing Last-Event-ID"}, func(ctx context.Context, c *checker) error {
		return c.preflight(ctx, "GET", "last-event-id")
	}},
}

// health is the body of GET /health as the contract states it.
type health struct {
	Status    string `json:"status"`
	Timestamp string `json:"timestamp"`
	Services  struct {
		Redis struct {
			Status string `json:"status"`
			Mode   string `json:"mode"`
		} `json:"redis"`
	} `json:"services"`
}

// health reads GET /health.
func (c *checker) health(ctx context.Context) (health, reply, error) {
	var h health
	r, err := c.do(ctx, "GET", "/health", "", nil)
	if err != nil {
		return h, r, err
	}
	return h, r, r.want(http.StatusOK, &h)
}

func ruleHealth(ctx context.Context, c *checker) error {
	h, r, err := c.health(ctx)
	if err != nil {
		return err
	}
	if _, err := time.Parse(time.RFC3339Nano, h.Timestamp); err != nil {
		return fmt.Errorf("timestamp %q is not RFC 3339", h.Timestamp)
	}
	rs := h.Services.Redis
	if h.Status == "" || !slices.Contains([]string{"healthy", "unhealthy", "unavailable", "disabled"}, rs.Status) || !slices.Contains([]string{"redis", "memory"}, rs.Mode) {
		return fmt.Errorf("body %.200q: want status, services.redis.status and services.redis.mode as the contract states", r.body)
	}
	return saw("redis %s, mode %s", rs.Status, rs.Mode)
}

func ruleHealthRedis(ctx context.Context, c *checker) error {
	r, err := c.do(ctx, "GET", "/health/redis", "", nil)
	if err != nil {
		return err
	}
	var h map[string]any
	if err := r.want(http.StatusOK, &h); err != nil {
		return err
	}
	switch h["status"] {
	case "unavailable", "error":
		return saw("status %v", h["status"])
	case "healthy":
	default:
		return fmt.Errorf("status %v: want healthy, unavailable or error", h["status"])
	}
	var missing []string
	for _, k := range []string{"version", "connected_clients", "used_memory_human", "total_commands_processed"} {
		if _, ok := h[k]; !ok {
			missing = append(missing, k)
		}
	}
	if _, ok := h["keyspace"].(map[string]any); !ok {
		missing = append(missing, "keyspace (an object)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("healthy but without %s", strings.Join(missing, ", "))
	}
	ks, _ := json.Marshal(h["keyspace"])
	return saw("keyspace %s (of which database, conform cannot tell from outside)", ks)
}

func ruleHistory(ctx context.Context, c *checker) error {
	id, err := c.publish(ctx, false)
	if err != nil {
		return err
	}
	evs, err := c.history(ctx)
	if err != nil {
		return err
	}
	var ids []string
	for _, e := range evs {
		if err := checkEvent(e); err != nil {
			return err
		}
		s, _ := e["id"].(string)
		ids = append(ids, s)
	}
	if len(ids) == 0 || ids[len(ids)-1] != id {
		return fmt.Errorf("history ids %v; want the latest publish %s last", ids, id)
	}
	return saw("%d events", len(evs))
}

func ruleDefaults(ctx context.Context, c *checker) error {
	id, err := c.publish(ctx, true)
	if err != nil {
		return err
	}
	evs, err := c.history(ctx)
	if err != nil {
		return err
	}
	for _, e := range evs {
		if e["id"] != id {
			continue
		}
		if err := checkEvent(e); err != nil {
			return err
		}
		if p, ok := e["payload"].(map[string]any); !ok || len(p) != 0 || e["source"] != "system" {
			return fmt.Errorf("event %s: payload %v, source %v; want {} and \"system\"", id, e["payload"], e["source"])
		}
		return nil
	}
	return fmt.Errorf("event %s not in history", id)
}

func ruleSSEOpen(ctx context.Context, c *checker) error {
	s, err := c.open(ctx, "", nil)
	if err != nil {
		return err
	}
	defer s.close()
	h := s.resp.Header
	var bad []string
	if s.resp.StatusCode != http.StatusOK {
		bad = append(bad, fmt.Sprintf("status %d", s.resp.StatusCode))
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		bad = append(bad, fmt.Sprintf("Content-Type %q", ct))
	}
	if cc := h.Get("Cache-Control"); !strings.Contains(cc, "no-cache") {
		bad = append(bad, fmt.Sprintf("Cache-Control %q", cc))
	}
	if h.Get("X-Connection-ID") == "" {
		bad = append(bad, "no X-Connection-ID")
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s (a browser's EventSource gives up for good on anything but 200 text/event-stream)", strings.Join(bad, ", "))
	}
	return nil
}

func ruleSSEEvent(ctx context.Context, c *checker) error {
	s, _, err := c.connected(ctx, "", nil)
	if err != nil {
		return err
	}
	defer s.close()
	id, err := c.publish(ctx, false)
	if err != nil {
		return err
	}
	fs, err := receive(s, id)
	if err != nil {
		return err
	}
	f := fs[0]
	e, _ := eventMap([]byte(f.data))
	if err := checkEvent(e); err != nil {
		return err
	}
	switch {
	case !f.dataIsOneLine():
		return fmt.Errorf("data spans several lines: %.120q", f.data)
	case !f.hasID || f.id == "":
		return errors.New("no id: field: a browser has no Last-Event-ID to resume with")
	case f.id != e["cursor"]:
		return fmt.Errorf("id: %q is not the event's cursor %q", f.id, e["cursor"])
	case f.event != "" && f.event != e["event_type"]:
		return fmt.Errorf("event: %q is not the event_type %q", f.event, e["event_type"])
	case len(f.unknown) > 0:
		return fmt.Errorf("fields a browser ignores: %v", f.unknown)
	}
	if c.cursors == nil {
		c.cursors = map[string]string{}
	}
	c.cursors[id] = f.id
	if f.event == "" {
		return saw("unnamed: onmessage gets it")
	}
	return saw("named %q: addEventListener(%q) gets it, onmessage does not", f.event, f.event)
}

// resume connects, takes one event's cursor, leaves, publishes two more
// and connects again as how says, sending the cursor: it must get the two,
// in order, and not the first.
func (c *checker) resume(ctx context.Context, how func(cursor string) (string, map[string]string)) error {
	s, _, err := c.connected(ctx, "", nil)
	if err != nil {
		return err
	}
	first, err := c.publish(ctx, false)
	if err != nil {
		s.close()
		return err
	}
	fs, err := receive(s, first)
	s.close()
	if err != nil {
		return err
	}
	cursor := fs[0].id
	if cursor == "" {
		return errors.New("the event came without id:, nothing to resume with")
	}
	a, err := c.publish(ctx, false)
	if err != nil {
		return err
	}
	b, err := c.publish(ctx, false)
	if err != nil {
		return err
	}
	q, h := how(cursor)
	s, _, err = c.connected(ctx, q, h)
	if err != nil {
		return err
	}
	defer s.close()
	if _, err := receive(s, a, b); err != nil {
		return fmt.Errorf("resuming after %q (event %s): %w", cursor, first, err)
	}
	return nil
}

func ruleState(ctx context.Context, c *checker) error {
	p := "/flows/" + c.flow + "-state/state"
	r, err := c.do(ctx, "GET", p, "", nil)
	if err != nil {
		return err
	}
	var miss map[string]any
	if err := r.want(http.StatusNotFound, &miss); err != nil {
		return fmt.Errorf("GET of an uncached flow: %w", err)
	}
	if _, ok := miss["error"].(string); !ok || miss["flow_id"] != c.flow+"-state" {
		return fmt.Errorf("miss %.120q: want {\"error\", \"flow_id\"}", r.body)
	}
	lease, _ := miss["lease"].(string)
	body, _ := json.Marshal(map[string]any{"state": map[string]any{"step": 1}, "status": "running", "lease": lease})
	if r, err = c.do(ctx, "PUT", p, string(body), nil); err != nil {
		return err
	}
	if err := r.want(http.StatusNoContent, nil); err != nil {
		return fmt.Errorf("PUT: %w", err)
	}
	if r, err = c.do(ctx, "GET", p, "", nil); err != nil {
		return err
	}
	// Without Redis an implementation may serve no hit (a memory copy
	// would be served after another instance's invalidation): a miss
	// after the PUT conforms when /health says the mode is memory.
	var note error
	if r.code == http.StatusNotFound && c.memoryMode(ctx) {
		note = saw("memory mode: the cache served no hit after the PUT (allowed)")
	} else {
		var hit struct {
			FlowID string         `json:"flow_id"`
			State  map[string]any `json:"state"`
		}
		if err := r.want(http.StatusOK, &hit); err != nil {
			return fmt.Errorf("GET after PUT: %w", err)
		}
		if hit.FlowID != c.flow+"-state" || hit.State["step"] != float64(1) {
			return fmt.Errorf("GET after PUT %.120q: want the state put", r.body)
		}
	}
	if r, err = c.do(ctx, "DELETE", p, "", nil); err != nil {
		return err
	}
	if r.code != http.StatusNoContent && r.code != http.StatusAccepted {
		return fmt.Errorf("DELETE: status %d; want 204 or 202", r.code)
	}
	return note
}

// memoryMode reports whether GET /health says services.redis.mode memory.
func (c *checker) memoryMode(ctx context.Context) bool {
	h, _, err := c.health(ctx)
	return err == nil && h.Services.Redis.Mode == "memory"
}

// allowsOrigin checks the CORS answer to origin.
func allowsOrigin(h http.Header, origin string) error {
	switch got := h.Get("Access-Control-Allow-Origin"); got {
	case "*":
		return nil
	case origin:
		if !slices.ContainsFunc(h.Values("Vary"), func(v string) bool { return listedIn(v, "Origin") }) {
			return errors.New("Access-Control-Allow-Origin names the origin without Vary: Origin (a cache may serve it to another)")
		}
		return nil
	case "":
		return fmt.Errorf("no Access-Control-Allow-Origin for %s: a browser blocks the page's reads", origin)
	default:
		return fmt.Errorf("Access-Control-Allow-Origin %q; want %q or *", got, origin)
	}
}

// listed checks that header name lists v (case-insensitive).
func listed(h http.Header, name, v string) error {
	for _, line := range h.Values(name) {
		if listedIn(line, v) || strings.TrimSpace(line) == "*" {
			return nil
		}
	}
	return fmt.Errorf("%s %q does not list %s", name, h.Values(name), v)
}

func listedIn(line, v string) bool {
	for _, item := range strings.Split(line, ",") {
		if strings.EqualFold(strings.TrimSpace(item), v) {
			return true
		}
	}
	return false
}

// preflight sends the CORS preflight of method with header from the
// allowed origin.
func (c *checker) preflight(ctx context.Context, method, header string) error {
	if c.o.Origin == "" {
		return skip("no --origin given")
	}
	r, err := c.do(ctx, "OPTIONS", c.flowPath("/events"), "", map[string]string{"Origin": c.o.Origin,
		"Access-Control-Request-Method": method, "Access-Control-Request-Headers": header})
	if err != nil {
		return err
	}
	if r.code < 200 || r.code > 299 {
		return fmt.Errorf("status %d; want 2xx (body %.120q)", r.code, r.body)
	}
	if err := allowsOrigin(r.h, c.o.Origin); err != nil {
		return err
	}
	if method != "GET" { // GET is a simple method: no need to list it
		if err := listed(r.h, "Access-Control-Allow-Methods", method); err != nil {
			return err
		}
	}
	if err := listed(r.h, "Access-Control-Allow-Headers", header); err != nil {
		return err
	}
	if age := r.h.Get("Access-Control-Max-Age"); age != "" {
		if _, err := strconv.Atoi(age); err != nil {
			return fmt.Errorf("Access-Control-Max-Age %q is not a number", age)
		}
	}
	return nil
}
