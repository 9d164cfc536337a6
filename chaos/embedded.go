package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/log"
)

// Embedded is Toxiproxy running inside the harness process: no daemon, no
// HTTP API, proxies on 127.0.0.1 ports the kernel picks.
type Embedded struct {
	server *toxiproxy.ApiServer

	mu      sync.Mutex
	proxies map[string]*EmbeddedProxy
	stop    func() bool
}

var (
	_ Proxy   = (*EmbeddedProxy)(nil)
	_ Limiter = (*EmbeddedProxy)(nil)
	_ Proxy   = (*ExternalProxy)(nil)
)

// quietOnce silences zerolog's global logger, which toxiproxy's bandwidth
// toxic writes to stderr; nothing else in the harness uses zerolog.
var quietOnce sync.Once

// NewEmbedded starts an in-process Toxiproxy. Its proxies close when ctx
// ends or on Close.
func NewEmbedded(ctx context.Context) *Embedded {
	quietOnce.Do(func() { log.Logger = zerolog.Nop() })
	e := &Embedded{
		server:  toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		proxies: map[string]*EmbeddedProxy{},
	}
	e.stop = context.AfterFunc(ctx, func() { e.Close() })
	return e
}

// NewProxy starts a proxy named name on a free 127.0.0.1 port in front of
// upstream (host:port of Redis). Behind it sits the gate that answers for
// Redis (see Limiter), so the returned proxy is also a Limiter.
func (e *Embedded) NewProxy(name, upstream string) (*EmbeddedProxy, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, dup := e.proxies[name]; dup {
		return nil, fmt.Errorf("proxy %q exists already", name)
	}
	g, err := newGate(upstream)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", name, err)
	}
	tp := toxiproxy.NewProxy(e.server, name, "127.0.0.1:0", g.addr())
	if err := tp.Start(); err != nil {
		g.close()
		return nil, fmt.Errorf("proxy %s: %w", name, err)
	}
	p := &EmbeddedProxy{gate: g, tp: tp, name: name, owner: e}
	e.proxies[name] = p
	return p, nil
}

// Close closes every proxy. Safe to call more than once.
func (e *Embedded) Close() error {
	e.stop()
	e.mu.Lock()
	ps := make([]*EmbeddedProxy, 0, len(e.proxies))
	for _, p := range e.proxies {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// EmbeddedProxy is one proxy of an Embedded Toxiproxy: client → Toxiproxy
// proxy (toxics, enable/disable) → gate (quota, connection limit, handshake
// stall) → Redis. It is a Proxy and a Limiter (SetQuota, SetConnLimit,
// SetHandshakeStall).
type EmbeddedProxy struct {
	*gate
	tp    *toxiproxy.Proxy
	name  string
	owner *Embedded
	once  sync.Once
}

// Listen is the address clients dial: the Toxiproxy listener.
func (p *EmbeddedProxy) Listen() string {
	p.tp.Lock()
	defer p.tp.Unlock()
	return p.tp.Listen
}

// SetEnabled starts or stops the listener (on the same port); stopping
// drops every connection.
func (p *EmbeddedProxy) SetEnabled(ctx context.Context, on bool) error {
	if !on {
		p.tp.Stop()
		return nil
	}
	if err := p.tp.Start(); err != nil && !errors.Is(err, toxiproxy.ErrProxyAlreadyStarted) {
		return fmt.Errorf("proxy %s: enable: %w", p.name, err)
	}
	return nil
}

// AddToxic adds t to the proxy's chain.
func (p *EmbeddedProxy) AddToxic(ctx context.Context, t Toxic) error {
	body, err := json.Marshal(t.withDefaults())
	if err != nil {
		return err
	}
	if _, err := p.tp.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
		return fmt.Errorf("proxy %s: add toxic %s: %w", p.name, t.Name, err)
	}
	return nil
}

// RemoveToxic removes the named toxic; one that is not there is no error.
func (p *EmbeddedProxy) RemoveToxic(ctx context.Context, name string) error {
	err := p.tp.Toxics.RemoveToxic(ctx, name)
	if err != nil && !errors.Is(err, toxiproxy.ErrToxicNotFound) {
		return fmt.Errorf("proxy %s: remove toxic %s: %w", p.name, name, err)
	}
	return nil
}

// Close stops the proxy and its gate. Safe to call more than once.
func (p *EmbeddedProxy) Close() error {
	var err error
	p.once.Do(func() {
		p.tp.Stop()
		err = p.gate.close()
		p.owner.mu.Lock()
		delete(p.owner.proxies, p.name)
		p.owner.mu.Unlock()
	})
	return err
}
