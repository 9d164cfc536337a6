package bench

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/hardened"
)

// An outage point publishes at the load's rate for outageLead, with Redis
// unreachable (the proxy in front of it down) for the point's length, then
// for outageTail with Redis back; after the measured phase it waits up to
// outageDrain for the layer's outbox to empty.
//
// outageLead and outageTail are variables so that a test can shorten them.
var (
	outageLead = 2 * time.Second
	outageTail = 3 * time.Second
)

const (
	outageDrain   = 2 * time.Minute
	outageSample  = 100 * time.Millisecond
	defaultOutage = 1000 // events per second when --rate is not given
)

// OutageStats is what an outage point saw of the layer's fallback memory.
// OutboxPeak, Overflow and Replayed are the hardened outbox's (zero for a
// layer without one); PeakRSSBytes the process's resident size at its
// highest, sampled every 100 ms.
type OutageStats struct {
	Seconds      float64 `json:"outage_s"`
	OutboxCap    int     `json:"outbox_cap,omitempty"`
	OutboxPeak   int     `json:"outbox_peak"`
	Overflow     int64   `json:"overflow"`
	Replayed     int64   `json:"replayed"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	BaseRSSBytes int64   `json:"rss_before_bytes"`
	// DrainedMs is the time from Redis's return to an empty outbox (to
	// the 100 ms sample); -1 when it was not empty within outageDrain or
	// the layer has none.
	DrainedMs float64 `json:"drained_ms"`
}

// outageLoad is an outage point's load: open loop at the given rate (or
// defaultOutage), measured for the lead, the outage and the tail; late
// calls are reported, not failed (a publish may wait out its budget when
// the outage begins).
func outageLoad(l Load, outage time.Duration) Load {
	if l.Rate == 0 {
		l.Rate = defaultOutage
	}
	l.Ops = 0
	l.Duration = outageLead + outage + outageTail
	l.MaxMissed = -1
	return l
}

// outboxer is a bus with an outbox (the hardened profile's).
type outboxer interface{ Outbox() hardened.OutboxStats }

// outage is one outage point's fault and sampler.
type outage struct {
	proxy  *chaos.EmbeddedProxy
	length time.Duration
	bus    outboxer // nil: the layer has no outbox
	stats  OutageStats
	upAt   time.Time
	// drainedAt is the first sample after upAt with the outbox empty.
	drainedAt time.Time
	stop      chan struct{}
	wg        sync.WaitGroup
	mu        sync.Mutex
	err       error
}

// newOutage puts a proxy in front of the target and points cfg at it.
func newOutage(e *chaos.Embedded, addr string, cfg *impl.Config, length time.Duration) (*outage, error) {
	p, err := e.NewProxy("bench-outage", addr)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("outage: target URL: %w", err)
	}
	u.Host = p.Listen()
	cfg.URL = u.String()
	return &outage{proxy: p, length: length, stop: make(chan struct{}),
		stats: OutageStats{Seconds: length.Seconds(), DrainedMs: -1, OutboxCap: cfg.OutboxCap}}, nil
}

// attach watches l's outbox, if it has one.
func (o *outage) attach(l *impl.Layer) {
	if b, ok := l.Bus.(outboxer); ok {
		o.bus = b
	} else {
		o.stats.OutboxCap = 0
	}
}

// mark is the op's Mark: at the measured phase's start the fault timeline
// and the sampler begin; at its end the sampler stops.
func (o *outage) mark(ctx context.Context, end bool) {
	if end {
		close(o.stop)
		o.wg.Wait()
		return
	}
	o.stats.BaseRSSBytes = rss()
	o.wg.Add(2)
	go func() {
		defer o.wg.Done()
		o.timeline(ctx)
	}()
	go func() {
		defer o.wg.Done()
		t := time.NewTicker(outageSample)
		defer t.Stop()
		for {
			o.sample()
			select {
			case <-t.C:
			case <-o.stop:
				return
			}
		}
	}()
}

// timeline takes Redis away after the lead and brings it back after the
// outage's length.
func (o *outage) timeline(ctx context.Context) {
	wait := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-o.stop:
			return false
		case <-ctx.Done():
			return false
		}
	}
	if !wait(outageLead) {
		return
	}
	if err := o.proxy.SetEnabled(ctx, false); err != nil {
		o.fail(err)
		return
	}
	wait(o.length)
	// Whatever ended the wait, Redis comes back.
	if err := o.proxy.SetEnabled(context.Background(), true); err != nil {
		o.fail(err)
	}
	o.mu.Lock()
	o.upAt = time.Now()
	o.mu.Unlock()
}

func (o *outage) fail(err error) {
	o.mu.Lock()
	if o.err == nil {
		o.err = err
	}
	o.mu.Unlock()
}

func (o *outage) sample() {
	r := rss()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stats.PeakRSSBytes = max(o.stats.PeakRSSBytes, r)
	if o.bus != nil {
		st := o.bus.Outbox()
		o.stats.OutboxPeak = max(o.stats.OutboxPeak, st.Pending)
		o.stats.Overflow, o.stats.Replayed = st.Overflow, st.Replayed
		if !o.upAt.IsZero() && o.drainedAt.IsZero() && st.Pending == 0 {
			o.drainedAt = time.Now()
		}
	}
}

// drain waits (bounded) for the outbox to empty and returns the stats.
func (o *outage) drain(ctx context.Context) (OutageStats, error) {
	deadline := time.Now().Add(outageDrain)
	for o.bus != nil && o.bus.Outbox().Pending > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(outageSample)
	}
	o.sample()
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.drainedAt.IsZero() {
		o.stats.DrainedMs = float64(o.drainedAt.Sub(o.upAt)) / float64(time.Millisecond)
	}
	return o.stats, o.err
}

// close removes the proxy.
func (o *outage) close() error { return o.proxy.Close() }
