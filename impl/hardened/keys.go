package hardened

// Key layout. Every key starts with Config.KeyPrefix. A flow's keys share
// the hash tag {flow:<id>} so they live in one slot on a cluster target and
// a Lua script or pipeline may touch them together. The registry's two
// global keys (sse:live, sse:connflow) are the only keys outside a flow's
// slot. Every script names every key it touches in KEYS (so Upstash may
// run it with allow-key-locking; scriptkeys checks it on a Redis Cluster):
// the scripts that reach a flow's keys from a connection (heartbeat of a
// connection registered elsewhere, unregister, cleanup) get its flow read
// first. The registry's scripts declare keys of two slots, so they need a
// single-node Redis (as Upstash and the process target are).
type keys struct{ prefix string }

func (k keys) flow(id, suffix string) string { return k.prefix + "{flow:" + id + "}:" + suffix }

// events is the flow's stream (XADD MAXLEN ~ StreamMaxLen, TTL StreamTTL).
func (k keys) events(flow string) string { return k.flow(flow, "events") }

// ackChannel is the channel a durable replay publishes its marker to (no
// one subscribes).
func (k keys) ackChannel() string { return k.prefix + "ack" }

// channel is the flow's Pub/Sub channel for live delivery.
func (k keys) channel(flow string) string { return k.flow(flow, "updates") }

// conns is a ZSET of the flow's connections scored by expiry (ms since
// epoch): last heartbeat + RegistryTTL.
func (k keys) conns(flow string) string { return k.flow(flow, "conns") }

// connInfo is a HASH connection ID -> JSON metadata (user, server, client
// info, connected_at).
func (k keys) connInfo(flow string) string { return k.flow(flow, "conninfo") }

// live is the global ZSET connection ID -> expiry (ms), for Count and
// Cleanup across instances.
func (k keys) live() string { return k.prefix + "sse:live" }

// connFlow is the global HASH connection ID -> flow ID.
func (k keys) connFlow() string { return k.prefix + "sse:connflow" }

// state holds the flow state cached in a cache epoch (see Cache), meta its
// metadata, both with the status TTL. A state of an earlier epoch is never
// read again and expires with its TTL.
func (k keys) state(flow, epoch string) string { return k.flow(flow, "state:"+epoch) }
func (k keys) meta(flow string) string         { return k.flow(flow, "meta") }

// gen is the flow's cache generation, INCRed by Invalidate; a Get miss
// returns it as the lease a fill must present.
func (k keys) gen(flow string) string { return k.flow(flow, "gen") }

// cacheMembers is the global ZSET server ID -> lease expiry (ms) of the
// instances serving the cache from Redis; cacheEpoch is the global STRING
// naming the current cache epoch.
func (k keys) cacheMembers() string { return k.prefix + "cache:members" }
func (k keys) cacheEpoch() string   { return k.prefix + "cache:epoch" }

// metrics is the global HASH of cache counters, fields hits:<flow> and
// misses:<flow> (flushed in batches, never on the read path).
func (k keys) metrics() string { return k.prefix + "cache:metrics" }
