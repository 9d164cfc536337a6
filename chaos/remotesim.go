package chaos

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/redact"
	"github.com/gonogo/harness/target"
)

// DefaultRTT is remote-sim's round-trip time when none is given: a
// same-region managed Redis such as Upstash.
const DefaultRTT = 20 * time.Millisecond

// RemoteSim stands in for a remote managed Redis (Upstash) where none can
// be reached: a TLS-only redis-server the harness owns, behind an embedded
// Toxiproxy proxy whose latency toxics add half the round-trip time in each
// direction. Clients dial the proxy (Addr, URL) and verify the CA generated
// at start (TLS). The process's abilities (kill, pause, restart, config,
// TLS state) stay available to faults through the embedded *target.Process.
type RemoteSim struct {
	*target.Process
	rtt   time.Duration
	emb   *Embedded
	proxy *EmbeddedProxy
}

var _ target.Target = (*RemoteSim)(nil)

// StartRemoteSim starts a redis-server with opts (TLS forced on) behind a
// proxy adding rtt (0: DefaultRTT) to every round trip. Close stops both.
func StartRemoteSim(ctx context.Context, rtt time.Duration, opts target.ProcessOptions) (*RemoteSim, error) {
	if rtt < 0 {
		return nil, exitcode.Configf("remote-sim rtt %s: must not be negative", rtt)
	}
	if rtt == 0 {
		rtt = DefaultRTT
	}
	opts.TLS = true
	p, err := target.StartProcess(ctx, opts)
	if err != nil {
		return nil, err
	}
	r := &RemoteSim{Process: p, rtt: rtt, emb: NewEmbedded(context.WithoutCancel(ctx))}
	if r.proxy, err = r.emb.NewProxy("remote-sim", p.Addr()); err != nil {
		r.Close()
		return nil, exitcode.Harnessf("remote-sim proxy: %w", err)
	}
	if err := addRTT(ctx, r.proxy, rtt); err != nil {
		r.Close()
		return nil, exitcode.Harnessf("remote-sim latency: %w", err)
	}
	return r, nil
}

// addRTT makes proxy add rtt to every round trip: half of it each way.
func addRTT(ctx context.Context, proxy *EmbeddedProxy, rtt time.Duration) error {
	for _, stream := range []string{Upstream, Downstream} {
		t := Toxic{Name: "rtt_" + stream, Type: "latency", Stream: stream, Toxicity: 1,
			Attributes: map[string]any{"latency": (rtt / 2).Milliseconds()}}
		if err := proxy.AddToxic(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// Kind is target.KindRemoteSim.
func (r *RemoteSim) Kind() target.Kind { return target.KindRemoteSim }

// RTT is the injected round-trip time.
func (r *RemoteSim) RTT() time.Duration { return r.rtt }

// Addr is the proxy's listener: the "remote" address, RTT included.
func (r *RemoteSim) Addr() string { return r.proxy.Listen() }

// URL is the server's rediss:// URL with the proxy as host (a secret when
// the server has a password).
func (r *RemoteSim) URL() string {
	u, err := url.Parse(r.Process.URL())
	if err != nil {
		return r.Process.URL()
	}
	u.Host = r.Addr()
	return u.String()
}

// Redacted is URL with any password masked.
func (r *RemoteSim) Redacted() string { return redact.URL(r.URL()) }

// Close stops the proxy and the server. Safe to call more than once.
func (r *RemoteSim) Close() error {
	var errs []error
	if r.proxy != nil {
		errs = append(errs, r.proxy.Close())
	}
	errs = append(errs, r.emb.Close(), r.Process.Close())
	return errors.Join(errs...)
}
