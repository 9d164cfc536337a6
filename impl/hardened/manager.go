package hardened

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// errOffline is what a Redis call returns while the breaker is open (memory
// mode): Redis is not touched at all.
var errOffline = errors.New("hardened: redis unavailable (memory mode)")

// manager is the connection manager (TASK-003/004/012) with a breaker: it
// holds one go-redis client while Redis answers and none while it does not.
//
// One failed or over-budget call is weak evidence (a GC pause or a CPU
// starved for a moment makes every call in flight miss its budget at once),
// so it only fails that call — the caller falls back for it — and starts a
// verification. The breaker opens (the client is closed, so nothing waits
// on a dead pool) on strong evidence only:
//   - the verification fails: PING does not answer within m.io, twice in a
//     row for a timeout, and no call succeeded meanwhile; or
//   - failures persist: at least breakerFailures calls failed in a row,
//     with no success in between, over at least breakerWindow (Redis
//     answers PING but every call misses its budget).
//
// A background probe dials a fresh client every ProbeInterval and closes
// the breaker when PING answers. Each client that comes up gets a new
// generation number; components hear of every transition through listeners
// run one at a time by the probe goroutine (or by New for the first
// connect), and of every failed call that left work behind through their
// own retry loops.
type manager struct {
	cfg impl.Config
	// io bounds socket reads and writes of the longer, unbudgeted calls
	// (history, replay, health, subscribe); budgeted calls carry a
	// shorter context deadline.
	io time.Duration

	// window is how long failures must persist to open the breaker
	// without a failed verification (see breakerWindow).
	window time.Duration

	// cur is the current client and its generation (nil while the
	// breaker is open): read without a lock on every call, written under
	// mu.
	cur atomic.Pointer[current]
	// wins counts successful calls, without a lock: a failure streak or a
	// verification that sees it move knows that Redis answered meanwhile.
	wins atomic.Uint64
	// clock estimates Redis's clock for the fences (fence.go).
	clock serverClock

	mu      sync.Mutex
	gen     uint64
	lastErr string
	latency time.Duration
	pinged  time.Time
	// streak counts the calls that failed in a row (wins stayed at
	// streakWins), the first of them at streakFrom; verifying is set while
	// a verification runs.
	streak     int
	streakFrom time.Time
	streakWins uint64
	verifying  bool

	onUp   []func(rdb redis.UniversalClient, gen uint64)
	onDown []func()
	// onMiss run when a probe finds Redis unreachable (see missed).
	onMiss  []func()
	closers []func()
	// finals run at Close once background work stopped, while the client
	// (if any) is still open: what a component must write before the
	// layer goes. Their errors are Close's.
	finals []func() error
	// notified is the generation the listeners last heard as up (0: down).
	notified uint64

	// network and addrs are where the probe checks that Redis listens
	// (at one of them) before it builds a client.
	network string
	addrs   []string

	wake chan struct{}
	// switched is set when the sentinels announced a new primary: the
	// next notify replays down and up (failover.go).
	switched atomic.Bool
	// reloading is set while reload loads the scripts.
	reloading atomic.Bool
	stop      chan struct{}
	// ctx ends when the layer closes: background work runs under it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Breaker thresholds: the breaker opens on failures alone once at least
// breakerFailures calls failed in a row over at least the window (the
// larger of breakerWindow and ten budgets).
const (
	breakerFailures = 5
	breakerWindow   = 500 * time.Millisecond
)

func newManager(cfg impl.Config) *manager {
	ctx, cancel := context.WithCancel(context.Background())
	budget := max(cfg.PublishBudget, cfg.CallBudget)
	return &manager{
		cfg:    cfg,
		io:     max(2*budget, 250*time.Millisecond),
		window: max(breakerWindow, 10*budget),
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
	}
}

// listen adds transition listeners; call before start.
func (m *manager) listen(up func(rdb redis.UniversalClient, gen uint64), down func()) {
	if up != nil {
		m.onUp = append(m.onUp, up)
	}
	if down != nil {
		m.onDown = append(m.onDown, down)
	}
}

// missed adds a listener the probe runs each time it finds Redis
// unreachable while the breaker is open; call before start.
func (m *manager) missed(f func()) { m.onMiss = append(m.onMiss, f) }

// beforeClose adds a final step of Close (see finals); call before start.
func (m *manager) beforeClose(f func() error) { m.finals = append(m.finals, f) }

// start makes the first connection attempt (bounded by ConnectTimeout; a
// failure leaves the layer in memory mode), tells the listeners, and starts
// the probe. Only a URL that does not parse is an error.
func (m *manager) start(ctx context.Context) error {
	if !m.cfg.Enabled {
		return nil
	}
	if impl.IsFailoverURL(m.cfg.URL) {
		// The probe dials the first sentinel: it answers while a
		// failover moves the primary.
		fo, err := redis.ParseFailoverURL(m.cfg.URL)
		if err != nil {
			_, err = m.newClient() // the config error, password redacted
			return err
		}
		m.network, m.addrs = "tcp", fo.SentinelAddrs[:1]
		m.startWatch(ctx)
	} else if impl.IsClusterURL(m.cfg.URL) {
		// The probe dials the seed nodes in turn: a cluster serves while
		// any of them is up.
		co, err := redis.ParseClusterURL(m.cfg.URL)
		if err != nil {
			_, err = m.newClient() // the config error, password redacted
			return err
		}
		if m.cfg.Acks() > 0 {
			return exitcode.Configf("REDIS_ACK_REPLICAS=%d on a cluster: durable acknowledgement (WAIT) is not offered there (WAIT would have to follow each write to its shard's primary)", m.cfg.Acks())
		}
		m.network, m.addrs = "tcp", co.Addrs
	} else {
		opt, err := redis.ParseURL(m.cfg.URL)
		if err != nil {
			_, err = m.newClient() // the config error, password redacted
			return err
		}
		m.network, m.addrs = opt.Network, []string{opt.Addr}
	}
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
func (m *manager) newClient() (redis.UniversalClient, error) {
	return impl.NewUniversalClient(m.cfg, func(o *redis.Options) {
		o.MaxRetries = -1
		o.DialerRetries = 1
		o.ReadTimeout = m.io
		o.WriteTimeout = m.io
		o.PoolTimeout = max(m.cfg.PublishBudget, m.cfg.CallBudget)
		o.MinIdleConns = idleConns(m.cfg)
		o.DisableIdentity = true
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	})
}

// idleConns is how many connections the pool keeps dialled ahead, and how
// many publishes may make their own round trip past coalesceWait: six.
// With the flushers' pipelines and the Pub/Sub connection an idle
// instance holds about 11 connections (harness cost), where a fifth of the
// pool (10) held 15 to 19, more than half of a 30-connection plan. Two
// were too few on remote-sim: 32 workers reading the cache at 100/s (the
// gates' bench load) dialled cold TLS connections within the 50 ms budget
// and fell back (60 errors in one of three runs, none with six).
func idleConns(cfg impl.Config) int { return min(6, max(1, cfg.PoolSize/5)) }

// connect PINGs a fresh client and loads the scripts; on success it
// becomes the current client, else it is closed.
func (m *manager) connect(ctx context.Context, rdb redis.UniversalClient, timeout time.Duration) {
	cctx, cancel := context.WithTimeout(counter.WithOp(ctx, "probe"), timeout)
	defer cancel()
	start := time.Now()
	err := rdb.Ping(cctx).Err()
	lat := time.Since(start)
	if err == nil {
		err = loadScripts(cctx, rdb)
	}
	if err == nil {
		warm(cctx, rdb, idleConns(m.cfg))
	}
	if err != nil {
		// Closing may wait on the network: never under m.mu.
		rdb.Close()
		m.mu.Lock()
		m.lastErr = err.Error()
		m.mu.Unlock()
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastErr, m.latency, m.pinged = "", lat, time.Now()
	m.streak, m.verifying = 0, false
	m.gen++
	m.cur.Store(&current{rdb, m.gen})
}

// warm readies the pool's idle connections before the client serves
// budgeted calls: go-redis dials them ahead (TCP and TLS) but sends their
// HELLO on first use, one more round trip that a call on a remote target
// would otherwise pay within its budget. Pipelines (the coalesced
// publishes) draw from go-redis's separate pipeline pool, which never
// dials ahead: one pipeline per flusher, all at once, dials and readies
// as many of its connections. Best effort: a PING that fails here only
// leaves its connection to be readied on first use.
func warm(ctx context.Context, rdb redis.UniversalClient, idle int) {
	var wg sync.WaitGroup
	for range idle {
		wg.Go(func() { rdb.Ping(ctx) })
	}
	for range flushers {
		wg.Go(func() {
			rdb.Pipelined(ctx, func(p redis.Pipeliner) error { return p.Ping(ctx).Err() })
		})
	}
	wg.Wait()
}

// current is a client that is up and its generation.
type current struct {
	rdb redis.UniversalClient
	gen uint64
}

// client returns the current client and its generation, or nil in memory
// mode.
func (m *manager) client() (redis.UniversalClient, uint64) {
	if c := m.cur.Load(); c != nil {
		return c.rdb, c.gen
	}
	return nil, 0
}

// rdb is the current client, or nil.
func (m *manager) rdb() redis.UniversalClient {
	rdb, _ := m.client()
	return rdb
}

// succeeded ends the failure streak: one atomic add, no lock.
func (m *manager) succeeded() { m.wins.Add(1) }

// failed records a call on rdb that failed like an outage. It opens the
// breaker when failures persisted over the window, else it starts a
// verification unless one runs.
func (m *manager) failed(rdb redis.UniversalClient, err error) {
	m.mu.Lock()
	if m.rdb() != rdb || rdb == nil {
		m.mu.Unlock()
		return
	}
	now := time.Now()
	wins := m.wins.Load()
	if m.streak == 0 || wins != m.streakWins {
		m.streak, m.streakFrom, m.streakWins = 0, now, wins
	}
	m.streak++
	persisted := m.streak >= breakerFailures && now.Sub(m.streakFrom) >= m.window
	verify := !persisted && !m.verifying
	if verify {
		m.verifying = true
	}
	m.mu.Unlock()
	switch {
	case persisted:
		m.fail(rdb, fmt.Errorf("%d calls failed in a row over %s: %w", breakerFailures, m.window, err))
	case verify:
		m.goroutine(func() { m.verify(rdb, wins) })
	}
}

// verify PINGs rdb after a failed call: a second time if the first timed
// out (a starved process misses deadlines it would otherwise meet). It
// opens the breaker when PING failed and no call succeeded since the
// failure.
func (m *manager) verify(rdb redis.UniversalClient, wins uint64) {
	var err error
	for range 2 {
		ctx, cancel := context.WithTimeout(counter.WithOp(m.ctx, "probe"), m.io)
		err = rdb.Ping(ctx).Err()
		cancel()
		if err == nil || m.ctx.Err() != nil || !timeout(err) {
			break
		}
	}
	answered := m.wins.Load() != wins
	m.mu.Lock()
	m.verifying = false
	if err == nil && m.rdb() == rdb {
		m.pinged = time.Now()
	}
	m.mu.Unlock()
	if err != nil && !answered && m.ctx.Err() == nil {
		m.fail(rdb, fmt.Errorf("verification: %w", err))
	}
}

// timeout tells whether err is a deadline that passed (as opposed to an
// answer or a refused, reset or closed connection).
func timeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrPoolTimeout) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// fail opens the breaker if rdb is still the current client.
func (m *manager) fail(rdb redis.UniversalClient, err error) {
	m.mu.Lock()
	if m.rdb() != rdb || rdb == nil {
		m.mu.Unlock()
		return
	}
	m.cur.Store(nil)
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
	if m.switched.Swap(false) && m.notified != 0 {
		m.notified = 0
		m.runDown()
	}
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
			if m.cur.Load() == nil {
				for _, f := range m.onMiss {
					f()
				}
			}
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
	var err error
	for _, addr := range m.addrs {
		var c net.Conn
		if c, err = d.DialContext(ctx, m.network, addr); err == nil {
			c.Close()
			break
		}
	}
	if err != nil {
		m.mu.Lock()
		m.lastErr = err.Error()
		m.mu.Unlock()
		return
	}
	if rdb, err := m.newClient(); err == nil {
		m.connect(ctx, rdb, timeout)
	}
}

// ping measures one PING on rdb; a failure is a failed call (see failed).
func (m *manager) ping(ctx context.Context, rdb redis.UniversalClient) (time.Duration, error) {
	cctx, cancel := context.WithTimeout(counter.WithOp(ctx, "probe"), m.io)
	defer cancel()
	start := time.Now()
	err := rdb.Ping(cctx).Err()
	lat := time.Since(start)
	if err != nil {
		if ctx.Err() == nil {
			m.failed(rdb, err)
		}
		return lat, err
	}
	m.succeeded()
	m.mu.Lock()
	m.latency, m.pinged = lat, time.Now()
	m.mu.Unlock()
	return lat, nil
}

// call runs fn against the current client under a budget, tagging its
// traffic op. In memory mode it returns errOffline without touching Redis.
// An outage-like failure (network error, timeout, budget exceeded, server
// loading or refusing) is returned for the caller to fall back on, and
// counts as evidence for the breaker (see failed); a caller whose own
// context ended adds none.
func (m *manager) call(ctx context.Context, op string, budget time.Duration, fn func(ctx context.Context, rdb redis.UniversalClient) error) error {
	rdb, _ := m.client()
	if rdb == nil {
		return errOffline
	}
	cctx, cancel := context.WithTimeout(counter.WithOp(ctx, op), budget)
	defer cancel()
	err := fn(cctx, rdb)
	switch {
	case err == nil || !outage(err) || moving(err):
		m.succeeded()
	case ctx.Err() == nil:
		m.failed(rdb, err)
	}
	if isNoScript(err) {
		m.reload(rdb)
	}
	return err
}

// reload loads the scripts on rdb again, in the background and one load
// at a time, after a call met NOSCRIPT: the server's script cache was
// emptied under the layer (SCRIPT FLUSH, or on a cluster a replica that
// a failover promoted after its cache went with a full
// resynchronisation). The calls that use EVALSHA in a pipeline (queued
// invalidations, registry resync, replay) then find them on their next
// pass.
func (m *manager) reload(rdb redis.UniversalClient) {
	if !m.reloading.CompareAndSwap(false, true) {
		return
	}
	m.goroutine(func() {
		defer m.reloading.Store(false)
		ctx, cancel := context.WithTimeout(counter.WithOp(m.ctx, "probe"), m.io)
		defer cancel()
		loadScripts(ctx, rdb)
	})
}

// moving tells whether err is a cluster's answer that the call's keys are
// on the move: TRYAGAIN (split between two primaries while their slot
// moves), or MOVED or ASK passed on when the client's redirects ran out
// (a failover or a migration in flight). The caller falls back (it is an
// outage for these keys while it lasts), but Redis answered: no evidence
// for the breaker, which would otherwise take every other slot's traffic
// to memory too.
func moving(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	for _, p := range []string{"TRYAGAIN", "MOVED ", "ASK "} {
		if strings.HasPrefix(re.Error(), p) {
			return true
		}
	}
	return false
}

// outage tells whether err means Redis cannot serve (as opposed to a reply
// that is an answer, like a nil or a type error).
func outage(err error) bool {
	if errors.Is(err, redis.Nil) {
		return false
	}
	var re redis.Error
	if errors.As(err, &re) {
		return outageReply(re.Error())
	}
	return true
}

// outageReply tells whether an error reply from Redis (also one a script
// caught with pcall) means the server cannot serve now, rather than that
// it refuses the command: loading, read-only (a replica: the primary moved
// in a failover), no primary, busy, not logged in, or on a cluster a
// slot without a primary (CLUSTERDOWN) or on the move (TRYAGAIN, MOVED,
// ASK: see moving).
func outageReply(msg string) bool {
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "BUSY", "NOAUTH", "WRONGPASS", "CLUSTERDOWN", "TRYAGAIN", "MOVED ", "ASK "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	// A connection Redis did not let log in gets NOAUTH for a short
	// command and this for a longer one (a publish script's); Upstash's
	// quota and connection limits.
	return strings.HasPrefix(msg, "ERR Protocol error: unauthenticated") ||
		strings.Contains(msg, "max requests limit") || strings.Contains(msg, "max concurrent connections")
}

// Mode is "redis" while the breaker is closed, else "memory".
func (m *manager) Mode() string {
	if rdb, _ := m.client(); rdb != nil {
		return impl.ModeRedis
	}
	return impl.ModeMemory
}

// Health PINGs Redis (TASK-004) when the breaker is closed; when it is open
// it reports the last probe's error without waiting, so it reflects the
// state within one probe interval.
func (m *manager) Health(ctx context.Context) impl.Health {
	if !m.cfg.Enabled {
		return impl.Health{Status: "disabled", Mode: impl.ModeMemory}
	}
	rdb, _ := m.client()
	if rdb == nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		return impl.Health{Status: "unavailable", Error: m.lastErr, Mode: impl.ModeMemory}
	}
	lat, err := m.ping(ctx, rdb)
	if err != nil {
		return impl.Health{Status: "unhealthy", Error: err.Error(), Mode: m.Mode()}
	}
	return impl.Health{Status: "healthy", LatencyMS: float64(lat.Microseconds()) / 1000, Mode: impl.ModeRedis}
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

// close stops the probe and every goroutine of the layer, runs the final
// steps (the bus writes its outbox, the cache gives up its membership),
// then closes the client.
func (m *manager) close() error {
	close(m.stop)
	m.cancel()
	for _, f := range m.closers {
		f()
	}
	m.wg.Wait()
	var errs []error
	for _, f := range m.finals {
		errs = append(errs, f())
	}
	// A final step's failed call may have started a verification or a
	// pool close.
	m.wg.Wait()
	m.mu.Lock()
	rdb := m.rdb()
	m.cur.Store(nil)
	m.mu.Unlock()
	if rdb != nil {
		errs = append(errs, rdb.Close())
	}
	return errors.Join(errs...)
}
