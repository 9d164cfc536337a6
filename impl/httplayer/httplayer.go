// Package httplayer is an impl.Layer backed by a service that implements the
// HTTP contract (docs/http.md): the harness's own service, or any other
// implementation put under the scenarios by URL. Publish, history, the SSE
// stream (Last-Event-ID resume), the state cache and health map onto the
// core contract; the registry, per-scenario configuration and a fresh key
// prefix need the optional harness control API (/_harness/), and Redis
// command counts the optional "operations" of GET /metrics/redis. What a
// service lacks is reported (Has, ErrNoControl), never faked.
package httplayer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/service"
)

// ErrNoControl is what a call returns that needs the harness control API
// (GET /_harness) from a service that does not offer it.
var ErrNoControl = errors.New("the service does not offer the harness control API (/_harness/)")

// The abilities a service may offer (Has).
const (
	// Reset is POST /_harness/reset: per-scenario configuration and key prefix.
	Reset = "reset"
	// Registry is the /_harness/registry/ endpoints.
	Registry = "registry"
)

// callTimeout bounds one call on top of its context, so that a service
// that never answers cannot hang a run.
const callTimeout = 30 * time.Second

// Service is one service instance reached by its base URL.
type Service struct {
	base      string
	hc        *http.Client // calls, bounded by callTimeout
	stream    *http.Client // SSE streams, bounded by their context only
	profile   string
	abilities []string
	token     string // sent as "Authorization: Bearer" on /_harness calls
	// streams is the key of a flow's stream under the reset's key prefix,
	// "{flow}" standing for the flow ID (GET /_harness "streams"); "" when
	// the service names none.
	streams string
}

// FlowPlaceholder stands for the flow ID in the stream key a service names.
const FlowPlaceholder = service.FlowPlaceholder

