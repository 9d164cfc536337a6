package hardened

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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
// CleanupInterval. A connection's expiry counts from the moment its
// Register or Heartbeat was called, whenever the script runs, and only ever
// grows (ZADD GT), so a late or repeated write never shortens or stretches
// its life.
//
// While Redis is unreachable the registry answers from the connections
// registered on this instance plus those of other instances its last
// successful lookup of the flow saw, until their expiry then; it
// re-registers the live ones (and replays unregisters) when Redis returns.
// A register, heartbeat or unregister that fails while the breaker stays
// closed is replayed the same way in the background.
type Registry struct {
	m     *manager
	k     keys
	redis bool // Enabled && SSE

	mu    sync.Mutex
	local map[string]*localConn
	// gone are connections unregistered while Redis was unreachable, with
	// their flows ("" when this instance did not know it).
	gone map[string]string
	// dirty are local connections whose last register or heartbeat
	// failed.
	dirty map[string]struct{}
	// known is, per flow, what the last successful lookup returned: each
	// connection's expiry (Unix ms).
	known map[string]map[string]int64
	// ttlAt is when this instance last refreshed a flow's key TTL (a
	// register, or a heartbeat that asked for it): heartbeats refresh it
	// every third of the TTL, not each time.
	ttlAt map[string]time.Time
	wake  chan struct{}
}

type localConn struct {
	c    impl.Conn
	info string
	last time.Time // guarded by Registry.mu
}

func newRegistry(m *manager, k keys) *Registry {
	r := &Registry{m: m, k: k, redis: m.cfg.Enabled && m.cfg.SSE,
		local: map[string]*localConn{}, gone: map[string]string{}, dirty: map[string]struct{}{},
		known: map[string]map[string]int64{}, ttlAt: map[string]time.Time{}, wake: make(chan struct{}, 1)}
	if r.redis {
		m.listen(func(redis.UniversalClient, uint64) { r.resync(true) }, nil)
		m.goroutine(r.resyncLoop)
	}
	m.goroutine(r.cleanupLoop)
	return r
}

// expiry is the score of a connection that heartbeated at t: t + TTL in
// Unix ms, rounded up so that a lookup (bounded by its own time rounded
// down) sees the connection until the TTL has fully run.
func (r *Registry) expiry(t time.Time) int64 {
	ns := t.Add(r.m.cfg.RegistryTTL).UnixNano()
	return (ns + int64(time.Millisecond) - 1) / int64(time.Millisecond)
}

// keyTTL outlives every member's expiry so a flow's keys vanish only after
// all its connections stopped.
//
// Twice the registry TTL plus the cleanup interval: a heartbeat refreshes
// it only when a third of it has passed, and the key must outlast the
// expiry of every entry written in between (at TTL + cleanup the key of a
// flow whose connections were all on a paused instance expired up to
// 200 ms before their last heartbeat's expiry: TestRegistryKeyOutlivesEntries).
func (r *Registry) keyTTL() int64 {
	return (2*r.m.cfg.RegistryTTL + r.m.cfg.CleanupInterval).Milliseconds()
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
	err = r.m.call(ctx, "reg_register", r.m.cfg.CallBudget, func(ctx context.Context, rdb redis.UniversalClient) error {
		return registerScript.Run(ctx, rdb, keys, args...).Err()
	})
	if err == nil {
		r.mu.Lock()
		r.ttlAt[c.FlowID] = now
		r.mu.Unlock()
	}
	r.settle(c.ID, err)
	return r.answer(err)
}

// settle records the outcome of a register or heartbeat of a local
// connection: a failure to reach Redis leaves it to resync.
func (r *Registry) settle(id string, err error) {
	if errors.Is(err, errOffline) {
		return // the resync on reconnect re-registers every live connection
	}
	failed := err != nil && outage(err)
	r.mu.Lock()
	if failed {
		r.dirty[id] = struct{}{}
	} else {
		delete(r.dirty, id)
	}
	r.mu.Unlock()
	if failed {
		r.kick()
	}
}

func (r *Registry) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
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
	err := r.m.call(ctx, "reg_heartbeat", r.m.cfg.CallBudget, func(ctx context.Context, rdb redis.UniversalClient) error {
		if lc != nil {
			found = true
			return r.beat(ctx, rdb, lc, now)
		}
		var err error
		found, err = r.heartbeatOther(ctx, rdb, connID, now)
		return err
	})
	if (err == nil && !found) || (errors.Is(err, errOffline) && lc == nil) {
		return ErrNotRegistered
	}
	if lc != nil {
		r.settle(connID, err)
	}
	return r.answer(err)
}

