package hardened

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/redis/go-redis/v9"
)

// ErrFillRefused is returned by Set when its lease is stale: the flow was
// invalidated after the Get that issued the lease, so the state being
// filled may be older than the last invalidation.
var ErrFillRefused = impl.ErrFillRefused

// ErrInvalidateDeferred is returned by Invalidate when Redis cannot be
// reached: the invalidation is queued and replayed when Redis is back
// (this instance serves the flow as a miss meanwhile), but until then
// another instance may serve the state it was meant to drop, so it is not
// acknowledged. (An instance cannot know it is alone: one that joined
// after its last lease renewal, up to a third of a lease ago, is unknown
// to it.)
var ErrInvalidateDeferred = impl.ErrInvalidateDeferred

// offlineLease is the lease of a miss served without Redis: no fill can
// present it successfully, since no generation ever equals it.
const offlineLease = "offline"

// metricsFlushInterval is how often hit/miss counts are flushed to Redis.
const metricsFlushInterval = time.Second

// Cache is the hardened flow-state cache (TASK-007).
//
// Get is one MGET of the state and the flow's generation (one round trip,
// one command): a hit returns the state, a miss returns the generation as
// the lease. Set is one script call that stores state and metadata with the
// status TTL only if the lease still equals the generation; Invalidate is
// one script call that deletes both and increments the generation. Hits and
// misses are counted in memory and flushed in batches, never on the read
// path. While Redis is unreachable Get misses (a cached value could be
// stale), fills are dropped and invalidations are queued; when Redis
// returns, the queued invalidations are replayed before the cache serves
// again. An invalidation that fails while the breaker stays closed is
// queued the same way, and its flow is served as above (miss, fill dropped)
// until it is replayed. With the Redis cache off (REDIS_ENABLED=false, the
// rollback) it serves no hit at all: every read is a miss with a lease and
// nothing is kept, since no instance can hear another's invalidations and
// a copy kept in one instance's memory would be served after another
// instance invalidated it (a rollback costs the database every read, not
// correctness). States are cached per cache epoch, so that a rollback to
// REDIS_ENABLED=false cannot leave states in Redis that later reads trust
// (see leaseScript): the cache serves from Redis while this instance holds
// a live membership in the current epoch.
type Cache struct {
	m     *manager
	k     keys
	redis bool // Enabled && Cache

	mu    sync.Mutex
	ready uint64 // client generation whose queued invalidations are replayed
	// pending are the invalidations waiting for Redis, each with the
	// number of the latest one queued (seq).
	pending map[string]uint64
	seq     uint64
	stats   map[string]*flowStats
	memGen  map[string]int64
	// epoch is the cache epoch this instance serves in ("": none yet),
	// while its membership is leased, until leaseUntil; renewed is when
	// the lease was last renewed, joined whether it ever was, used when
	// the cache was last called (an unused cache holds no membership).
	epoch      string
	leaseUntil time.Time
	renewed    time.Time
	used       time.Time
	joined     bool

	wake     chan struct{} // wakes replayLoop
	renewing chan struct{} // held by the renewal in flight (see renew)
}

type flowStats struct{ hits, misses, flushHits, flushMisses int64 }

func newCache(m *manager, k keys) *Cache {
	c := &Cache{m: m, k: k, redis: m.cfg.Enabled && m.cfg.Cache,
		pending: map[string]uint64{}, stats: map[string]*flowStats{},
		memGen: map[string]int64{}, wake: make(chan struct{}, 1),
		renewing: make(chan struct{}, 1)}
	if c.redis {
		m.listen(c.restore, nil)
		m.beforeClose(c.leave)
		m.goroutine(c.flushLoop)
		m.goroutine(c.replayLoop)
	}
	return c
}

// ttl is the TTL of a state with this status (TASK-007).
func (c *Cache) ttl(status string) time.Duration {
	switch status {
	case "completed", "success":
		return c.m.cfg.CacheTTLCompleted
	case "failed", "error", "cancelled":
		return c.m.cfg.CacheTTLFailed
	}
	return c.m.cfg.CacheTTLActive
}

// genTTL keeps a generation at least as long as any state it guards.
func (c *Cache) genTTL() time.Duration {
	return max(c.m.cfg.CacheTTLActive, c.m.cfg.CacheTTLCompleted, c.m.cfg.CacheTTLFailed)
}

func (c *Cache) count(flow string, hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats[flow]
	if s == nil {
		s = &flowStats{}
		c.stats[flow] = s
	}
	if hit {
		s.hits++
	} else {
		s.misses++
	}
}