// checkStreams checks the stream key a service names in GET /_harness: at
// most 256 printable ASCII characters without spaces, "{flow}" exactly once.
func checkStreams(key string) error {
	if key == "" {
		return nil
	}
	if len(key) > 256 || strings.IndexFunc(key, func(c rune) bool { return c <= ' ' || c > '~' }) >= 0 ||
		strings.Count(key, FlowPlaceholder) != 1 {
		return fmt.Errorf("GET /_harness names streams %q: want at most 256 printable ASCII characters, no spaces, with %s once", truncate(key, 64), FlowPlaceholder)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// StatusError is a reply outside the contract's success codes.
type StatusError struct {
	Method, Path string
	Code         int
	// Msg is the body's "error", or the start of the body.
	Msg string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Code, http.StatusText(e.Code), e.Msg)
}

// Dial checks that base answers GET /health with the contract's JSON and
// asks GET /_harness which control abilities it offers (none when it
// answers 404). token is the control API's (HARNESS_CONTROL_TOKEN), sent
// with every control call; a service that refuses it (401) is an error. An
// unreachable service or one that does not speak the contract is an error
// naming base.
func Dial(ctx context.Context, base, token string) (*Service, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("service %s: want an http:// or https:// URL", base)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 128
	s := &Service{
		base:   strings.TrimRight(base, "/"),
		hc:     &http.Client{Transport: tr, Timeout: callTimeout},
		stream: &http.Client{Transport: tr.Clone()},
		token:  token,
	}
	var h struct {
		Profile  string `json:"profile"`
		Services struct {
			Redis *impl.Health `json:"redis"`
		} `json:"services"`
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.call(cctx, nil, http.MethodGet, "/health", nil, &h, http.StatusOK); err != nil {
		return nil, fmt.Errorf("service %s: %w", base, err)
	}
	if h.Services.Redis == nil {
		return nil, fmt.Errorf("service %s: GET /health has no services.redis: not the contract of docs/http.md", base)
	}
	s.profile = h.Profile
	var info struct {
		Abilities []string `json:"abilities"`
		Streams   string   `json:"streams"`
	}
	err = s.call(cctx, nil, http.MethodGet, "/_harness", nil, &info, http.StatusOK)
	var se *StatusError
	switch {
	case errors.As(err, &se) && (se.Code == http.StatusNotFound || se.Code == http.StatusMethodNotAllowed):
	case errors.As(err, &se) && se.Code == http.StatusUnauthorized:
		why := "HARNESS_CONTROL_TOKEN is not set"
		if token != "" {
			why = "HARNESS_CONTROL_TOKEN is not the service's"
		}
		return nil, fmt.Errorf("service %s: its control API refused the harness (%s): %w", base, why, err)
	case err != nil:
		return nil, fmt.Errorf("service %s: %w", base, err)
	default:
		if err := checkStreams(info.Streams); err != nil {
			return nil, fmt.Errorf("service %s: %w", base, err)
		}
		s.abilities, s.streams = info.Abilities, info.Streams
	}
	return s, nil
}

// Base is the service's base URL.
func (s *Service) Base() string { return s.base }

// Profile is the implementation's name from GET /health ("" if it gives
// none).
func (s *Service) Profile() string { return s.profile }

// Streams is the stream key the service names in GET /_harness ("{flow}"
// for the flow ID), "" if none.
func (s *Service) Streams() string { return s.streams }

// Has reports whether the service offers a control ability (Reset,
// Registry).
func (s *Service) Has(ability string) bool {
	for _, a := range s.abilities {
		if a == ability {
			return true
		}
	}
	return false
}

// Close releases idle connections.
func (s *Service) Close() {
	s.hc.CloseIdleConnections()
	s.stream.CloseIdleConnections()
}

// Layer returns the service as a layer. With the Reset ability it first
// resets the service to cfg (its overrides and KeyPrefix; the service keeps
// its own Redis URL and server ID) with heartbeat as the SSE heartbeat (0:
// the service's), and closing the layer resets it to its own configuration
// again, so that nothing it does afterwards lands under cfg's prefix;
// without the ability the service runs as configured and cfg is not
// applied. Registry calls need the Registry ability (else ErrNoControl).
func (s *Service) Layer(ctx context.Context, cfg impl.Config, heartbeat time.Duration) (*impl.Layer, error) {
	c := &client{Service: s, streams: map[string]bool{}}
	profile := s.profile
	if s.Has(Reset) {
		var out struct {
			Profile string `json:"profile"`
			Mode    string `json:"mode"`
		}
		if err := c.call(ctx, http.MethodPost, "/_harness/reset", service.ResetFor(cfg, heartbeat), &out, http.StatusOK); err != nil {
			return nil, fmt.Errorf("service %s: %w", s.base, err)
		}
		profile = out.Profile
		c.noteMode(out.Mode)
	}
	var b impl.Bus = (*bus)(c)
	if s.streams != "" && s.Has(Reset) {
		// The streams are under the prefix the reset gave: the harness can
		// read them itself (impl.Streams).
		b = &namedBus{bus: (*bus)(c), prefix: cfg.KeyPrefix, key: s.streams}
	}
	return &impl.Layer{
		Profile:  profile,
		Manager:  (*manager)(c),
		Bus:      b,
		Registry: (*registry)(c),
		Cache:    (*cache)(c),
		Close:    c.close,
	}, nil
}

// close puts a service that was reset back to its own configuration.
func (c *client) close() error {
	defer c.hc.CloseIdleConnections()
	if !c.Has(Reset) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.call(ctx, http.MethodPost, "/_harness/reset", service.Reset{}, nil, http.StatusOK); err != nil {
		return fmt.Errorf("service %s: %w", c.base, err)
	}
	return nil
}

// client is one layer's view of a service: the calls, and the mode the
// service last said it serves in.
type client struct {
	*Service
	mu      sync.Mutex
	mode    string
	modeAt  time.Time
	streams map[string]bool // connection IDs of the layer's open SSE streams
}

// noteMode records the mode the service reported.
func (c *client) noteMode(m string) {
	if m == "" {
		return
	}
	c.mu.Lock()
	c.mode, c.modeAt = m, time.Now()
	c.mu.Unlock()
}

func (c *client) call(ctx context.Context, method, path string, in, out any, want ...int) error {
	return c.Service.call(ctx, c, method, path, in, out, want...)
}

// call sends in (JSON, if not nil) and decodes a reply whose status is one
// of want into out (if not nil); another status is a *StatusError. The
// reply's X-Layer-Mode header, if any, is noted on c.
func (s *Service) call(ctx context.Context, c *client, method, path string, in, out any, want ...int) error {
	resp, err := s.do(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if c != nil {
		c.noteMode(resp.Header.Get("X-Layer-Mode"))
	}
	impl.NoteMode(ctx, resp.Header.Get("X-Layer-Mode"))
	return decodeReply(resp, method, path, out, want)
}

// do sends one request.
func (s *Service) do(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" && strings.HasPrefix(path, "/_harness") {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, transportError(method, path, err)
	}
	return resp, nil
}

// transportError is a request that got no reply, without the URL (the
// caller names the service).
func transportError(method, path string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%s %s: %w", method, path, err)
}

// decodeReply checks resp's status against want and decodes its body into
// out.
func decodeReply(resp *http.Response, method, path string, out any, want []int) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading reply: %w", method, path, err)
	}
	ok := false
	for _, w := range want {
		ok = ok || resp.StatusCode == w
	}
	if !ok {
		return &StatusError{Method: method, Path: path, Code: resp.StatusCode, Msg: errorText(b)}
	}
	if out == nil || len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: reply is not the contract's JSON: %w", method, path, err)
	}
	return nil
}

// errorText is a reply's {"error": ...}, or the start of its body.
func errorText(b []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// flowPath is /flows/{id}<rest>.
func flowPath(flow, rest string) string { return "/flows/" + url.PathEscape(flow) + rest }
