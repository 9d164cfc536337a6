package hardened

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/redis/go-redis/v9"
)

// ErrNotRegistered is returned by Heartbeat for a connection that is not
// registered (never, or no longer: unregistered or cleaned up elsewhere).
var ErrNotRegistered = errors.New("hardened: connection not registered")

// Registry is the hardened SSE connection registry (TASK-006).
//
// A connection lives in its flow's ZSET scored by expiry (last heartbeat +
// RegistryTTL, ms) and in a global ZSET for Count and Cleanup. Register and
// Heartbeat are one script call each (both refresh the connection and its
// flow membership, and the flow keys' TTL); Lookup is one ZRANGEBYSCORE
// with a lower bound of now, so a connection whose heartbeats stopped is
// invisible from its expiry on, and Cleanup deletes it within one
// CleanupInterval. While Redis is unreachable the registry answers from
// the connections registered on this instance and re-registers the live
// ones (and replays unregisters) when Redis returns.
type Registry struct {
	m     *manager
	k     keys
	redis bool // Enabled && SSE

	mu    sync.Mutex
	local map[string]*localConn
	// gone are connections unregistered while Redis was unreachable.
	gone map[string]struct{}
}

type localConn struct {
	c    impl.Conn
	info string
	last time.Time
}

func newRegistry(m *manager, k keys) *Registry {
	r := &Registry{m: m, k: k, redis: m.cfg.Enabled && m.cfg.SSE,
		local: map[string]*localConn{}, gone: map[string]struct{}{}}
	if r.redis {
		m.listen(func(*redis.Client, uint64) { r.restore() }, nil)
	}
	m.goroutine(r.cleanupLoop)
	return r
}

// expiry is the score of a connection heartbeating now.
func (r *Registry) expiry(now time.Time) int64 { return now.Add(r.m.cfg.RegistryTTL).UnixMilli() }

// keyTTL outlives every member's expiry so a flow's keys vanish only after
// all its connections stopped.
func (r *Registry) keyTTL() int64 {
	return (r.m.cfg.RegistryTTL + r.m.cfg.CleanupInterval).Milliseconds()
}

func (r *Registry) registerArgs(lc *localConn, now time.Time) ([]string, []any) {
	return []string{r.k.live(), r.k.connFlow(), r.k.conns(lc.c.FlowID), r.k.connInfo(lc.c.FlowID)},
		[]any{lc.c.ID, lc.c.FlowID, r.expiry(now), lc.info, r.keyTTL()}
}

// Register records c here and, within CallBudget, in Redis.
func (r *Registry) Register(ctx context.Context, c impl.Conn) error {
	if c.ID == "" || c.FlowID == "" {
		return errors.New("hardened: register needs a connection id and a flow id")
	}
	now := time.Now()
	info, err := json.Marshal(map[string]any{
		"flow_id": c.FlowID, "user_id": c.UserID, "server_id": r.m.cfg.ServerID,
		"connected_at": now.UTC().Format(time.RFC3339Nano), "client_info": c.ClientInfo,
	})
	if err != nil {
		return fmt.Errorf("hardened: register %s: %w", c.ID, err)
	}
	lc := &localConn{c: c, info: string(info), last: now}
	r.mu.Lock()
	r.local[c.ID] = lc
	delete(r.gone, c.ID)
	r.mu.Unlock()
	if !r.redis {
		return nil
	}
	keys, args := r.registerArgs(lc, now)
	return r.answer(r.m.call(ctx, "reg_register", r.m.cfg.CallBudget, func(ctx context.Context, rdb *redis.Client) error {
		return registerScript.Run(ctx, rdb, keys, args...).Err()
	}))
}

// answer hides failures to reach Redis (the memory fallback answers) and
// returns the others.
func (r *Registry) answer(err error) error {
	if err == nil || errors.Is(err, errOffline) || outage(err) {
		return nil
	}
	return fmt.Errorf("hardened: registry: %w", err)
}

// Heartbeat refreshes the connection and its flow membership: one script
// call, no read-then-write.
func (r *Registry) Heartbeat(ctx context.Context, connID string) error {
	now := time.Now()
	r.mu.Lock()
	lc := r.local[connID]
	if lc != nil {
		lc.last = now
	}
	r.mu.Unlock()
	if !r.redis {
		if lc == nil {
			return ErrNotRegistered
		}
		return nil
	}
	var found bool
	err := r.m.call(ctx, "reg_heartbeat", r.m.cfg.CallBudget, func(ctx context.Context, rdb *redis.Client) error {
		if lc != nil {
			keys, args := r.registerArgs(lc, now)
			found = true
			return registerScript.Run(ctx, rdb, keys, args...).Err()
		}
		n, err := heartbeatScript.Run(ctx, rdb, []string{r.k.live(), r.k.connFlow()},
			connID, r.expiry(now), r.keyTTL(), r.k.prefix).Int()
		found = n == 1
		return err
	})
	if (err == nil && !found) || (errors.Is(err, errOffline) && lc == nil) {
		return ErrNotRegistered
	}
	return r.answer(err)
}

