package scenarios

import (
	"context"
	"os"
	"time"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/service"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/scenarios/check"
	"github.com/gonogo/harness/target"
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
// (TLS, AOF and eviction as the spec says; remote-sim when the spec says
// so), an embedded Toxiproxy in front of it, the chaos catalogue's faults,
// and the HTTP service for SSE.
func DefaultDeps() *Deps { return NewDeps(TargetOptions{}) }

// TargetOptions choose where Redis comes from for every scenario of a run.
// Zero values mean the default stated on each field.
type TargetOptions struct {
	// Kind is one of target.Kinds. Default "": each spec's own target.kind
	// (process unless it says remote-sim).
	Kind target.Kind
	// URL is the url target's redis:// or rediss:// URL. It is a secret:
	// never print it (target.Remote.Redacted does).
	URL string
	// URLOptions are the url target's TLS options (CA, client
	// certificate, insecure). Its Prefix is left empty: every run gets a
	// fresh random namespace, deleted when the run ends.
	URLOptions target.URLOptions
	// Image is the container target's image. Default: see
	// target.ContainerOptions.Image.
	Image string
	// RTT is remote-sim's round-trip time. Default: the spec's
	// target.rtt, else chaos.DefaultRTT.
	RTT time.Duration
	// AllowDestructive lets destructive faults act on a target the
	// harness does not own (Deps.AllowDestructive).
	AllowDestructive bool
}

// NewDeps returns the real constructors with the target o chooses. Each
// run gets its own target, set up as its spec's target section says:
// AOF, maxmemory and policy on the targets the harness owns (on a url
// target the engine reports them unavailable), TLS on process, container
// and sentinel (remote-sim is always TLS; a url target is TLS when its
// scheme is rediss://).
func NewDeps(o TargetOptions) *Deps {
	d := &Deps{
		StartTarget:      o.start,
		NewProxy:         newEmbeddedProxy,
		Fault:            chaos.Lookup,
		Service:          startService,
		AllowDestructive: o.AllowDestructive,
	}
	// Instance processes are this executable serving: `harness serve`, or
	// a test binary whose TestMain serves when ChildEnv is set.
	if exe, err := os.Executable(); err == nil {
		d.Serve = []string{exe, "serve"}
	}
	return d
}

// start starts (or opens) the target for one run of a spec.
func (o TargetOptions) start(ctx context.Context, t Target) (target.Target, error) {
	kind := o.Kind
	switch {
	case kind == "":
		kind = t.Kind
	case t.Kind == target.KindUpstashSim && (kind == target.KindProcess || kind == target.KindRemoteSim):
		// Upstash's limits are what the scenario judges: on a run's own
		// redis-server it still gets them (a URL, real Upstash perhaps,
		// is taken as given).
		kind = target.KindUpstashSim
	}
	switch kind {
	case target.KindContainer:
		return started(target.StartContainer(ctx, target.ContainerOptions{
			Image:           o.Image,
			AOF:             t.AOF,
			MaxMemory:       t.MaxMemory,
			MaxMemoryPolicy: t.Policy,
			TLS:             t.TLS,
		}))
	case target.KindRemoteSim:
		rtt := o.RTT
		if rtt == 0 {
			rtt = t.RTT.D()
		}
		return started(chaos.StartRemoteSim(ctx, rtt, processOptions(t)))
	case target.KindUpstashSim:
		rtt := o.RTT
		if rtt == 0 {
			rtt = t.RTT.D()
		}
		// Upstash free's published caps; the quota and the connection
		// cap are the scenario's faults.
		lim := chaos.UpstashOptions{RatePerSec: chaos.UpstashRatePerSec, MaxRequest: chaos.UpstashMaxRequest}
		return started(chaos.StartUpstashSim(ctx, rtt, lim, processOptions(t)))
	case target.KindURL:
		return started(target.OpenURL(ctx, o.URL, o.URLOptions))
	case target.KindSentinel:
		return started(target.StartSentinel(ctx, target.SentinelOptions{AOF: t.AOF, TLS: t.TLS}))
	case target.KindCluster:
		// Neither TLS nor AOF is offered: the engine reports them
		// unavailable.
		return started(target.StartCluster(ctx, target.ClusterOptions{}))
	case "", target.KindProcess:
		return startProcess(ctx, t)
	}
	return nil, exitcode.Configf("target %q: want one of %s", kind, target.KindList(target.Kinds, ", "))
}

// startProcess spawns the redis-server a spec's target section asks for.
func startProcess(ctx context.Context, t Target) (target.Target, error) {
	return started(target.StartProcess(ctx, processOptions(t)))
}

// started returns t as a Target, or a nil Target (not a typed nil) on
// error.
func started[T target.Target](t T, err error) (target.Target, error) {
	if err != nil {
		return nil, err
	}
	return t, nil
}

func processOptions(t Target) target.ProcessOptions {
	return target.ProcessOptions{AOF: t.AOF, MaxMemory: t.MaxMemory, MaxMemoryPolicy: t.Policy, TLS: t.TLS}
}

// DefaultKnown is what scenario files may name: the chaos catalogue's
// faults and the engine's flag step, the checkers and their metrics, and
// the registered profiles.
func DefaultKnown(p *impl.Profiles) Known {
	return Known{
		Fault: func(name string, params map[string]string) error {
			if name == check.FlagFault {
				_, err := parseFlag(params)
				return err
			}
			if isInstanceFault(name) {
				_, err := parseInstanceFault(name, params)
				return err
			}
			_, err := chaos.Lookup(name, params)
			return err
		},
		Faults:   append(append(chaos.Names(), check.FlagFault), instanceFaults...),
		Checks:   checkNames(),
		Metrics:  metricNames(),
		Profiles: p.Names(),
	}
}

// startService serves l over HTTP on a free loopback port for SSE clients.
// Streams heartbeat four times per registry TTL.
func startService(ctx context.Context, l *impl.Layer, cfg impl.Config) (string, func() error, error) {
	s := service.New(l, service.Options{HeartbeatInterval: sseHeartbeat(cfg)})
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