// serving returns the epoch in which the cache may use Redis for the flow:
// breaker closed, the invalidations queued during the outage replayed,
// none of the flow's waiting, and this instance's membership in the epoch
// leased. ok is false when it may not. A cache holds no membership before
// its first use, nor once unused for a lease: the call that finds none
// takes it, within CallBudget (one more round trip, once).
func (c *Cache) serving(ctx context.Context, flowID string) (epoch string, ok bool) {
	rdb, gen := c.m.client()
	now := time.Now()
	c.mu.Lock()
	c.used = now
	_, waiting := c.pending[flowID]
	ready := rdb != nil && c.ready == gen && !waiting
	epoch, leased := c.epoch, now.Before(c.leaseUntil)
	c.mu.Unlock()
	switch {
	case !ready:
		return "", false
	case epoch != "" && leased:
		return epoch, true
	}
	rctx, cancel := context.WithTimeout(ctx, c.m.cfg.CallBudget)
	defer cancel()
	if c.renew(rctx, false) != nil {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch, c.epoch != ""
}

// Get reads the flow's state within CallBudget.
func (c *Cache) Get(ctx context.Context, flowID string) (impl.Entry, error) {
	ent, err := c.get(ctx, flowID)
	if err == nil {
		c.count(flowID, ent.Hit)
	}
	return ent, err
}

func (c *Cache) get(ctx context.Context, flowID string) (impl.Entry, error) {
	if !c.redis {
		// No hit without Redis: another instance's invalidation cannot
		// reach this one's memory (see Cache).
		c.mu.Lock()
		defer c.mu.Unlock()
		return impl.Entry{Lease: strconv.FormatInt(c.memGen[flowID], 10)}, nil
	}
	epoch, ok := c.serving(ctx, flowID)
	if !ok {
		return impl.Entry{Lease: offlineLease}, nil
	}
	var vals []any
	err := c.m.call(ctx, "cache_get", c.m.cfg.CallBudget, func(ctx context.Context, rdb redis.UniversalClient) error {
		var err error
		vals, err = rdb.MGet(ctx, c.k.state(flowID, epoch), c.k.gen(flowID)).Result()
		return err
	})
	if err != nil {
		if errors.Is(err, errOffline) || outage(err) {
			return impl.Entry{Lease: offlineLease}, nil
		}
		return impl.Entry{}, fmt.Errorf("hardened: cache get %s: %w", flowID, err)
	}
	lease := "0"
	if g, ok := vals[1].(string); ok {
		lease = g
	}
	// A state filled at another generation is one an invalidation since
	// dropped, in another epoch: two instances serve two epochs for a
	// while when a failover lost the epoch key and one of them renewed
	// first (explore's stale_read-7b643316). A miss then.
	if s, ok := vals[0].(string); ok {
		if g, js, ok := strings.Cut(s, "\n"); ok && g == lease {
			return decodeState(flowID, []byte(js))
		}
	}
	return impl.Entry{Lease: lease}, nil
}

func decodeState(flowID string, b []byte) (impl.Entry, error) {
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		return impl.Entry{}, fmt.Errorf("hardened: cached state of %s: %w", flowID, err)
	}
	return impl.Entry{State: st, Hit: true}, nil
}

// Set caches state with its status TTL; a non-empty lease that is stale
// makes it ErrFillRefused. While Redis is unreachable the fill is dropped.
func (c *Cache) Set(ctx context.Context, flowID string, state map[string]any, status, lease string) error {
	js, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("hardened: cache set %s: %w", flowID, err)
	}
	if !c.redis {
		// Nothing is kept (Get serves no hit without Redis); a stale
		// lease is still refused, as with Redis.
		c.mu.Lock()
		defer c.mu.Unlock()
		if lease != "" && lease != strconv.FormatInt(c.memGen[flowID], 10) {
			return ErrFillRefused
		}
		return nil
	}
	ttl := c.ttl(status)
	epoch, ok := c.serving(ctx, flowID)
	if !ok {
		return nil
	}
	metaStatus := status
	if metaStatus == "" {
		metaStatus, _ = state["status"].(string)
	}
	if metaStatus == "" {
		metaStatus = "unknown"
	}
	meta, _ := json.Marshal(map[string]any{"flow_id": flowID, "status": metaStatus,
		"cached_at": time.Now().UTC().Format(time.RFC3339Nano), "ttl": int64(ttl.Seconds())})
	var stored int
	err = c.m.call(ctx, "cache_set", c.m.cfg.CallBudget, func(ctx context.Context, rdb redis.UniversalClient) error {
		var err error
		stored, err = fillScript.Run(ctx, rdb, []string{c.k.state(flowID, epoch), c.k.meta(flowID), c.k.gen(flowID)},
			lease, string(js), string(meta), ttl.Milliseconds()).Int()
		return err
	})
	switch {
	case err == nil && stored == 0:
		return ErrFillRefused
	case err == nil, errors.Is(err, errOffline), outage(err):
		return nil
	}
	return fmt.Errorf("hardened: cache set %s: %w", flowID, err)
}

