package seed

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/redis/go-redis/v9"
)

// connData is the JSON the tracker stores per connection.
type connData struct {
	FlowID        string            `json:"flow_id"`
	UserID        string            `json:"user_id"`
	ServerID      string            `json:"server_id"`
	ConnectedAt   string            `json:"connected_at"`
	ClientInfo    map[string]string `json:"client_info"`
	LastHeartbeat string            `json:"last_heartbeat"`
}

// registry is RedisConnectionRegistry (TASK-006).
type registry struct {
	m *manager

	mu     sync.Mutex
	memory map[string]connData
}

func newRegistry(m *manager) *registry {
	return &registry{m: m, memory: map[string]connData{}}
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func (r *registry) rdb() redis.UniversalClient { return r.m.redis(r.m.cfg.SSE) }

func (r *registry) connKey(id string) string { return r.m.key(registryPrefix, id) }

func (r *registry) flowKey(flowID string) string { return r.m.key(registryPrefix, "flow:"+flowID) }

// Register is register(): SETEX, SADD, EXPIRE, or memory on any error.
func (r *registry) Register(ctx context.Context, c impl.Conn) error {
	t := now()
	d := connData{FlowID: c.FlowID, UserID: c.UserID, ServerID: r.m.cfg.ServerID, ConnectedAt: t, ClientInfo: c.ClientInfo, LastHeartbeat: t}
	if d.ClientInfo == nil {
		d.ClientInfo = map[string]string{}
	}
	rdb := r.rdb()
	if rdb == nil {
		r.setMemory(c.ID, d)
		return nil
	}
	if err := r.registerRedis(counter.WithOp(ctx, "reg_register"), rdb, c.ID, d); err != nil {
		// flaw (guarantee 5): registered only in this instance's memory, invisible to other instances.
		r.setMemory(c.ID, d)
	}
	return nil
}

func (r *registry) registerRedis(ctx context.Context, rdb redis.UniversalClient, id string, d connData) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	ttl := r.m.cfg.RegistryTTL
	// flaw (guarantee 9): three sequential round trips per register.
	if err := rdb.SetEx(ctx, r.connKey(id), b, ttl).Err(); err != nil {
		return err
	}
	fk := r.flowKey(d.FlowID)
	if err := rdb.SAdd(ctx, fk, id).Err(); err != nil {
		return err
	}
	return rdb.Expire(ctx, fk, ttl).Err()
}

func (r *registry) setMemory(id string, d connData) {
	r.mu.Lock()
	r.memory[id] = d
	r.mu.Unlock()
}

// Heartbeat is heartbeat(): GET then SETEX of the connection key.
func (r *registry) Heartbeat(ctx context.Context, connID string) error {
	rdb := r.rdb()
	if rdb == nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		if d, ok := r.memory[connID]; ok {
			d.LastHeartbeat = now()
			r.memory[connID] = d
		}
		return nil
	}
	ctx = counter.WithOp(ctx, "reg_heartbeat")
	// flaw (guarantee 9): GET + SETEX is two round trips where one EXPIRE would do.
	raw, err := rdb.Get(ctx, r.connKey(connID)).Result()
	if err == redis.Nil {
		return fmt.Errorf("heartbeat %s: %w", connID, errNotFound)
	}
	if err != nil {
		return fmt.Errorf("seed: heartbeat %s: %w", connID, err)
	}
	var d connData
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return fmt.Errorf("seed: heartbeat %s: %w", connID, err)
	}
	d.LastHeartbeat = now()
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	// flaw (guarantee 5): the flow set's TTL is not refreshed, so it expires under a live connection.
	if err := rdb.SetEx(ctx, r.connKey(connID), b, r.m.cfg.RegistryTTL).Err(); err != nil {
		return fmt.Errorf("seed: heartbeat %s: %w", connID, err)
	}
	return nil
}

// Unregister is unregister(): GET, SREM, DEL.
func (r *registry) Unregister(ctx context.Context, connID string) error {
	rdb := r.rdb()
	if rdb == nil {
		r.mu.Lock()
		delete(r.memory, connID)
		r.mu.Unlock()
		return nil
	}
	return r.unregisterRedis(counter.WithOp(ctx, "reg_unregister"), rdb, connID)
}

