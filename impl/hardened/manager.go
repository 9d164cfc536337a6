package hardened

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// errOffline is what a Redis call returns while the breaker is open (memory
// mode): Redis is not touched at all.
var errOffline = errors.New("hardened: redis unavailable (memory mode)")

// manager is the connection manager (TASK-003/004/012) with a breaker: it
// holds one go-redis client while Redis answers and none while it does not.
// The first failed or over-budget call opens the breaker (the client is
// closed, so nothing waits on a dead pool); a background probe dials a fresh
// client every ProbeInterval and closes the breaker when PING answers.
// Each client that comes up gets a new generation number; components hear
// of every transition through listeners run one at a time by the probe
// goroutine (or by New for the first connect).
type manager struct {
	cfg impl.Config
	// io bounds socket reads and writes of the longer, unbudgeted calls
	// (history, replay, health, subscribe); budgeted calls carry a
	// shorter context deadline.
	io time.Duration

	mu      sync.Mutex
	rdb     *redis.Client // nil while the breaker is open
	gen     uint64
	lastErr string
	latency time.Duration
	pinged  time.Time

	onUp    []func(rdb *redis.Client, gen uint64)
	onDown  []func()
	closers []func()
	// notified is the generation the listeners last heard as up (0: down).
	notified uint64

	// network and addr are where the probe checks that Redis listens
	// before it builds a client.
	network, addr string

	wake chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

func newManager(cfg impl.Config) *manager {
	return &manager{
		cfg:  cfg,
		io:   max(2*max(cfg.PublishBudget, cfg.CallBudget), 250*time.Millisecond),
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
	}
}

// listen adds transition listeners; call before start.
func (m *manager) listen(up func(rdb *redis.Client, gen uint64), down func()) {
	if up != nil {
		m.onUp = append(m.onUp, up)
	}
	if down != nil {
		m.onDown = append(m.onDown, down)
	}
}

// start makes the first connection attempt (bounded by ConnectTimeout; a
// failure leaves the layer in memory mode), tells the listeners, and starts
// the probe. Only a URL that does not parse is an error.
func (m *manager) start(ctx context.Context) error {
	if !m.cfg.Enabled {
		return nil
	}
	opt, err := redis.ParseURL(m.cfg.URL)
	if err != nil {
		_, err = m.newClient() // the config error, password redacted
		return err
	}
	m.network, m.addr = opt.Network, opt.Addr
	m.probe(ctx, m.cfg.ConnectTimeout)
	m.notify()
	m.goroutine(m.probeLoop)
	return nil
}

// goroutine runs fn as part of the layer: Close waits for it.
func (m *manager) goroutine(fn func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		fn()
	}()
}

// newClient builds a client whose waits are all bounded: no retries (round
// trips count exactly), one dial attempt, socket timeouts of m.io, a pool
// wait no longer than a budget, and no extra handshake commands. A fifth
// of the pool is dialled ahead (TCP and TLS), so that a budgeted call on a
// remote target rarely pays for a handshake.
func (m *manager) newClient() (*redis.Client, error) {
	return impl.NewClient(m.cfg, func(o *redis.Options) {
		o.MaxRetries = -1
		o.DialerRetries = 1
		o.ReadTimeout = m.io
		o.WriteTimeout = m.io
		o.PoolTimeout = max(m.cfg.PublishBudget, m.cfg.CallBudget)
		o.MinIdleConns = max(1, m.cfg.PoolSize/5)
		o.DisableIdentity = true
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	})
}

// connect PINGs a fresh client and loads the scripts; on success it
// becomes the current client, else it is closed.
func (m *manager) connect(ctx context.Context, rdb *redis.Client, timeout time.Duration) {
	cctx, cancel := context.WithTimeout(counter.WithOp(ctx, "probe"), timeout)
	defer cancel()
	start := time.Now()
	err := rdb.Ping(cctx).Err()
	lat := time.Since(start)
	if err == nil {
		err = loadScripts(cctx, rdb)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		rdb.Close()
		m.lastErr = err.Error()
		return
	}
	m.rdb, m.lastErr, m.latency, m.pinged = rdb, "", lat, time.Now()
	m.gen++
}

// client returns the current client and its generation, or nil in memory
// mode.
func (m *manager) client() (*redis.Client, uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rdb, m.gen
}