// beat heartbeats a connection this instance registered (beatScript),
// refreshing its flow keys' TTL when a third of it has passed since this
// instance last did.
func (r *Registry) beat(ctx context.Context, rdb redis.UniversalClient, lc *localConn, now time.Time) error {
	ttl := r.keyTTL()
	r.mu.Lock()
	refresh := now.Sub(r.ttlAt[lc.c.FlowID]) >= time.Duration(ttl)*time.Millisecond/3
	r.mu.Unlock()
	arg := ""
	if refresh {
		arg = strconv.FormatInt(ttl, 10)
	}
	n, err := beatScript.Run(ctx, rdb, []string{r.k.live(), r.k.connFlow(), r.k.conns(lc.c.FlowID), r.k.connInfo(lc.c.FlowID)},
		lc.c.ID, lc.c.FlowID, r.expiry(now), arg, lc.info, ttl).Int()
	if err == nil && (refresh || n == 2) {
		r.mu.Lock()
		r.ttlAt[lc.c.FlowID] = now
		r.mu.Unlock()
	}
	return err
}

// retries bounds the reads of a connection's flow when it changes
// between the read and the script (a connection registered again on
// another flow meanwhile).
const retries = 3

// heartbeatOther refreshes a connection another instance registered: its
// flow read first (HGET connflow), then heartbeatScript with every key it
// touches declared; two round trips. Found is false for a connection that
// is not registered.
func (r *Registry) heartbeatOther(ctx context.Context, rdb redis.UniversalClient, connID string, now time.Time) (found bool, err error) {
	for i := 0; i < retries; i++ {
		f, err := rdb.HGet(ctx, r.k.connFlow(), connID).Result()
		if errors.Is(err, redis.Nil) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		n, err := heartbeatScript.Run(ctx, rdb, []string{r.k.live(), r.k.connFlow(), r.k.conns(f), r.k.connInfo(f)},
			connID, r.expiry(now), r.keyTTL(), f).Int()
		if err != nil || n >= 0 {
			return n == 1, err
		}
	}
	return false, fmt.Errorf("hardened: heartbeat %s: its flow changed %d times while it was read", connID, retries)
}

// remove unregisters conns (ID → flow, "" when unknown: read from connflow
// first) in Redis with removeScript, every key declared; with now set
// (ms), only those still expired then. A connection whose flow changed in
// between is read again. It returns how many it removed.
func (r *Registry) remove(ctx context.Context, rdb redis.UniversalClient, now string, conns map[string]string) (int, error) {
	total := 0
	for i := 0; len(conns) > 0; i++ {
		if i == retries {
			return total, fmt.Errorf("hardened: unregister: the flows of %d connections changed %d times while they were read", len(conns), retries)
		}
		var unknown []string
		for id, f := range conns {
			if f == "" {
				unknown = append(unknown, id)
			}
		}
		if len(unknown) > 0 {
			fs, err := rdb.HMGet(ctx, r.k.connFlow(), unknown...).Result()
			if err != nil {
				return total, err
			}
			for j, id := range unknown {
				conns[id], _ = fs[j].(string)
			}
		}
		keys := []string{r.k.live(), r.k.connFlow()}
		at := map[string]int{}
		args := []any{now}
		for id, f := range conns {
			k := 0
			if f != "" {
				if at[f] == 0 {
					keys = append(keys, r.k.conns(f), r.k.connInfo(f))
					at[f] = len(keys) - 1
				}
				k = at[f]
			}
			args = append(args, id, f, k)
		}
		res, err := removeScript.Run(ctx, rdb, keys, args...).Slice()
		if err != nil || len(res) == 0 {
			return total, err
		}
		n, _ := res[0].(int64)
		total += int(n)
		moved := map[string]string{}
		for _, id := range res[1:] {
			if s, ok := id.(string); ok {
				moved[s] = ""
			}
		}
		conns = moved
	}
	return total, nil
}