func (r *registry) unregisterRedis(ctx context.Context, rdb redis.UniversalClient, connID string) error {
	key := r.connKey(connID)
	raw, err := rdb.Get(ctx, key).Result()
	if err != nil && err != redis.Nil {
		return fmt.Errorf("seed: unregister %s: %w", connID, err)
	}
	if err == nil {
		var d connData
		if json.Unmarshal([]byte(raw), &d) == nil {
			if err := rdb.SRem(ctx, r.flowKey(d.FlowID), connID).Err(); err != nil {
				return fmt.Errorf("seed: unregister %s: %w", connID, err)
			}
		}
	}
	if err := rdb.Del(ctx, key).Err(); err != nil {
		return fmt.Errorf("seed: unregister %s: %w", connID, err)
	}
	return nil
}

// Lookup is get_flow_connections(): SMEMBERS, then one EXISTS per member
// (and SREM of stale ones).
func (r *registry) Lookup(ctx context.Context, flowID string) ([]string, error) {
	rdb := r.rdb()
	if rdb == nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		out := []string{}
		for id, d := range r.memory {
			if d.FlowID == flowID {
				out = append(out, id)
			}
		}
		return out, nil
	}
	ctx = counter.WithOp(ctx, "reg_lookup")
	fk := r.flowKey(flowID)
	members, err := rdb.SMembers(ctx, fk).Result()
	if err != nil {
		// flaw (guarantee 5): an error reads as "no connections".
		return []string{}, nil
	}
	active := []string{}
	for _, id := range members {
		// flaw (guarantee 9): one EXISTS round trip per member (1 + N per lookup).
		n, err := rdb.Exists(ctx, r.connKey(id)).Result()
		if err != nil {
			return []string{}, nil
		}
		if n > 0 {
			active = append(active, id)
		} else if err := rdb.SRem(ctx, fk, id).Err(); err != nil {
			return []string{}, nil
		}
	}
	return active, nil
}

// Cleanup is cleanup_stale_connections(): SCAN the registry keys, GET each,
// unregister those whose last heartbeat is older than the TTL.
func (r *registry) Cleanup(ctx context.Context) (int, error) {
	ttl := r.m.cfg.RegistryTTL
	rdb := r.rdb()
	if rdb == nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		n := 0
		for id, d := range r.memory {
			if stale(d, ttl) {
				delete(r.memory, id)
				n++
			}
		}
		return n, nil
	}
	ctx = counter.WithOp(ctx, "reg_cleanup")
	removed := 0
	err := r.scanConns(ctx, rdb, func(key string) error {
		raw, err := rdb.Get(ctx, key).Result()
		if err == redis.Nil {
			return nil
		}
		if err != nil {
			return err
		}
		var d connData
		if json.Unmarshal([]byte(raw), &d) != nil || !stale(d, ttl) {
			return nil
		}
		if err := r.unregisterRedis(ctx, rdb, strings.TrimPrefix(key, r.connKey(""))); err != nil {
			return err
		}
		removed++
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("seed: cleanup: %w", err)
	}
	return removed, nil
}

// scanConns calls f for every connection key (SCAN MATCH prefix* COUNT 100,
// skipping flow sets).
func (r *registry) scanConns(ctx context.Context, rdb redis.UniversalClient, f func(key string) error) error {
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, r.connKey("")+"*", 100).Result()
		if err != nil {
			return err
		}
		for _, k := range keys {
			if strings.Contains(k, ":flow:") {
				continue
			}
			if err := f(k); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

func stale(d connData, ttl time.Duration) bool {
	hb, err := time.Parse(time.RFC3339Nano, d.LastHeartbeat)
	return err == nil && time.Since(hb) > ttl
}

// Count is not in the tracker; the port counts connection keys by SCAN.
func (r *registry) Count(ctx context.Context) (int, error) {
	rdb := r.rdb()
	if rdb == nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.memory), nil
	}
	n := 0
	err := r.scanConns(counter.WithOp(ctx, "reg_count"), rdb, func(string) error { n++; return nil })
	if err != nil {
		return 0, fmt.Errorf("seed: count: %w", err)
	}
	return n, nil
}

// cleanupLoop is the periodic task the tracker says cleanup is for.
func (r *registry) cleanupLoop(stop <-chan struct{}) {
	t := time.NewTicker(r.m.cfg.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), r.m.cfg.CleanupInterval)
			r.Cleanup(ctx)
			cancel()
		}
	}
}
