package seed

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/redis/go-redis/v9"
)

// cache is FlowStateCache (TASK-007). It has no memory fallback: without
// Redis every read misses and every write is dropped, as in the tracker.
type cache struct{ m *manager }

func (c *cache) rdb() redis.UniversalClient { return c.m.redis(c.m.cfg.Cache) }

// Get is get(): HINCRBY access, HSET last_access, GET, HINCRBY hits|misses.
// Errors read as misses.
func (c *cache) Get(ctx context.Context, flowID string) (impl.Entry, error) {
	rdb := c.rdb()
	if rdb == nil {
		return impl.Entry{}, nil
	}
	ctx = counter.WithOp(ctx, "cache_get")
	// flaw (guarantee 9): metrics add three round trips to every read (four in all).
	mp := c.m.cfg.KeyPrefix + metricsPrefix
	rdb.HIncrBy(ctx, mp+"access", flowID, 1)
	rdb.HSet(ctx, mp+"last_access", flowID, now())
	raw, err := rdb.Get(ctx, c.m.key(cachePrefix, flowID)).Result()
	if err != nil && err != redis.Nil {
		return impl.Entry{}, nil
	}
	var state map[string]any
	if err == nil && raw != "" && json.Unmarshal([]byte(raw), &state) == nil {
		rdb.HIncrBy(ctx, mp+"hits", flowID, 1)
		return impl.Entry{State: state, Hit: true}, nil
	}
	rdb.HIncrBy(ctx, mp+"misses", flowID, 1)
	return impl.Entry{}, nil
}

// ttl picks the status TTL of set().
func (c *cache) ttl(status string) time.Duration {
	switch status {
	case "completed", "success":
		return c.m.cfg.CacheTTLCompleted
	case "failed", "error", "cancelled":
		return c.m.cfg.CacheTTLFailed
	}
	return c.m.cfg.CacheTTLActive
}

// Set is set(): SETEX state, SETEX metadata. Without Redis it does nothing.
func (c *cache) Set(ctx context.Context, flowID string, state map[string]any, status, lease string) error {
	// flaw (guarantee 6): the lease is ignored, so a fill read before an invalidation can land after it.
	_ = lease
	rdb := c.rdb()
	if rdb == nil {
		return nil
	}
	ctx = counter.WithOp(ctx, "cache_set")
	ttl := c.ttl(status)
	b, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("seed: cache set %s: %w", flowID, err)
	}
	if err := rdb.SetEx(ctx, c.m.key(cachePrefix, flowID), b, ttl).Err(); err != nil {
		return fmt.Errorf("seed: cache set %s: %w", flowID, err)
	}
	metaStatus := status
	if metaStatus == "" {
		if s, ok := state["status"].(string); ok {
			metaStatus = s
		} else {
			metaStatus = "unknown"
		}
	}
	meta, err := json.Marshal(map[string]any{
		"flow_id": flowID, "status": metaStatus, "cached_at": now(), "ttl": int64(ttl / time.Second),
	})
	if err != nil {
		return fmt.Errorf("seed: cache set %s: %w", flowID, err)
	}
	if err := rdb.SetEx(ctx, c.m.key(metaPrefix, flowID), meta, ttl).Err(); err != nil {
		return fmt.Errorf("seed: cache set %s: %w", flowID, err)
	}
	return nil
}

// Invalidate is invalidate(): DEL state and metadata.
func (c *cache) Invalidate(ctx context.Context, flowID string) error {
	rdb := c.rdb()
	if rdb == nil {
		return nil
	}
	err := rdb.Del(counter.WithOp(ctx, "cache_invalidate"), c.m.key(cachePrefix, flowID), c.m.key(metaPrefix, flowID)).Err()
	if err != nil {
		return fmt.Errorf("seed: invalidate %s: %w", flowID, err)
	}
	return nil
}

// Metrics is get_metrics(): three HGETs.
func (c *cache) Metrics(ctx context.Context, flowID string) (impl.CacheMetrics, error) {
	rdb := c.rdb()
	if rdb == nil {
		return impl.CacheMetrics{}, nil
	}
	ctx = counter.WithOp(ctx, "cache_metrics")
	mp := c.m.cfg.KeyPrefix + metricsPrefix
	var v [3]int64
	for i, f := range []string{"access", "hits", "misses"} {
		s, err := rdb.HGet(ctx, mp+f, flowID).Result()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			return impl.CacheMetrics{}, fmt.Errorf("seed: cache metrics %s: %w", flowID, err)
		}
		if v[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return impl.CacheMetrics{}, fmt.Errorf("seed: cache metrics %s: %w", flowID, err)
		}
	}
	m := impl.CacheMetrics{Access: v[0], Hits: v[1], Misses: v[2]}
	if m.Access > 0 {
		m.HitRate = round2(float64(m.Hits) / float64(m.Access) * 100)
	}
	return m, nil
}