// Unregister removes the connection here and in Redis (or, while Redis is
// unreachable, when it returns).
func (r *Registry) Unregister(ctx context.Context, connID string) error {
	r.mu.Lock()
	flow := ""
	if lc := r.local[connID]; lc != nil {
		flow = lc.c.FlowID
		delete(r.known[lc.c.FlowID], connID)
	}
	delete(r.local, connID)
	delete(r.dirty, connID)
	r.mu.Unlock()
	if !r.redis {
		return nil
	}
	err := r.m.call(ctx, "reg_unregister", r.m.cfg.CallBudget, func(ctx context.Context, rdb redis.UniversalClient) error {
		_, err := r.remove(ctx, rdb, "", map[string]string{connID: flow})
		return err
	})
	if err != nil {
		r.mu.Lock()
		r.gone[connID] = flow
		r.mu.Unlock()
		r.kick()
	}
	return r.answer(err)
}

// Lookup returns the flow's live connections on every instance: one
// ZRANGEBYSCORE (with the expiries, kept for the fallback). While Redis
// is unreachable, or past CallBudget: this instance's live connections and
// the other instances' ones the last lookup saw, until their expiry then.
// It notes which answered (impl.NoteMode): from memory also while the
// layer's mode still says redis.
func (r *Registry) Lookup(ctx context.Context, flowID string) ([]string, error) {
	if r.redis {
		var zs []redis.Z
		err := r.m.call(ctx, "reg_lookup", r.m.cfg.CallBudget, func(ctx context.Context, rdb redis.UniversalClient) error {
			var err error
			zs, err = rdb.ZRangeByScoreWithScores(ctx, r.k.conns(flowID), &redis.ZRangeBy{
				Min: "(" + strconv.FormatInt(time.Now().UnixMilli(), 10), Max: "+inf"}).Result()
			return err
		})
		if err == nil {
			ids := make([]string, len(zs))
			seen := make(map[string]int64, len(zs))
			for i, z := range zs {
				ids[i], _ = z.Member.(string)
				seen[ids[i]] = int64(z.Score)
			}
			r.mu.Lock()
			r.known[flowID] = seen
			r.mu.Unlock()
			slices.Sort(ids)
			impl.NoteMode(ctx, impl.ModeRedis)
			return ids, nil
		}
		if err = r.answer(err); err != nil {
			return nil, err
		}
	}
	impl.NoteMode(ctx, impl.ModeMemory)
	return r.remembered(flowID), nil
}

// remembered is the memory answer of Lookup (flowID set) and Count (flowID
// ""): this instance's live connections and the other instances' ones its
// last lookup of their flow saw, until their expiry then + graceMs;
// sorted.
func (r *Registry) remembered(flowID string) []string {
	now := time.Now()
	grace := r.graceMs()
	ids := []string{}
	for _, lc := range r.alive(now) {
		if flowID == "" || lc.c.FlowID == flowID {
			ids = append(ids, lc.c.ID)
		}
	}
	r.mu.Lock()
	for f, known := range r.known {
		if flowID != "" && f != flowID {
			continue
		}
		for id, exp := range known {
			if _, here := r.local[id]; !here && exp+grace > now.UnixMilli() {
				ids = append(ids, id)
			}
		}
	}
	r.mu.Unlock()
	slices.Sort(ids)
	return slices.Compact(ids)
}

// graceMs is how long past the expiry its last lookup saw an instance
// without Redis lists another instance's connection: one cleanup interval.
// A heartbeat made after that lookup, which the instance cannot see, moved
// the real expiry on by up to a heartbeat interval (less than the cleanup
// interval at production's ratios); and a connection stays listed that
// long after its last heartbeat in Redis too, until the cleanup removes it
// (explore's registry-1d43f7ca).
func (r *Registry) graceMs() int64 { return r.m.cfg.CleanupInterval.Milliseconds() }

// live is a local connection and when it last heartbeated.
type live struct {
	*localConn
	last time.Time
}

// alive returns this instance's connections that heartbeated within TTL
// of now.
func (r *Registry) alive(now time.Time) []live {
	cut := now.Add(-r.m.cfg.RegistryTTL)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []live
	for _, lc := range r.local {
		if lc.last.After(cut) {
			out = append(out, live{lc, lc.last})
		}
	}
	return out
}

