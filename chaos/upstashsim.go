package chaos

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/redact"
	"github.com/gonogo/harness/target"
	"github.com/redis/go-redis/v9"
)

// Upstash's answers, as its troubleshooting pages give them:
//
//	https://upstash.com/docs/redis/troubleshooting/max_requests_limit:
//	  "ReplyError: ERR max requests limit exceeded." (QuotaError)
//	https://upstash.com/docs/redis/troubleshooting/max_request_size_exceeded:
//	  "ReplyError: ERR max request size exceeded"
//	https://upstash.com/docs/redis/troubleshooting (ERR max concurrent
//	  connections exceeded: ConnLimitError)
//
// For the commands/s cap Upstash documents no error text
// (https://upstash.com/docs/redis/overall/billing gives the cap: 10,000
// commands/s): the sim throttles, holding a command until the last second
// is back under the cap, as a rate limiter in front of a server would.
const RequestSizeError = "ERR max request size exceeded"

// handshakeTimeout bounds a TLS handshake the sim terminates.
const handshakeTimeout = 10 * time.Second

// UpstashOptions are upstash-sim's limits; zero means none.
type UpstashOptions struct {
	// Quota is the commands the server may execute (script-internal ones
	// included) before every command answers QuotaError.
	Quota int
	// RatePerSec caps the commands the server executes per second.
	RatePerSec int
	// MaxRequest is the largest command, in RESP bytes.
	MaxRequest int
	// Connections caps concurrent connections (ConnLimitError past it).
	Connections int
}

// Defaults of upstash-sim: Upstash free's published limits
// (bench/plans.yaml upstash-free) but the monthly quota, which a scenario
// sets (a quota of 500K would never run out in a test).
const (
	UpstashRatePerSec = 10_000
	UpstashMaxRequest = 10_000_000
)

// UpstashSim stands in for Upstash: remote-sim (a redis-server the harness
// owns, reached over TLS through a proxy adding the round-trip time) whose
// front, where TLS ends, behaves as Upstash does: TLS only; a quota and a
// commands/s cap counting the commands the server executed (INFO
// commandstats, script-internal ones included: the conservative billing
// rule), answered with Upstash's texts; the largest request; the
// concurrent connection cap. It is a Limiter: the quota and conn_limit
// faults set its limits, rate_cap its commands/s cap.
type UpstashSim struct {
	*target.Process
	rtt    time.Duration
	emb    *Embedded
	proxy  *EmbeddedProxy
	front  *gate
	limits *upstashLimits
}

var _ target.Target = (*UpstashSim)(nil)

// StartUpstashSim starts a plain redis-server with opts (TLS is the
// front's), the RTT proxy (0: DefaultRTT) and the front with lim.
func StartUpstashSim(ctx context.Context, rtt time.Duration, lim UpstashOptions, opts target.ProcessOptions) (*UpstashSim, error) {
	switch {
	case rtt < 0:
		return nil, exitcode.Configf("upstash-sim rtt %s: must not be negative", rtt)
	case lim.Quota < 0 || lim.RatePerSec < 0 || lim.MaxRequest < 0 || lim.Connections < 0:
		return nil, exitcode.Configf("upstash-sim limits %+v: must not be negative", lim)
	case rtt == 0:
		rtt = DefaultRTT
	}
	opts.TLS = false
	p, err := target.StartProcess(ctx, opts)
	if err != nil {
		return nil, err
	}
	u := &UpstashSim{Process: p, rtt: rtt, emb: NewEmbedded(context.WithoutCancel(ctx))}
	fail := func(what string, err error) (*UpstashSim, error) {
		u.Close()
		return nil, exitcode.Harnessf("upstash-sim %s: %w", what, err)
	}
	if u.proxy, err = u.emb.NewProxy("upstash-sim", p.Addr()); err != nil {
		return fail("proxy", err)
	}
	if err := addRTT(ctx, u.proxy, rtt); err != nil {
		return fail("latency", err)
	}
	set, err := p.Certs()
	if err != nil {
		return fail("certificates", err)
	}
	if u.limits, err = newUpstashLimits(ctx, p, lim); err != nil {
		return fail("meter", err)
	}
	if u.front, err = newGate(u.proxy.Listen()); err != nil {
		return fail("front", err)
	}
	u.front.upstash = u.limits
	u.front.tlsConf = &tls.Config{Certificates: []tls.Certificate{set.Server.Cert}, MinVersion: tls.VersionTLS12}
	u.front.SetConnLimit(lim.Connections)
	return u, nil
}

// Kind is target.KindUpstashSim.
func (u *UpstashSim) Kind() target.Kind { return target.KindUpstashSim }

// RTT is the injected round-trip time.
func (u *UpstashSim) RTT() time.Duration { return u.rtt }

// Addr is the front's listener.
func (u *UpstashSim) Addr() string { return u.front.addr() }

// URL is the rediss:// URL of the front.
func (u *UpstashSim) URL() string {
	v, err := url.Parse(u.Process.URL())
	if err != nil {
		return u.Process.URL()
	}
	v.Scheme, v.Host = "rediss", u.Addr()
	return v.String()
}

