package scenarios

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/httplayer"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/internal/redact"
	"github.com/gonogo/harness/target"
)

// ServiceOptions put an implementation that runs elsewhere under the
// scenarios (`harness run --service URL,…`): service instances reached over
// HTTP (docs/http.md), the Redis they share, and the proxy their Redis
// traffic goes through.
type ServiceOptions struct {
	// Services are the instances under test: instance i of a scenario is
	// Services[i]. Required.
	Services []*httplayer.Service
	// Redis opens, for one run, the harness's own view of the services'
	// Redis: its facts, its fault abilities (a container named to the
	// harness can be killed, paused and restarted) and a fresh key prefix
	// whose keys are deleted at Close. Close must leave the server
	// running. Required.
	Redis func(ctx context.Context) (target.Target, error)
	// Proxy is the Toxiproxy proxy in front of the services' Redis, which
	// network faults act on. It outlives every run: a run removes the
	// toxics it added and leaves it enabled. Nil: network faults are
	// unavailable.
	Proxy chaos.Proxy
	// ProxyAddr is where this host reaches Proxy (its Listen address may
	// be a container's or 0.0.0.0): instance processes get REDIS_URL
	// through it. Default: Proxy's Listen.
	ProxyAddr string
	// AllowDestructive lets destructive faults act on a Redis the harness
	// does not own (a URL without a container).
	AllowDestructive bool
	// InstanceCmd, when set, starts the instances of instance_mode
	// process scenarios (Deps.InstanceCmd): the Services serve every
	// other scenario.
	InstanceCmd []string
}

// ServiceDeps are the engine's constructors for o. Each scenario resets
// every instance it uses to its configuration and a fresh key prefix
// (POST /_harness/reset), with SSE heartbeats at a quarter of its registry
// TTL. A scenario the services cannot run is not run (INCONCLUSIVE,
// ErrUnavailable): it needs more instances than given, a configuration or
// the registry workload from a service without that control ability, or
// target options the services' Redis does not have.
func ServiceDeps(o ServiceOptions) *Deps {
	return &Deps{
		StartTarget: func(ctx context.Context, _ Target) (target.Target, error) { return o.Redis(ctx) },
		NewProxy: func(context.Context, string, string) (chaos.Proxy, error) {
			if o.Proxy == nil {
				return nil, nil
			}
			return &sharedProxy{Proxy: o.Proxy, addr: o.ProxyAddr, toxics: map[string]bool{}}, nil
		},
		Fault:            chaos.Lookup,
		AllowDestructive: o.AllowDestructive,
		InstanceCmd:      o.InstanceCmd,
		Instance: func(ctx context.Context, i int, cfg impl.Config) (*impl.Layer, error) {
			if i >= len(o.Services) {
				return nil, fmt.Errorf("instance %d: only %d services given", i, len(o.Services))
			}
			return o.Services[i].Layer(ctx, cfg, sseHeartbeat(cfg))
		},
		Unavailable: o.unavailable,
	}
}

// unavailable lists why the services cannot run spec on t.
func (o ServiceOptions) unavailable(spec Spec, t target.Target) []string {
	var why []string
	if spec.InstanceMode != InstancesProcess || len(o.InstanceCmd) == 0 {
		why = o.servicesLack(spec)
	}
	// else the instance command starts the instances, which the engine
	// checks when they start.
	if !t.Owned() {
		return why // unavailable() reports the target options
	}
	if spec.Target.AOF {
		if aof := appendonly(t); aof != "yes" {
			why = append(why, fmt.Sprintf("target option aof not available: the services' Redis runs with appendonly %s, and the harness did not start it", aof))
		}
	}
	for _, opt := range []struct{ name, v string }{{"maxmemory", spec.Target.MaxMemory}, {"policy", spec.Target.Policy}} {
		if opt.v != "" {
			why = append(why, fmt.Sprintf("target option %s not available: the harness did not start the services' Redis, so it cannot configure it", opt.name))
		}
	}
	return why
}

