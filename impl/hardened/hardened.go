// Package hardened is the layer of the tracker (TASK-003 to TASK-008,
// TASK-012) built to keep every guarantee of DESIGN.md: bounded calls with
// a breaker and a background probe, an outbox replayed in order without
// duplicates, one round trip per publish, cache read and registry lookup,
// heartbeats that keep connections and their flow membership alive, cache
// fills refused after an invalidation, and live delivery across instances
// with Last-Event-ID catch-up.
//
// Redis traffic per operation (counted with internal/counter under the op
// tag in brackets; every call is bounded by PublishBudget or CallBudget):
//
//	Publish            [publish]           1 command (EVALSHA) in 1 round trip, which concurrent
//	                                       publishes share (one pipeline: see coalesce.go)
//	History            [history]           1 round trip, 1 command (XREVRANGE)
//	Subscribe          [subscribe]         1 XREVRANGE (stream position), SUBSCRIBE on the
//	                                       layer's one Pub/Sub connection for a flow's first
//	                                       subscriber, 1 XRANGE per 500 entries to catch up
//	Cache.Get          [cache_get]         1 round trip, 1 command (MGET state, generation)
//	Cache.Set          [cache_set]         1 round trip, 1 command (EVALSHA)
//	Cache.Invalidate   [cache_invalidate]  1 round trip, 1 command (EVALSHA)
//	cache membership   [cache_lease]       1 EVALSHA on connect and per third of its lease
//	                                       (3 health intervals); 1 ZREM on Close
//	Cache.Metrics      [cache_metrics]     1 round trip (pending HINCRBYs + HMGET); hit and
//	                                       miss counts are flushed once a second in one pipeline
//	Register/Heartbeat [reg_register/reg_heartbeat] 1 round trip, 1 command (EVALSHA); the
//	                                       server executes 7 for a register, 3 for a heartbeat
//	                                       (5 once a third of the key TTL); the heartbeat of a
//	                                       connection registered elsewhere: 2 round trips (HGET
//	                                       its flow, then EVALSHA declaring its keys)
//	Unregister         [reg_unregister]    1 round trip, 1 command (EVALSHA); 2 (HMGET its
//	                                       flow first) for a connection registered elsewhere
//	Lookup             [reg_lookup]        1 round trip, 1 command (ZRANGEBYSCORE)
//	Count              [reg_count]         1 round trip, 1 command (ZCOUNT)
//	Cleanup            [reg_cleanup]       2 EVALSHA per 1000 expired connections (read them
//	                                       and their flows, then remove those still expired)
//	outbox replay      [replay]            1 round trip per 100 events
//	probe              [probe]             memory mode: a TCP connect per ProbeInterval, then
//	                                       PING + SCRIPT LOAD; redis mode: a PING per
//	                                       HealthInterval (and one per Health call)
package hardened

import (
	"context"
	"sync"

	"github.com/gonogo/harness/impl"
)

// Profile is the name the hardened profile registers under.
const Profile = "hardened"

// New builds a hardened layer. With cfg.Enabled it tries Redis once within
// ConnectTimeout; if Redis is down the layer starts in memory mode and the
// probe switches it to Redis when it comes up. With cfg.Enabled false it
// never dials. Only a REDIS_URL that does not parse is an error. The
// layer's Close first writes the outbox to Redis (ErrOutboxLost names what
// it could not) and gives up the cache membership (see leaseScript): a
// restart loses no acknowledged event silently, and a rollback cannot leave
// states in Redis that reads trust afterwards.
func New(ctx context.Context, cfg impl.Config) (*impl.Layer, error) {
	cfg = cfg.WithDefaults()
	m := newManager(cfg)
	k := keys{prefix: cfg.KeyPrefix}
	bus := newBus(m, k)
	if cfg.JournalDir != "" && bus.redis {
		if err := bus.openJournal(cfg.JournalDir); err != nil {
			m.close()
			return nil, err
		}
	}
	m.beforeClose(bus.drain)
	reg := newRegistry(m, k)
	cache := newCache(m, k)
	if err := m.start(ctx); err != nil {
		m.close()
		return nil, err
	}
	var once sync.Once
	var err error
	return &impl.Layer{
		Profile:  Profile,
		Manager:  m,
		Bus:      bus,
		Registry: reg,
		Cache:    cache,
		Close: func() error {
			once.Do(func() { err = m.close() })
			return err
		},
	}, nil
}