// Redacted is URL with any password masked.
func (u *UpstashSim) Redacted() string { return redact.URL(u.URL()) }

// TLS trusts the generated CA.
func (u *UpstashSim) TLS() *tls.Config {
	set, err := u.Process.Certs()
	if err != nil {
		return nil
	}
	return set.ClientTLS(false)
}

// SetQuota, SetConnLimit and SetHandshakeStall make it a Limiter (the
// quota counts executed commands from now).
func (u *UpstashSim) SetQuota(limit int)        { u.limits.setQuota(limit) }
func (u *UpstashSim) SetConnLimit(limit int)    { u.front.SetConnLimit(limit) }
func (u *UpstashSim) SetHandshakeStall(on bool) { u.front.SetHandshakeStall(on) }

// SetRate caps the commands the server executes per second (0: none).
func (u *UpstashSim) SetRate(perSec int) { u.limits.setRate(perSec) }

// Used is the commands the server executed since the quota was set, as
// the sim counts them.
func (u *UpstashSim) Used() int64 { return u.limits.usedNow() }

// Close stops the front, the proxy, the meter and the server.
func (u *UpstashSim) Close() error {
	if u.front != nil {
		u.front.close()
	}
	if u.limits != nil {
		u.limits.close()
	}
	if u.proxy != nil {
		u.proxy.Close()
	}
	if u.emb != nil {
		u.emb.Close()
	}
	return u.Process.Close()
}

// meterEvery is how often the sim reads the server's command count.
const meterEvery = 10 * time.Millisecond

// upstashLimits counts the commands the server executed (INFO
// commandstats every meterEvery, plus the commands forwarded since the
// last reading, each at least one) and applies the limits to each command
// the front receives.
type upstashLimits struct {
	rdb  *redis.Client
	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	polled     int64 // the server's total at the last reading (the meter's own INFOs excluded)
	since      int64 // commands forwarded since
	infos      int64 // the meter's INFO calls
	base       int64 // the count when the quota was set
	quota      int
	rate       int
	maxRequest int
	window     []sample // readings of the last second
}

type sample struct {
	at time.Time
	n  int64
}

func newUpstashLimits(ctx context.Context, p *target.Process, lim UpstashOptions) (*upstashLimits, error) {
	opt, err := redis.ParseURL(p.URL())
	if err != nil {
		return nil, err
	}
	opt.Protocol, opt.PoolSize, opt.MaxRetries, opt.DisableIdentity = 2, 1, -1, true
	opt.ReadTimeout, opt.WriteTimeout, opt.DialTimeout = time.Second, time.Second, time.Second
	rdb := redis.NewClient(opt)
	l := &upstashLimits{rdb: rdb, stop: make(chan struct{}), done: make(chan struct{}), quota: lim.Quota, rate: lim.RatePerSec,
		maxRequest: lim.MaxRequest}
	if err := l.read(ctx); err != nil {
		rdb.Close()
		return nil, err
	}
	go l.loop()
	return l, nil
}

func (l *upstashLimits) close() {
	close(l.stop)
	<-l.done
	l.rdb.Close()
}

func (l *upstashLimits) loop() {
	defer close(l.done)
	t := time.NewTicker(meterEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			l.read(ctx)
			cancel()
		}
	}
}

// read takes the server's total of executed commands.
func (l *upstashLimits) read(ctx context.Context) error {
	text, err := l.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return err
	}
	calls, err := commandCalls(text)
	if err != nil {
		return err
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.infos++
	l.polled, l.since = calls-(l.infos-1), 0
	l.window = append(l.window, sample{now, l.polled})
	for len(l.window) > 1 && now.Sub(l.window[0].at) > time.Second {
		l.window = l.window[1:]
	}
	return nil
}

func (l *upstashLimits) usedNow() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.polled + l.since - l.base
}

func (l *upstashLimits) setQuota(limit int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.quota, l.base = limit, l.polled+l.since
}

func (l *upstashLimits) setRate(perSec int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rate = perSec
}

// charge decides one command of size bytes: Upstash's reply, or nil to
// forward it (after holding it while the last second is over the rate
// cap, at most a second).
func (l *upstashLimits) charge(size int) []byte {
	deadline := time.Now().Add(time.Second)
	for {
		l.mu.Lock()
		switch {
		case l.maxRequest > 0 && size > l.maxRequest:
			l.mu.Unlock()
			return []byte("-" + RequestSizeError + "\r\n")
		case l.quota > 0 && l.polled+l.since-l.base >= int64(l.quota):
			used := l.polled + l.since - l.base
			l.mu.Unlock()
			return []byte("-" + QuotaError(l.quota, int(used)) + "\r\n")
		}
		over := l.rate > 0 && len(l.window) > 0 && l.polled+l.since-l.window[0].n >= int64(l.rate)
		if !over || time.Now().After(deadline) {
			l.since++
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		time.Sleep(meterEvery)
	}
}

// commandCalls sums INFO commandstats' calls.
func commandCalls(text string) (int64, error) {
	var total int64
	for _, line := range strings.Split(text, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 0 {
					return 0, fmt.Errorf("info commandstats: %s: bad calls %q", name, v)
				}
				total += n
			}
		}
	}
	return total, nil
}