// servicesLack lists what the services given lack to run spec.
func (o ServiceOptions) servicesLack(spec Spec) []string {
	var why []string
	n := max(spec.Instances, 1)
	if n > len(o.Services) {
		why = append(why, fmt.Sprintf("needs %d service instances; --service gave %d", n, len(o.Services)))
	}
	if x := spec.Workload.SSE; x.Slow.Clients > 0 || x.Stalled.Clients > 0 && x.Stalled.ReadRate > 0 {
		// The streams of --service instances are read by the layer's own
		// HTTP client, which neither throttles nor shrinks its socket.
		why = append(why, "workload.sse read_rate (a throttled socket) is not available with --service: its SSE streams go through the service layer's own client")
	}
	for _, s := range o.Services[:min(n, len(o.Services))] {
		why = append(why, controlLacks(s, spec)...)
	}
	return why
}

// controlLacks lists the control abilities spec needs that service s
// does not offer.
func controlLacks(s *httplayer.Service, spec Spec) []string {
	var why []string
	cfg := spec.Config
	cfg.Line = 0
	base := redact.URL(s.Base())
	if cfg != (Config{}) && !s.Has(httplayer.Reset) {
		why = append(why, fmt.Sprintf("service %s does not offer the harness control API's reset (POST /_harness/reset): it cannot take the scenario's configuration and a fresh key prefix", base))
	}
	if spec.Workload.Registry.Connections > 0 && !s.Has(httplayer.Registry) {
		why = append(why, fmt.Sprintf("service %s does not offer the harness control API's registry (/_harness/registry/), which the registry workload drives", base))
	}
	return why
}

// appendonly is CONFIG GET appendonly on t, or why it is unknown.
func appendonly(t target.Target) string {
	c, ok := t.(interface {
		ConfigGet(ctx context.Context, key string) (string, error)
	})
	if !ok {
		return "unknown (the target cannot read its configuration)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := c.ConfigGet(ctx, "appendonly")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return v
}

// sharedProxy is one run's use of a proxy that outlives it: Close removes
// the toxics the run left and enables the proxy, instead of deleting it.
type sharedProxy struct {
	chaos.Proxy
	addr   string // where this host reaches it; "": Listen's
	mu     sync.Mutex
	toxics map[string]bool
}

// Listen is where this host reaches the proxy.
func (p *sharedProxy) Listen() string {
	if p.addr != "" {
		return p.addr
	}
	return p.Proxy.Listen()
}

func (p *sharedProxy) AddToxic(ctx context.Context, t chaos.Toxic) error {
	p.mu.Lock()
	p.toxics[t.Name] = true
	p.mu.Unlock()
	return p.Proxy.AddToxic(ctx, t)
}

func (p *sharedProxy) RemoveToxic(ctx context.Context, name string) error {
	err := p.Proxy.RemoveToxic(ctx, name)
	if err == nil {
		p.mu.Lock()
		delete(p.toxics, name)
		p.mu.Unlock()
	}
	return err
}

// Close leaves the proxy as the run found it: enabled, without the run's
// toxics.
func (p *sharedProxy) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []string
	for name := range p.toxics {
		if err := p.Proxy.RemoveToxic(ctx, name); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if err := p.Proxy.SetEnabled(ctx, true); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("resetting the shared proxy: %s", strings.Join(errs, "; "))
	}
	return nil
}

// counted is a layer run elsewhere that reports the Redis commands it made
// since its reset (httplayer).
type counted interface {
	Counts(ctx context.Context) (ops map[string]counter.Counts, dials int64, ok bool, err error)
}

// addServiceCounts adds to the run's counts what each instance run
// elsewhere counted; one that does not count leaves its round trips
// unknown, with a note.
func (r *run) addServiceCounts() {
	for i, l := range r.layers {
		c, ok := l.Manager.(counted)
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ops, dials, ok, err := c.Counts(ctx)
		cancel()
		switch {
		case err != nil:
			r.notes.add("instance %d: reading its Redis command counts: %v", i, err)
		case !ok:
			r.notes.add("instance %d does not report Redis command counts (no operations in GET /metrics/redis): round trips unknown", i)
		default:
			for op, n := range ops {
				r.count.Add(op, n)
			}
			r.count.AddDials(dials)
		}
	}
}
