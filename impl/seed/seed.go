// Package seed is a faithful Go port of the tracker's Python layer
// (TASK-003 to TASK-008, TASK-012), flaws included: it is the baseline the
// harness measures. Each ported flaw carries a comment "flaw (guarantee N)"
// naming the DESIGN.md guarantee it breaks. Do not fix them here; the
// hardened profile is where they are fixed.
//
// Retries: the tracker's client sets retry_on_timeout and retry_on_error,
// which in redis-py means one immediate retry; the port sets MaxRetries 1 to
// match. go-redis retries inside its process hook, so the counting hook sees
// one round trip per logical command (exact on a healthy server; retries
// during a fault are not counted separately). Socket timeouts keep go-redis's
// 3 s defaults (redis-py's are unbounded, which would hang the harness) and a
// caller's context deadline also bounds each call.
package seed

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/redis/go-redis/v9"
)

// Key prefixes of the tracker, each prepended with Config.KeyPrefix.
const (
	streamPrefix   = "flow:events:"
	channelPrefix  = "flow:updates:"
	registryPrefix = "sse:connections:"
	cachePrefix    = "cache:flow:state:"
	metaPrefix     = "cache:flow:meta:"
	metricsPrefix  = "metrics:cache:"
)

// Profile is the name the seed registers under.
const Profile = "seed"

// New connects once (PING within cfg.ConnectTimeout) and builds the layer.
// A failed connection is not an error: the layer then runs in memory for
// its whole life (RedisManager.initialize returning False).
func New(ctx context.Context, cfg impl.Config) (*impl.Layer, error) {
	cfg = cfg.WithDefaults()
	m := &manager{cfg: cfg}
	if cfg.Enabled {
		// flaw (guarantee 1): no call budget; a blackholed call waits out the 3 s read timeout, retried once.
		rdb, err := impl.NewUniversalClient(cfg, func(o *redis.Options) { o.MaxRetries = 1 })
		if err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(counter.WithOp(ctx, "connect"), cfg.ConnectTimeout)
		err = rdb.Ping(pctx).Err()
		cancel()
		if err != nil {
			// flaw (guarantee 7): is_available is decided once here; the layer never switches to Redis later.
			rdb.Close()
		} else {
			m.rdb = rdb
		}
	}
	m.stop = make(chan struct{})
	bus := newBus(m)
	reg := newRegistry(m)
	l := &impl.Layer{
		Profile:  Profile,
		Manager:  m,
		Bus:      bus,
		Registry: reg,
		Cache:    &cache{m: m},
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		reg.cleanupLoop(m.stop)
	}()
	l.Close = m.close
	return l, nil
}

// manager is RedisManager plus RedisMonitor.
type manager struct {
	cfg impl.Config
	// rdb is nil when Redis is not available; fixed after New.
	rdb redis.UniversalClient

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func (m *manager) key(prefix, id string) string { return m.cfg.KeyPrefix + prefix + id }

// redis returns the client when component flag on is set and Redis was
// available at start-up, else nil (memory).
func (m *manager) redis(on bool) redis.UniversalClient {
	if !on {
		return nil
	}
	return m.rdb
}

func (m *manager) close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.stop)
		m.wg.Wait()
		if m.rdb != nil {
			err = m.rdb.Close()
		}
	})
	return err
}

// Mode is "redis" when the start-up PING succeeded, else "memory".
func (m *manager) Mode() string {
	if m.rdb != nil {
		return impl.ModeRedis
	}
	return impl.ModeMemory
}

// Health is the TASK-004 check: one PING and its latency.
func (m *manager) Health(ctx context.Context) impl.Health {
	switch {
	case !m.cfg.Enabled:
		return impl.Health{Status: "disabled", Mode: impl.ModeMemory}
	case m.rdb == nil:
		// flaw (guarantee 8): never re-checked, so it stays "unavailable" after Redis comes up.
		return impl.Health{Status: "unavailable", Mode: impl.ModeMemory}
	}
	start := time.Now()
	if err := m.rdb.Ping(counter.WithOp(ctx, "health")).Err(); err != nil {
		return impl.Health{Status: "unhealthy", Error: err.Error(), Mode: m.Mode()}
	}
	ms := float64(time.Since(start).Microseconds()) / 1000
	return impl.Health{Status: "healthy", LatencyMS: round2(ms), Mode: m.Mode()}
}

// Info is RedisMonitor.get_redis_info (TASK-012).
func (m *manager) Info(ctx context.Context) map[string]any {
	if m.rdb == nil {
		return map[string]any{"status": "unavailable"}
	}
	return impl.RedisInfo(counter.WithOp(ctx, "info"), m.rdb)
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// errNotFound is the tracker's falsy return for a connection that is not
// registered.
var errNotFound = errors.New("seed: connection not registered")