// fail opens the breaker if rdb is still the current client.
func (m *manager) fail(rdb *redis.Client, err error) {
	m.mu.Lock()
	if m.rdb != rdb || rdb == nil {
		m.mu.Unlock()
		return
	}
	m.rdb = nil
	m.lastErr = err.Error()
	m.mu.Unlock()
	// Closing the pool may wait on its connections: not on the caller's
	// budget.
	m.goroutine(func() { rdb.Close() })
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// notify runs the listeners for the transition(s) since the last call.
func (m *manager) notify() {
	for {
		rdb, gen := m.client()
		switch {
		case rdb != nil && m.notified != gen:
			if m.notified != 0 {
				m.runDown()
			}
			m.notified = gen
			for _, f := range m.onUp {
				f(rdb, gen)
			}
		case rdb == nil && m.notified != 0:
			m.notified = 0
			m.runDown()
		default:
			return
		}
	}
}

func (m *manager) runDown() {
	for _, f := range m.onDown {
		f()
	}
}

// probeLoop dials every ProbeInterval while the breaker is open, and PINGs
// every HealthInterval while it is closed (idle failure detection without
// billing a command per probe interval).
func (m *manager) probeLoop() {
	t := time.NewTicker(m.cfg.ProbeInterval)
	defer t.Stop()
	timeout := min(max(m.cfg.ProbeInterval, m.io), m.cfg.ConnectTimeout)
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		case <-m.wake:
		}
		rdb, _ := m.client()
		m.mu.Lock()
		due := time.Since(m.pinged) >= m.cfg.HealthInterval
		m.mu.Unlock()
		switch {
		case rdb == nil:
			m.probe(context.Background(), timeout)
		case due:
			m.ping(context.Background(), rdb)
		}
		m.notify()
	}
}

// probe checks that something listens at Redis's address, then connects a
// fresh client (a refused dial costs no client and logs nothing).
func (m *manager) probe(ctx context.Context, timeout time.Duration) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, m.network, m.addr)
	if err != nil {
		m.mu.Lock()
		m.lastErr = err.Error()
		m.mu.Unlock()
		return
	}
	c.Close()
	if rdb, err := m.newClient(); err == nil {
		m.connect(ctx, rdb, timeout)
	}
}

// ping measures one PING on rdb; a failure opens the breaker.
func (m *manager) ping(ctx context.Context, rdb *redis.Client) (time.Duration, error) {
	cctx, cancel := context.WithTimeout(counter.WithOp(ctx, "probe"), m.io)
	defer cancel()
	start := time.Now()
	err := rdb.Ping(cctx).Err()
	lat := time.Since(start)
	if err != nil {
		if ctx.Err() == nil {
			m.fail(rdb, err)
		}
		return lat, err
	}
	m.mu.Lock()
	m.latency, m.pinged = lat, time.Now()
	m.mu.Unlock()
	return lat, nil
}

// call runs fn against the current client under a budget, tagging its
// traffic op. In memory mode it returns errOffline without touching Redis;
// an outage-like failure (network error, timeout, budget exceeded, server
// loading or refusing) opens the breaker. A caller whose own context ended
// does not open it.
func (m *manager) call(ctx context.Context, op string, budget time.Duration, fn func(ctx context.Context, rdb *redis.Client) error) error {
	rdb, _ := m.client()
	if rdb == nil {
		return errOffline
	}
	cctx, cancel := context.WithTimeout(counter.WithOp(ctx, op), budget)
	defer cancel()
	err := fn(cctx, rdb)
	if err != nil && ctx.Err() == nil && outage(err) {
		m.fail(rdb, err)
	}
	return err
}

// outage tells whether err means Redis cannot serve (as opposed to a reply
// that is an answer, like a nil or a type error).
func outage(err error) bool {
	if errors.Is(err, redis.Nil) {
		return false
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "BUSY", "NOAUTH", "WRONGPASS"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		// Upstash's quota and connection limits.
		return strings.Contains(msg, "max requests limit") || strings.Contains(msg, "max concurrent connections")
	}
	return true
}

// Mode is "redis" while the breaker is closed, else "memory".
func (m *manager) Mode() string {
	if rdb, _ := m.client(); rdb != nil {
		return "redis"
	}
	return "memory"
}

// Health PINGs Redis (TASK-004) when the breaker is closed; when it is open
// it reports the last probe's error without waiting, so it reflects the
// state within one probe interval.
func (m *manager) Health(ctx context.Context) impl.Health {
	if !m.cfg.Enabled {
		return impl.Health{Status: "disabled", Mode: "memory"}
	}
	rdb, _ := m.client()
	if rdb == nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		return impl.Health{Status: "unavailable", Error: m.lastErr, Mode: "memory"}
	}
	lat, err := m.ping(ctx, rdb)
	if err != nil {
		return impl.Health{Status: "unhealthy", Error: err.Error(), Mode: m.Mode()}
	}
	return impl.Health{Status: "healthy", LatencyMS: float64(lat.Microseconds()) / 1000, Mode: "redis"}
}

// Info is the TASK-012 monitor: INFO fields, or {"status": "unavailable"}
// in memory mode.
func (m *manager) Info(ctx context.Context) map[string]any {
	rdb, _ := m.client()
	if rdb == nil {
		return map[string]any{"status": "unavailable"}
	}
	cctx, cancel := context.WithTimeout(counter.WithOp(ctx, "info"), m.io)
	defer cancel()
	return impl.RedisInfo(cctx, rdb)
}

// close stops the probe and every goroutine of the layer, then closes the
// client.
func (m *manager) close() error {
	close(m.stop)
	for _, f := range m.closers {
		f()
	}
	m.wg.Wait()
	m.mu.Lock()
	rdb := m.rdb
	m.rdb = nil
	m.mu.Unlock()
	if rdb != nil {
		return rdb.Close()
	}
	return nil
}
