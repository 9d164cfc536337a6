package bench

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/chaos/target"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/redact"
)

// openTarget starts or opens cfg's target. An unreachable URL is bad
// input (exit 3) whose text never shows the password.
func openTarget(ctx context.Context, cfg *Config) (target.Target, error) {
	switch cfg.Target {
	case TargetURL:
		return target.OpenURL(ctx, cfg.URL, target.URLOptions{})
	case TargetRemoteSim:
		return startRemoteSim(ctx, cfg.RTT)
	}
	p, err := target.StartProcess(ctx, target.ProcessOptions{})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// remoteSim stands in for Upstash: a TLS redis-server behind an embedded
// Toxiproxy whose latency toxics add half the RTT in each direction.
// Clients dial the proxy (URL); Addr stays the server's.
type remoteSim struct {
	*target.Process
	emb   *chaos.Embedded
	proxy *chaos.EmbeddedProxy
}

func startRemoteSim(ctx context.Context, rtt time.Duration) (target.Target, error) {
	p, err := target.StartProcess(ctx, target.ProcessOptions{TLS: true})
	if err != nil {
		return nil, err
	}
	r := &remoteSim{Process: p, emb: chaos.NewEmbedded(context.WithoutCancel(ctx))}
	if r.proxy, err = r.emb.NewProxy("bench-remote-sim", p.Addr()); err != nil {
		r.Close()
		return nil, exitcode.Harnessf("remote-sim proxy: %w", err)
	}
	for _, stream := range []string{chaos.Upstream, chaos.Downstream} {
		t := chaos.Toxic{Name: "rtt_" + stream, Type: "latency", Stream: stream, Toxicity: 1,
			Attributes: map[string]any{"latency": (rtt / 2).Milliseconds()}}
		if err := r.proxy.AddToxic(ctx, t); err != nil {
			r.Close()
			return nil, exitcode.Harnessf("remote-sim latency: %w", err)
		}
	}
	return r, nil
}

// Kind is "remote-sim".
func (r *remoteSim) Kind() string { return TargetRemoteSim }

// URL is the server's URL with the proxy as host.
func (r *remoteSim) URL() string {
	u, err := url.Parse(r.Process.URL())
	if err != nil {
		return r.Process.URL()
	}
	u.Host = r.proxy.Listen()
	return u.String()
}

// Redacted is URL with any password masked.
func (r *remoteSim) Redacted() string { return redact.URL(r.URL()) }

// Close stops the proxy and the server.
func (r *remoteSim) Close() error {
	var errs []error
	if r.proxy != nil {
		errs = append(errs, r.proxy.Close())
	}
	errs = append(errs, r.emb.Close(), r.Process.Close())
	return errors.Join(errs...)
}
