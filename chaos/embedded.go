package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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
	tp.Lock()
	listen := tp.Listen
	tp.Unlock()
	p := &EmbeddedProxy{gate: g, tp: tp, name: name, owner: e, listen: listen}
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
	tp     *toxiproxy.Proxy
	name   string
	listen string
	owner  *Embedded
	once   sync.Once
	// stuck is a call into Toxiproxy that outlasted stuckAfter and has
	// not returned yet; calls fail at once while it is there.
	stuck atomic.Pointer[stuckCall]
}

// stuckCall is a call into Toxiproxy abandoned by its caller; done
// closes when it returns after all.
type stuckCall struct {
	what string
	done chan struct{}
}

// stuckAfter bounds every call into the embedded Toxiproxy. Toxiproxy
// (v2.5.0, Shopify/toxiproxy#558 and #428) changes a proxy's toxics while
// holding the proxy's toxic lock, and each change waits for every link of
// the proxy to hand over its data; a link whose client stopped reading
// (a paused process) holds the change for as long as it does not read,
// and one whose client then closed holds it for good, and with it every
// later change, new connection and Stop of that proxy. A harness must not
// hang on that: past stuckAfter the call is abandoned (ErrStuck) and the
// proxy refuses calls until it returns.
var stuckAfter = 30 * time.Second

// ErrStuck is a call into the embedded Toxiproxy that did not return in
// time: the proxy cannot be changed until it does.
var ErrStuck = errors.New("the embedded Toxiproxy did not return (a link whose client stopped reading holds it: Shopify/toxiproxy#558)")

// call runs f, a call into Toxiproxy, bounded by stuckAfter. A context
// is no bound: a change abandoned while Toxiproxy still makes it would
// race the next one (a remove and an add of one toxic).
func (p *EmbeddedProxy) call(what string, f func() error) error {
	if sc := p.stuck.Load(); sc != nil {
		select {
		case <-sc.done:
			p.stuck.CompareAndSwap(sc, nil)
		default:
			return fmt.Errorf("proxy %s: %s: %s has not returned: %w", p.name, what, sc.what, ErrStuck)
		}
	}
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = f()
	}()
	t := time.NewTimer(stuckAfter)
	defer t.Stop()
	select {
	case <-done:
		return err
	case <-t.C:
		p.stuck.Store(&stuckCall{what: what, done: done})
		return fmt.Errorf("proxy %s: %s did not return in %s: %w", p.name, what, stuckAfter, ErrStuck)
	}
}

// Listen is the address clients dial: the Toxiproxy listener.
func (p *EmbeddedProxy) Listen() string { return p.listen }

// SetEnabled starts or stops the listener (on the same port); stopping
// drops every connection.
func (p *EmbeddedProxy) SetEnabled(ctx context.Context, on bool) error {
	if !on {
		return p.call("disable", func() error { p.tp.Stop(); return nil })
	}
	return p.call("enable", func() error {
		if err := p.tp.Start(); err != nil && !errors.Is(err, toxiproxy.ErrProxyAlreadyStarted) {
			return fmt.Errorf("proxy %s: enable: %w", p.name, err)
		}
		return nil
	})
}

// AddToxic adds t to the proxy's chain.
func (p *EmbeddedProxy) AddToxic(ctx context.Context, t Toxic) error {
	body, err := json.Marshal(t.withDefaults())
	if err != nil {
		return err
	}
	return p.call("add toxic "+t.Name, func() error {
		if _, err := p.tp.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
			return fmt.Errorf("proxy %s: add toxic %s: %w", p.name, t.Name, err)
		}
		return nil
	})
}

// RemoveToxic removes the named toxic; one that is not there is no error.
func (p *EmbeddedProxy) RemoveToxic(ctx context.Context, name string) error {
	return p.call("remove toxic "+name, func() error {
		err := p.tp.Toxics.RemoveToxic(context.WithoutCancel(ctx), name)
		if err != nil && !errors.Is(err, toxiproxy.ErrToxicNotFound) {
			return fmt.Errorf("proxy %s: remove toxic %s: %w", p.name, name, err)
		}
		return nil
	})
}

// Close stops the proxy and its gate. Safe to call more than once. A
// stuck proxy (ErrStuck) is left to its goroutines: its gate closes, its
// listener stays bound until they return or the process ends.
func (p *EmbeddedProxy) Close() error {
	var err error
	p.once.Do(func() {
		err = p.call("stop", func() error { p.tp.Stop(); return nil })
		err = errors.Join(err, p.gate.close())
		p.owner.mu.Lock()
		delete(p.owner.proxies, p.name)
		p.owner.mu.Unlock()
	})
	return err
}
