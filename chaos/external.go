package chaos

import (
	"context"
	"fmt"
	"strings"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/gonogo/harness/internal/exitcode"
)

// External is a Toxiproxy server reached through its HTTP API (e.g. the
// compose file's). Its proxies are not Limiters: quota, connection-limit
// and handshake-stall faults need the embedded proxy.
type External struct {
	c *toxiclient.Client
}

// NewExternal connects to the Toxiproxy API at apiURL ("host:port" or
// "http://host:port"). An unreachable API is bad input (exit 3).
func NewExternal(apiURL string) (*External, error) {
	c := toxiclient.NewClient(apiURL)
	if _, err := c.Proxies(); err != nil {
		return nil, exitcode.Configf("toxiproxy API %s: %w", apiURL, err)
	}
	return &External{c: c}, nil
}

// NewProxy creates a proxy named name listening on a free 127.0.0.1 port of
// the Toxiproxy host, in front of upstream.
func (e *External) NewProxy(name, upstream string) (*ExternalProxy, error) {
	p, err := e.c.CreateProxy(name, "127.0.0.1:0", upstream)
	if err != nil {
		return nil, fmt.Errorf("toxiproxy: create proxy %s: %w", name, err)
	}
	return &ExternalProxy{p: p}, nil
}

// Proxy attaches to the existing proxy called name (the one the services
// under test reach Redis through, say) and resets it: enabled, with no
// toxics. An unknown name is bad input (exit 3).
func (e *External) Proxy(name string) (*ExternalProxy, error) {
	p, err := e.c.Proxy(name)
	if err != nil {
		if strings.Contains(err.Error(), "HTTP 404") {
			return nil, exitcode.Configf("toxiproxy: no proxy called %q", name)
		}
		return nil, fmt.Errorf("toxiproxy: proxy %s: %w", name, err)
	}
	toxics, err := p.Toxics()
	if err != nil {
		return nil, fmt.Errorf("toxiproxy: proxy %s: toxics: %w", name, err)
	}
	for _, t := range toxics {
		if err := p.RemoveToxic(t.Name); err != nil {
			return nil, fmt.Errorf("toxiproxy: proxy %s: remove toxic %s: %w", name, t.Name, err)
		}
	}
	if !p.Enabled {
		if err := p.Enable(); err != nil {
			return nil, fmt.Errorf("toxiproxy: proxy %s: enable: %w", name, err)
		}
	}
	return &ExternalProxy{p: p}, nil
}

// ExternalProxy is one proxy of an External Toxiproxy. The client package
// takes no context: calls are bounded by its HTTP client, not by ctx.
type ExternalProxy struct {
	p *toxiclient.Proxy
}

// Listen is the address the Toxiproxy server bound.
func (p *ExternalProxy) Listen() string { return p.p.Listen }

// Upstream is the host:port the proxy forwards to.
func (p *ExternalProxy) Upstream() string { return p.p.Upstream }

// SetEnabled enables or disables the proxy.
func (p *ExternalProxy) SetEnabled(ctx context.Context, on bool) error {
	var err error
	if on {
		err = p.p.Enable()
	} else {
		err = p.p.Disable()
	}
	if err != nil {
		return fmt.Errorf("toxiproxy: proxy %s: enabled=%v: %w", p.p.Name, on, err)
	}
	return nil
}

// AddToxic adds t.
func (p *ExternalProxy) AddToxic(ctx context.Context, t Toxic) error {
	t = t.withDefaults()
	if _, err := p.p.AddToxic(t.Name, t.Type, t.Stream, t.Toxicity, t.Attributes); err != nil {
		return fmt.Errorf("toxiproxy: proxy %s: add toxic %s: %w", p.p.Name, t.Name, err)
	}
	return nil
}

// RemoveToxic removes the named toxic; one that is not there is no error.
func (p *ExternalProxy) RemoveToxic(ctx context.Context, name string) error {
	err := p.p.RemoveToxic(name)
	if err != nil && !strings.Contains(err.Error(), "HTTP 404") {
		return fmt.Errorf("toxiproxy: proxy %s: remove toxic %s: %w", p.p.Name, name, err)
	}
	return nil
}

// Close deletes the proxy.
func (p *ExternalProxy) Close() error {
	if err := p.p.Delete(); err != nil && !strings.Contains(err.Error(), "HTTP 404") {
		return fmt.Errorf("toxiproxy: delete proxy %s: %w", p.p.Name, err)
	}
	return nil
}
