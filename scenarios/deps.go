package scenarios

import (
	"context"
	"time"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/chaos/target"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/service"
)

// embeddedProxy is a proxy of its own in-process Toxiproxy; closing it
// closes both. Abilities of the proxy (chaos.Limiter) stay visible to
// faults through the embedded pointer.
type embeddedProxy struct {
	*chaos.EmbeddedProxy
	server *chaos.Embedded
}

func (p embeddedProxy) Close() error {
	err := p.EmbeddedProxy.Close()
	p.server.Close()
	return err
}

// newEmbeddedProxy starts an embedded Toxiproxy with one proxy in front of
// upstream. It lives until Close, not until ctx ends: faults are undone
// after a cancelled run, and a proxy closed under them would be restarted.
func newEmbeddedProxy(ctx context.Context, name, upstream string) (chaos.Proxy, error) {
	e := chaos.NewEmbedded(context.WithoutCancel(ctx))
	p, err := e.NewProxy(name, upstream)
	if err != nil {
		e.Close()
		return nil, err
	}
	return embeddedProxy{p, e}, nil
}

// DefaultDeps are the real constructors: a redis-server process per run
// (TLS, AOF and eviction as the spec says), an embedded Toxiproxy in front
// of it, the chaos catalogue's faults, and the HTTP service for SSE.
func DefaultDeps() *Deps {
	return &Deps{
		StartTarget: startProcess,
		NewProxy:    newEmbeddedProxy,
		Fault:       chaos.Lookup,
		Service:     startService,
	}
}

// startProcess spawns the redis-server a spec's target section asks for;
// remote-sim is a TLS process (its round-trip time is added at the proxy).
func startProcess(ctx context.Context, t Target) (target.Target, error) {
	return target.StartProcess(ctx, target.ProcessOptions{
		AOF:             t.AOF,
		MaxMemory:       t.MaxMemory,
		MaxMemoryPolicy: t.Policy,
		TLS:             t.TLS || t.Kind == "remote-sim",
	})
}

// DefaultKnown is what scenario files may name: the chaos catalogue's
// faults, the checkers and their metrics, and the registered profiles.
func DefaultKnown(p *impl.Profiles) Known {
	return Known{
		Fault: func(name string, params map[string]string) error {
			_, err := chaos.Lookup(name, params)
			return err
		},
		Faults:   chaos.Names(),
		Checks:   checkNames(),
		Metrics:  metricNames(),
		Profiles: p.Names(),
	}
}

// startService serves l over HTTP on a free loopback port for SSE clients.
// Streams heartbeat four times per registry TTL.
func startService(ctx context.Context, l *impl.Layer, cfg impl.Config) (string, func() error, error) {
	s := service.New(l, service.Options{HeartbeatInterval: cfg.RegistryTTL / 4})
	base, err := s.Start(ctx, "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	stop := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return s.Shutdown(sctx)
	}
	return base, stop, nil
}
