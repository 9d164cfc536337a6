package hardened

// Key layout. Every key starts with Config.KeyPrefix, and every script's
// keys share one hash tag, so that each script runs on Redis Cluster (one
// slot per script; TestScriptKeySlots, and harness scriptkeys on a real
// cluster):
//   - a flow's stream, channel and cache keys: {flow:<id>}, so a flow's
//     publishes and cache calls spread over the cluster with its flows;
//   - the whole registry: {sse}. Its scripts keep a connection's flow
//     membership (conns, conninfo) and the instance-wide index (live for
//     Count and Cleanup, connflow for a connection's flow) in step
//     atomically, which a cluster allows only within one slot; so the
//     registry lives on one primary. Its traffic is a heartbeat per
//     connection per interval (one script call), a lookup per fan-out and
//     a cleanup per interval: 10,000 connections heartbeating every 15 s
//     are under 1,000 calls/s, a small share of one node. The cost: the
//     registry does not spread over the cluster's primaries, and a failover
//     of that one shard pauses it (the memory fallback answers meanwhile);
//   - the cache epoch lease (members, epoch) and metrics: {cache}.
//
// Every script names every key it touches in KEYS (so Upstash may run it
// with allow-key-locking): the scripts that reach a flow's registry keys
// from a connection (heartbeat of a connection registered elsewhere,
// unregister, cleanup) get its flow read first.
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
func (k keys) conns(flow string) string { return k.prefix + "{sse}:conns:" + flow }

// connInfo is a HASH connection ID -> JSON metadata (user, server, client
// info, connected_at).
func (k keys) connInfo(flow string) string { return k.prefix + "{sse}:conninfo:" + flow }

// live is the global ZSET connection ID -> expiry (ms), for Count and
// Cleanup across instances.
func (k keys) live() string { return k.prefix + "{sse}:live" }

// connFlow is the global HASH connection ID -> flow ID.
func (k keys) connFlow() string { return k.prefix + "{sse}:connflow" }

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
func (k keys) cacheMembers() string { return k.prefix + "{cache}:members" }
func (k keys) cacheEpoch() string   { return k.prefix + "{cache}:epoch" }

// metrics is the global HASH of cache counters, fields hits:<flow> and
// misses:<flow> (flushed in batches, never on the read path).
func (k keys) metrics() string { return k.prefix + "{cache}:metrics" }