// Unregister removes the connection here and in Redis (or, while Redis is
// unreachable, when it returns).
func (r *Registry) Unregister(ctx context.Context, connID string) error {
	r.mu.Lock()
	delete(r.local, connID)
	r.mu.Unlock()
	if !r.redis {
		return nil
	}
	err := r.m.call(ctx, "reg_unregister", r.m.cfg.CallBudget, func(ctx context.Context, rdb *redis.Client) error {
		return removeScript.Run(ctx, rdb, []string{r.k.live(), r.k.connFlow()}, "", r.k.prefix, connID).Err()
	})
	if err != nil {
		r.mu.Lock()
		r.gone[connID] = struct{}{}
		r.mu.Unlock()
	}
	return r.answer(err)
}

// Lookup returns the flow's live connections on every instance: one
// ZRANGEBYSCORE. While Redis is unreachable: this instance's.
func (r *Registry) Lookup(ctx context.Context, flowID string) ([]string, error) {
	if r.redis {
		var ids []string
		err := r.m.call(ctx, "reg_lookup", r.m.cfg.CallBudget, func(ctx context.Context, rdb *redis.Client) error {
			var err error
			ids, err = rdb.ZRangeByScore(ctx, r.k.conns(flowID), &redis.ZRangeBy{
				Min: "(" + strconv.FormatInt(time.Now().UnixMilli(), 10), Max: "+inf"}).Result()
			return err
		})
		if err == nil {
			slices.Sort(ids)
			return append([]string{}, ids...), nil
		}
		if err = r.answer(err); err != nil {
			return nil, err
		}
	}
	ids := []string{}
	for _, lc := range r.alive() {
		if lc.c.FlowID == flowID {
			ids = append(ids, lc.c.ID)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// alive returns this instance's connections that heartbeated within TTL.
func (r *Registry) alive() []*localConn {
	cut := time.Now().Add(-r.m.cfg.RegistryTTL)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*localConn
	for _, lc := range r.local {
		if lc.last.After(cut) {
			out = append(out, lc)
		}
	}
	return out
}

// Count is the number of live connections on every instance (one ZCOUNT).
func (r *Registry) Count(ctx context.Context) (int, error) {
	if r.redis {
		var n int64
		err := r.m.call(ctx, "reg_lookup", r.m.cfg.CallBudget, func(ctx context.Context, rdb *redis.Client) error {
			var err error
			n, err = rdb.ZCount(ctx, r.k.live(), "("+strconv.FormatInt(time.Now().UnixMilli(), 10), "+inf").Result()
			return err
		})
		if err == nil {
			return int(n), nil
		}
		if err = r.answer(err); err != nil {
			return 0, err
		}
	}
	return len(r.alive()), nil
}

// Cleanup forgets this instance's connections whose heartbeats stopped and
// deletes expired connections of every instance from Redis (one script
// call per 1000). It returns how many Redis entries it removed, or in
// memory mode how many local ones.
func (r *Registry) Cleanup(ctx context.Context) (int, error) {
	cut := time.Now().Add(-r.m.cfg.RegistryTTL)
	local := 0
	r.mu.Lock()
	for id, lc := range r.local {
		if !lc.last.After(cut) {
			delete(r.local, id)
			local++
		}
	}
	r.mu.Unlock()
	if !r.redis {
		return local, nil
	}
	total := 0
	for {
		var n int
		err := r.m.call(ctx, "reg_cleanup", r.m.io, func(ctx context.Context, rdb *redis.Client) error {
			var err error
			n, err = removeScript.Run(ctx, rdb, []string{r.k.live(), r.k.connFlow()},
				strconv.FormatInt(time.Now().UnixMilli(), 10), r.k.prefix).Int()
			return err
		})
		if err != nil {
			if errors.Is(err, errOffline) || outage(err) {
				return local, nil
			}
			return total, fmt.Errorf("hardened: cleanup: %w", err)
		}
		total += n
		if n < 1000 {
			return total, nil
		}
	}
}

func (r *Registry) cleanupLoop() {
	t := time.NewTicker(r.m.cfg.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-r.m.stop:
			return
		case <-t.C:
			r.Cleanup(context.Background())
		}
	}
}

// restore runs when Redis comes (back) up: one pipelined round trip
// re-registers this instance's live connections and removes the ones
// unregistered meanwhile.
func (r *Registry) restore() {
	live := r.alive()
	r.mu.Lock()
	gone := make([]any, 0, len(r.gone))
	for id := range r.gone {
		gone = append(gone, id)
	}
	r.mu.Unlock()
	if len(live) == 0 && len(gone) == 0 {
		return
	}
	now := time.Now()
	err := r.m.call(context.Background(), "reg_register", r.m.io, func(ctx context.Context, rdb *redis.Client) error {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, lc := range live {
				keys, args := r.registerArgs(lc, now)
				registerScript.EvalSha(ctx, p, keys, args...)
			}
			if len(gone) > 0 {
				removeScript.EvalSha(ctx, p, []string{r.k.live(), r.k.connFlow()}, append([]any{"", r.k.prefix}, gone...)...)
			}
			return nil
		})
		return err
	})
	if err == nil {
		r.mu.Lock()
		for _, id := range gone {
			delete(r.gone, id.(string))
		}
		r.mu.Unlock()
	}
}
