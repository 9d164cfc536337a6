package httplayer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
)

// manager is health and monitoring over GET /health and /health/redis.
type manager client

// modeFresh is how long a mode the service reported (X-Layer-Mode on any
// reply, or /health) is used before Mode asks /health again.
const modeFresh = 250 * time.Millisecond

// Mode is the mode the service last reported, if recent; else what GET
// /health says now (bounded by a second). A service that does not answer
// keeps its last known mode ("unknown" before any).
func (m *manager) Mode() string {
	c := (*client)(m)
	c.mu.Lock()
	mode, at := c.mode, c.modeAt
	c.mu.Unlock()
	if mode != "" && time.Since(at) < modeFresh {
		return mode
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if h := m.Health(ctx); h.Mode != "" {
		return h.Mode
	}
	if mode == "" {
		return "unknown"
	}
	return mode
}

// Health is services.redis of GET /health. A service that does not answer
// is reported with status "error" and why.
func (m *manager) Health(ctx context.Context) impl.Health {
	var out struct {
		Services struct {
			Redis impl.Health `json:"redis"`
		} `json:"services"`
	}
	c := (*client)(m)
	if err := c.call(ctx, http.MethodGet, "/health", nil, &out, http.StatusOK); err != nil {
		return impl.Health{Status: "error", Error: err.Error()}
	}
	c.noteMode(out.Services.Redis.Mode)
	return out.Services.Redis
}

// Info is GET /health/redis, integers as int64 (as impl.RedisInfo gives
// them).
func (m *manager) Info(ctx context.Context) map[string]any {
	resp, err := m.do(ctx, http.MethodGet, "/health/redis", nil)
	if err != nil {
		return map[string]any{"status": "error", "error": err.Error()}
	}
	defer resp.Body.Close()
	var out map[string]any
	d := json.NewDecoder(resp.Body)
	d.UseNumber()
	if err := d.Decode(&out); err != nil {
		return map[string]any{"status": "error", "error": "GET /health/redis: " + err.Error()}
	}
	return integers(out).(map[string]any)
}

// integers turns every integral json.Number in v into an int64 (others
// into float64).
func integers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = integers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = integers(e)
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// metricsReply is GET /metrics/redis.
type metricsReply struct {
	Connections      *int                      `json:"connections"`
	ConnectionsError string                    `json:"connections_error"`
	Operations       map[string]counter.Counts `json:"operations"`
	Dials            int64                     `json:"dials"`
	Cache            *impl.CacheMetrics        `json:"cache"`
}

func (c *client) metrics(ctx context.Context, flow string) (metricsReply, error) {
	path := "/metrics/redis"
	if flow != "" {
		path += "?flow=" + url.QueryEscape(flow)
	}
	var out metricsReply
	err := c.call(ctx, http.MethodGet, path, nil, &out, http.StatusOK)
	return out, err
}

// Counts are the Redis round trips and commands per operation kind the
// service counted since its last reset, and its dials; ok is false when it
// does not count (GET /metrics/redis without "operations").
func (m *manager) Counts(ctx context.Context) (ops map[string]counter.Counts, dials int64, ok bool, err error) {
	r, err := (*client)(m).metrics(ctx, "")
	if err != nil || r.Operations == nil {
		return nil, 0, false, err
	}
	return r.Operations, r.Dials, true, nil
}

// cache is the flow-state cache over /flows/{id}/state.
type cache client

// Get is GET /flows/{id}/state: 200 a hit, 404 a miss with its lease.
func (c *cache) Get(ctx context.Context, flowID string) (impl.Entry, error) {
	resp, err := c.do(ctx, http.MethodGet, flowPath(flowID, "/state"), nil)
	if err != nil {
		return impl.Entry{}, err
	}
	defer resp.Body.Close()
	(*client)(c).noteMode(resp.Header.Get("X-Layer-Mode"))
	var out struct {
		State map[string]any `json:"state"`
		Lease string         `json:"lease"`
	}
	if err := decodeReply(resp, http.MethodGet, flowPath(flowID, "/state"), &out, []int{http.StatusOK, http.StatusNotFound}); err != nil {
		return impl.Entry{}, err
	}
	if resp.StatusCode == http.StatusNotFound {
		lease := resp.Header.Get("X-Cache-Lease")
		if lease == "" {
			lease = out.Lease
		}
		return impl.Entry{Lease: lease}, nil
	}
	return impl.Entry{State: out.State, Hit: true}, nil
}

// Set is PUT /flows/{id}/state; 409 is impl.ErrFillRefused.
func (c *cache) Set(ctx context.Context, flowID string, state map[string]any, status, lease string) error {
	body := map[string]any{"state": state, "status": status}
	if lease != "" {
		body["lease"] = lease
	}
	err := (*client)(c).call(ctx, http.MethodPut, flowPath(flowID, "/state"), body, nil, http.StatusNoContent)
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusConflict {
		return fmt.Errorf("%w (%s)", impl.ErrFillRefused, se.Msg)
	}
	return err
}

// Invalidate is DELETE /flows/{id}/state; 202 is impl.ErrInvalidateDeferred.
func (c *cache) Invalidate(ctx context.Context, flowID string) error {
	var deferred struct {
		Deferred bool   `json:"deferred"`
		Reason   string `json:"reason"`
	}
	err := (*client)(c).call(ctx, http.MethodDelete, flowPath(flowID, "/state"), nil, &deferred, http.StatusNoContent, http.StatusAccepted)
	if err == nil && deferred.Deferred {
		return fmt.Errorf("%w (%s)", impl.ErrInvalidateDeferred, deferred.Reason)
	}
	return err
}

// Metrics is "cache" of GET /metrics/redis?flow={id}.
func (c *cache) Metrics(ctx context.Context, flowID string) (impl.CacheMetrics, error) {
	r, err := (*client)(c).metrics(ctx, flowID)
	if err != nil {
		return impl.CacheMetrics{}, err
	}
	if r.Cache == nil {
		return impl.CacheMetrics{}, fmt.Errorf("GET /metrics/redis?flow=%s: no cache metrics in the reply", flowID)
	}
	return *r.Cache, nil
}

// registry is the SSE connection registry over the control API's
// /_harness/registry/ (Count over GET /metrics/redis, in the core
// contract).
type registry client

func (r *registry) control(ctx context.Context, method, path string, in, out any, want int) error {
	if !r.Has(Registry) {
		return fmt.Errorf("%w: %s", ErrNoControl, r.base)
	}
	return (*client)(r).call(ctx, method, "/_harness/registry"+path, in, out, want)
}

func (r *registry) Register(ctx context.Context, c impl.Conn) error {
	return r.control(ctx, http.MethodPost, "/connections", c, nil, http.StatusNoContent)
}

func (r *registry) Heartbeat(ctx context.Context, connID string) error {
	return r.control(ctx, http.MethodPost, "/connections/"+url.PathEscape(connID)+"/heartbeat", nil, nil, http.StatusNoContent)
}

func (r *registry) Unregister(ctx context.Context, connID string) error {
	return r.control(ctx, http.MethodDelete, "/connections/"+url.PathEscape(connID), nil, nil, http.StatusNoContent)
}

func (r *registry) Lookup(ctx context.Context, flowID string) ([]string, error) {
	var out struct {
		Connections []string `json:"connections"`
	}
	if err := r.control(ctx, http.MethodGet, "/flows/"+url.PathEscape(flowID), nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := out.Connections[:0]
	for _, id := range out.Connections {
		if !r.streams[id] {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (r *registry) Cleanup(ctx context.Context) (int, error) {
	var out struct {
		Removed int `json:"removed"`
	}
	err := r.control(ctx, http.MethodPost, "/cleanup", nil, &out, http.StatusOK)
	return out.Removed, err
}

// Count is "connections" of GET /metrics/redis.
func (r *registry) Count(ctx context.Context) (int, error) {
	m, err := (*client)(r).metrics(ctx, "")
	switch {
	case err != nil:
		return 0, err
	case m.ConnectionsError != "":
		return 0, errors.New("registry count: " + m.ConnectionsError)
	case m.Connections == nil:
		return 0, errors.New("GET /metrics/redis: no connections in the reply")
	}
	return *m.Connections, nil
}