// Count is the number of live connections on every instance (one ZCOUNT);
// while Redis is unreachable, what Lookup would list across flows.
func (r *Registry) Count(ctx context.Context) (int, error) {
	if r.redis {
		var n int64
		err := r.m.call(ctx, "reg_count", r.m.cfg.CallBudget, func(ctx context.Context, rdb redis.UniversalClient) error {
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
	return len(r.remembered("")), nil
}

// cleanupBatch is how many expired connections one cleanup round trip
// reads and removes.
const cleanupBatch = 1000

// Cleanup forgets this instance's connections whose heartbeats stopped and
// deletes expired connections of every instance from Redis (one script
// call per 1000). It returns how many Redis entries it removed, or in
// memory mode how many local ones.
func (r *Registry) Cleanup(ctx context.Context) (int, error) {
	now := time.Now()
	cut := now.Add(-r.m.cfg.RegistryTTL)
	local := 0
	r.mu.Lock()
	for f, at := range r.ttlAt { // bounded: a flow refreshed no more is forgotten
		if now.Sub(at) > time.Duration(r.keyTTL())*time.Millisecond {
			delete(r.ttlAt, f)
		}
	}
	for id, lc := range r.local {
		if !lc.last.After(cut) {
			delete(r.local, id)
			local++
		}
	}
	grace := r.graceMs()
	for f, known := range r.known { // bounded: a flow whose connections all expired is forgotten
		maps.DeleteFunc(known, func(_ string, exp int64) bool { return exp+grace <= now.UnixMilli() })
		if len(known) == 0 {
			delete(r.known, f)
		}
	}
	r.mu.Unlock()
	if !r.redis {
		return local, nil
	}
	total := 0
	for {
		var n int
		var read int
		err := r.m.call(ctx, "reg_cleanup", r.m.io, func(ctx context.Context, rdb redis.UniversalClient) error {
			now := strconv.FormatInt(time.Now().UnixMilli(), 10)
			res, err := expiredScript.Run(ctx, rdb, []string{r.k.live(), r.k.connFlow()}, now, cleanupBatch).StringSlice()
			if err != nil || len(res) == 0 {
				return err
			}
			read = len(res) / 2
			conns := make(map[string]string, read)
			for i := 0; i+1 < len(res); i += 2 {
				conns[res[i]] = res[i+1]
			}
			n, err = r.remove(ctx, rdb, now, conns)
			return err
		})
		if err != nil {
			if errors.Is(err, errOffline) || outage(err) {
				return local, nil
			}
			return total, fmt.Errorf("hardened: cleanup: %w", err)
		}
		total += n
		if read < cleanupBatch {
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

// resync writes what Redis may have missed in one pipelined round trip:
// the live local connections (all of them when Redis comes (back) up, else
// the dirty ones), each with the expiry of its last heartbeat, and the
// unregisters that failed.
func (r *Registry) resync(all bool) {
	conns := r.alive(time.Now())
	r.mu.Lock()
	if !all {
		conns = slices.DeleteFunc(conns, func(lc live) bool {
			_, dirty := r.dirty[lc.c.ID]
			return !dirty
		})
	}
	gone := make(map[string]string, len(r.gone))
	for id, f := range r.gone {
		gone[id] = f
	}
	r.dirty = map[string]struct{}{}
	r.mu.Unlock()
	if len(conns) == 0 && len(gone) == 0 {
		return
	}
	err := r.m.call(r.m.ctx, "reg_register", r.m.io, func(ctx context.Context, rdb redis.UniversalClient) error {
		if len(conns) > 0 {
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, lc := range conns {
					keys, args := r.registerArgs(lc.localConn, lc.last)
					registerScript.EvalSha(ctx, p, keys, args...)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if len(gone) > 0 {
			_, err := r.remove(ctx, rdb, "", maps.Clone(gone))
			return err
		}
		return nil
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		for _, lc := range conns {
			if _, here := r.local[lc.c.ID]; here {
				r.dirty[lc.c.ID] = struct{}{}
			}
		}
		return
	}
	for id := range gone {
		delete(r.gone, id)
	}
}

// resyncLoop resyncs the dirty connections and failed unregisters: when
// one is noted, and every ProbeInterval while any waits.
func (r *Registry) resyncLoop() {
	t := time.NewTicker(r.m.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-r.m.stop:
			return
		case <-r.wake:
		case <-t.C:
		}
		rdb, _ := r.m.client()
		r.mu.Lock()
		due := rdb != nil && len(r.dirty)+len(r.gone) > 0
		r.mu.Unlock()
		if due {
			r.resync(false)
		}
	}
}