// Invalidate drops the flow's state and refuses fills leased before it.
// While Redis is unreachable it is queued and replayed before the cache
// serves from Redis again.
func (c *Cache) Invalidate(ctx context.Context, flowID string) error {
	if !c.redis {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.memGen[flowID]++
		return nil
	}
	if epoch, ok := c.serving(ctx, flowID); ok {
		err := c.m.call(ctx, "cache_invalidate", c.m.cfg.CallBudget, func(ctx context.Context, rdb redis.UniversalClient) error {
			if c.m.cfg.Acks() == 0 {
				return c.invalidate(ctx, rdb, flowID, epoch).Err()
			}
			return c.durably(ctx, rdb, []string{flowID}, epoch)
		})
		if err == nil {
			return nil
		}
		if !errors.Is(err, errOffline) && !outage(err) {
			return fmt.Errorf("hardened: cache invalidate %s: %w", flowID, err)
		}
	}
	c.mu.Lock()
	c.seq++
	c.pending[flowID] = c.seq
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return fmt.Errorf("hardened: cache invalidate %s: %w", flowID, ErrInvalidateDeferred)
}

// durably invalidates flows in one pipelined round trip, followed by WAIT
// when durable acknowledgement is on (impl.Config.AckReplicas): an
// invalidation no replica confirmed is not complete (errNotReplicated, an
// outage: the caller queues it, and the flow is not served from Redis
// until it is written again and confirmed). A primary that a failover or
// a partition replaced would otherwise take with it an invalidation only
// it had, and every instance would read the invalidated state from the
// new primary.
// A script cache emptied under the layer (NOSCRIPT: the replica a
// failover promoted) costs one more pass with EVAL.
func (c *Cache) durably(ctx context.Context, rdb redis.UniversalClient, flows []string, epoch string) error {
	var w *redis.Cmd
	var err error
	for _, eval := range []func(context.Context, redis.Scripter, []string, ...any) *redis.Cmd{invalidateScript.EvalSha, invalidateScript.Eval} {
		_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, f := range flows {
				eval(ctx, p, c.invalidateKeys(f, epoch), c.genTTL().Milliseconds())
			}
			w = c.m.waitAcks(ctx, p)
			return nil
		})
		if !isNoScript(err) {
			break
		}
	}
	if err != nil {
		return err
	}
	return c.m.replicated(w)
}

// invalidate runs invalidateScript on its own: EVALSHA, then EVAL if the
// server answers NOSCRIPT (Run).
func (c *Cache) invalidate(ctx context.Context, s redis.Scripter, flowID, epoch string) *redis.Cmd {
	return invalidateScript.Run(ctx, s, c.invalidateKeys(flowID, epoch), c.genTTL().Milliseconds())
}

// invalidateKeys are invalidateScript's keys for the flow.
func (c *Cache) invalidateKeys(flowID, epoch string) []string {
	return []string{c.k.state(flowID, epoch), c.k.meta(flowID), c.k.gen(flowID)}
}

// restore renews (or takes) the membership of a cache that was used,
// replays the invalidations queued while Redis was unreachable, then lets
// the cache serve.
func (c *Cache) restore(_ redis.UniversalClient, gen uint64) {
	c.mu.Lock()
	used := !c.used.IsZero()
	c.mu.Unlock()
	if used && c.renew(c.m.ctx, true) != nil {
		return
	}
	if c.drain() {
		c.mu.Lock()
		c.ready = max(c.ready, gen)
		c.mu.Unlock()
	}
}

// drain replays the queued invalidations, one pipelined round trip per
// pass, and reports whether none is left. An invalidation queued again
// while its replay was in flight stays queued.
func (c *Cache) drain() bool {
	for {
		c.mu.Lock()
		queued, epoch := maps.Clone(c.pending), c.epoch
		c.mu.Unlock()
		if len(queued) == 0 {
			return true
		}
		if epoch == "" {
			return false
		}
		err := c.m.call(c.m.ctx, "cache_invalidate", c.m.io, func(ctx context.Context, rdb redis.UniversalClient) error {
			return c.durably(ctx, rdb, slices.Collect(maps.Keys(queued)), epoch)
		})
		if err != nil {
			return false
		}
		c.mu.Lock()
		for f, seq := range queued {
			if c.pending[f] == seq {
				delete(c.pending, f)
			}
		}
		c.mu.Unlock()
	}
}

// replayLoop replays invalidations that failed while the breaker stayed
// closed: when one is queued, and every ProbeInterval while any waits.
// (After an outage, restore replays them before the cache serves.) Every
// ProbeInterval it also renews the membership of a cache used within the
// lease once a third of the lease has passed, and retries a restore that
// failed.
func (c *Cache) replayLoop() {
	t := time.NewTicker(c.m.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-c.m.stop:
			return
		case <-c.wake:
		case <-t.C:
		}
		rdb, gen := c.m.client()
		if rdb == nil {
			continue
		}
		lease := c.lease()
		c.mu.Lock()
		restore := c.ready != gen
		renew := !restore && time.Since(c.used) < lease && (c.epoch == "" || time.Since(c.renewed) >= lease/3)
		due := !restore && len(c.pending) > 0
		c.mu.Unlock()
		switch {
		case restore:
			c.restore(rdb, gen)
		case renew:
			c.renew(c.m.ctx, true)
		}
		if due {
			c.drain()
		}
	}
}

// unflushed takes the counts not yet in Redis (all flows, or one).
func (c *Cache) unflushed(only string) map[string][2]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][2]int64{}
	for f, s := range c.stats {
		if only != "" && f != only {
			continue
		}
		if dh, dm := s.hits-s.flushHits, s.misses-s.flushMisses; dh != 0 || dm != 0 {
			out[f] = [2]int64{dh, dm}
			s.flushHits, s.flushMisses = s.hits, s.misses
		}
	}
	return out
}

// giveBack returns counts whose flush failed.
func (c *Cache) giveBack(d map[string][2]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for f, v := range d {
		c.stats[f].flushHits -= v[0]
		c.stats[f].flushMisses -= v[1]
	}
}

func (c *Cache) queueFlush(ctx context.Context, p redis.Pipeliner, d map[string][2]int64) {
	for f, v := range d {
		if v[0] != 0 {
			p.HIncrBy(ctx, c.k.metrics(), "hits:"+f, v[0])
		}
		if v[1] != 0 {
			p.HIncrBy(ctx, c.k.metrics(), "misses:"+f, v[1])
		}
	}
}

func (c *Cache) flushLoop() {
	t := time.NewTicker(metricsFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-c.m.stop:
			return
		case <-t.C:
		}
		d := c.unflushed("")
		if len(d) == 0 {
			continue
		}
		err := c.m.call(context.Background(), "cache_metrics", c.m.io, func(ctx context.Context, rdb redis.UniversalClient) error {
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				c.queueFlush(ctx, p, d)
				return nil
			})
			return err
		})
		if err != nil {
			c.giveBack(d)
		}
	}
}

// Metrics returns the flow's access metrics across instances: its unflushed
// counts and the HMGET of the totals in one round trip. In memory mode (or
// while Redis is unreachable) this instance's counts.
func (c *Cache) Metrics(ctx context.Context, flowID string) (impl.CacheMetrics, error) {
	if c.redis {
		d := c.unflushed(flowID)
		var vals []any
		err := c.m.call(ctx, "cache_metrics", c.m.io, func(ctx context.Context, rdb redis.UniversalClient) error {
			var get *redis.SliceCmd
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				c.queueFlush(ctx, p, d)
				get = p.HMGet(ctx, c.k.metrics(), "hits:"+flowID, "misses:"+flowID)
				return nil
			})
			vals = get.Val()
			return err
		})
		if err == nil {
			return metrics(atoi(vals[0]), atoi(vals[1])), nil
		}
		c.giveBack(d)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats[flowID]
	if s == nil {
		return metrics(0, 0), nil
	}
	return metrics(s.hits, s.misses), nil
}

func atoi(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func metrics(hits, misses int64) impl.CacheMetrics {
	m := impl.CacheMetrics{Access: hits + misses, Hits: hits, Misses: misses}
	if m.Access > 0 {
		m.HitRate = math.Round(float64(hits)/float64(m.Access)*10000) / 100
	}
	return m
}
