package hardened

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Every write path is one script call: one round trip and one billed
// command (Upstash bills EVALSHA as one command). Scripts are loaded when
// the layer connects (SCRIPT LOAD, tagged "probe"), so EVALSHA hits; after
// a SCRIPT FLUSH go-redis falls back to EVAL once.

// publishScript appends an event to its flow's stream and publishes it for
// live delivery with its stream ID. The stream entry is one field,
// "event", holding the event's JSON: the same bytes the PUBLISH carries
// ("<sid>\n<event JSON>"), so the request sends them once.
//
// A request that reaches Redis past its fence (see fence.go) stores
// nothing: the entry it just added is removed (the stream too, when that
// leaves it empty) and the reply is a one-element array of its ID.
//
// With gap marks (ARGV[6] "1": on a Redis Cluster, see hub) the message
// also names the entry before the new one ("<sid> ^<previous sid>"), read
// with one XREVRANGE: a subscriber that gets a message whose previous
// entry it has not delivered reads the stream for it first.
//
// The entry names the layer that wrote it (field o, its origin), and so
// does its message ("@<origin>"): a layer that handed a client its own
// writes ahead of the stream marks them in the client's cursor, and
// another layer tells them apart in the stream by it (see position.ownTo);
// a layer's hub knows which writes it heard are other layers' (see
// hub.behind).
//
// KEYS: stream. ARGV: maxlen, ttl ms ("0": do not refresh), channel,
// event JSON, fence (Redis server ms), gap marks ("1" or "0"), origin.
// Returns the new entry's ID.
var publishScript = newScript(`
local prev = ''
if ARGV[6] == '1' then
  local xs = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #xs > 0 then prev = ' ^' .. xs[1][1] end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', ARGV[4], 'o', ARGV[7])
if tonumber(string.match(id, '^%d+')) > tonumber(ARGV[5]) then
  redis.call('XDEL', KEYS[1], id)
  if redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
  return {id}
end
if ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
redis.call('PUBLISH', ARGV[3], id .. prev .. ' @' .. ARGV[7] .. '\n' .. ARGV[4])
return id
`)

// replayScript writes outbox events of one flow, in order, as
// publishScript does, in one call per flow and replay round trip.
//
// An event whose earlier attempt may have reached Redis (a publish or a
// replay that timed out or broke after the request was written) passes
// its JSON prefix up to its ID ({"id":"…",) as needle: the script first
// reads the stream once, newest first, back to the earliest such attempt
// less skewMs, and appends nothing for an event it found. One read serves
// the whole batch (a read per event cost the square of the batch: 300
// events on a 700-entry stream took 435 ms of Redis's single thread). The
// stream is the only dedupe record: a per-event ID set would cost a write
// per publish and grow with every event the stream's MAXLEN already
// dropped.
//
// An event acknowledged from memory passes its tag ("origin.n", see
// cursor.go): the entry keeps it in a second field, "mem", and the message
// carries it after the stream ID ("<sid> <tag>\n<event JSON>").
//
// Fences (see fence.go): a call that reaches Redis past its own fence
// writes nothing and returns Redis's time (ms). An event whose earlier
// attempt is not in the stream while Redis's clock is not past that
// attempt's fence (it may still land) is not written, nor is any event of
// the call after it: the reply then holds fewer results than events.
//
// Gap marks as publishScript's, the first entry written naming the
// stream's last before the call, each next one the entry written before it.
//
// KEYS: stream. ARGV: earliest attempt ms ("0": none), maxlen, ttl ms
// ("0": do not refresh), channel, the call's fence, gap marks ("1" or
// "0"), then per event: needle
// ("" for a first attempt), event JSON, tag ("" none), the fence of its
// earlier attempts, and the entry ID an earlier attempt got ("" unknown).
// An event whose earlier attempt's entry is gone (a failover discarded the
// writes no replica had) is written again at that ID when the stream has
// nothing past it: a client whose cursor passed that ID had the event (on
// the discarded timeline: no entry at or past it exists on this one) and
// skips it, one before it gets it in its place; else it gets a new ID and
// names the lost one in a field "was" and in its message ("~<ID>"), and a
// subscriber whose position lies on the discarded timeline past that ID
// skips it (see cursor.go).
// Returns per event written the new entry's ID, "=" and
// the ID of the entry an earlier attempt wrote if it was there already, or
// "!" and the error that refused it.
var replayScript = newScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > tonumber(ARGV[5]) then return now end
local found, lens, want = {}, {}, 0
for i = 7, #ARGV, 5 do
  local nd = ARGV[i]
  if nd ~= '' and found[nd] == nil then
    found[nd] = false
    lens[#nd] = true
    want = want + 1
  end
end
if want > 0 then
  local from, last = tonumber(ARGV[1]) - ` + skewMs + `, '+'
  while want > 0 do
    local xs = redis.call('XREVRANGE', KEYS[1], last, '-', 'COUNT', 100)
    local stop = #xs < 100
    for _, x in ipairs(xs) do
      if tonumber(string.match(x[1], '^%d+')) < from then stop = true break end
      local f = x[2]
      if f[1] == 'event' then
        for l in pairs(lens) do
          local p = string.sub(f[2], 1, l)
          if found[p] == false then
            found[p] = x[1]
            want = want - 1
          end
        end
      end
    end
    if stop then break end
    last = '(' .. xs[#xs][1]
  end
end
local out, prev = {}, nil
if ARGV[6] == '1' then
  local xs = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  prev = ''
  if #xs > 0 then prev = xs[1][1] end
end
for i = 7, #ARGV, 5 do
  local nd, js, tag, was = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 4]
  if nd ~= '' and found[nd] then
    out[#out + 1] = '=' .. found[nd]
  elseif nd ~= '' and now <= tonumber(ARGV[i + 3]) then
    break
  else
    local fields = {'event', js}
    if tag ~= '' then fields = {'event', js, 'mem', tag} end
    local r, moved
    if was ~= '' then
      r = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], was, unpack(fields))
      if type(r) == 'table' and r.err then r, moved = nil, true end
    end
    if r == nil then
      if moved then
        fields[#fields + 1] = 'was'
        fields[#fields + 1] = was
      end
      r = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
    end
    if type(r) == 'table' and r.err then
      out[#out + 1] = '!' .. r.err
    else
      local head = r
      if tag ~= '' then head = r .. ' ' .. tag end
      if prev ~= nil then
        if prev ~= '' then head = head .. ' ^' .. prev end
        prev = r
      end
      if moved then head = head .. ' ~' .. was end
      redis.call('PUBLISH', ARGV[4], head .. '\n' .. js)
      out[#out + 1] = r
      if nd ~= '' then found[nd] = r end
    end
  end
end
if ARGV[3] ~= '0' then redis.pcall('PEXPIRE', KEYS[1], ARGV[3]) end
return out
`)

// skewMs is how far Redis's clock may be behind this instance's for the
// replay script's lookup of an earlier attempt.
const skewMs = "60000"

// registerScript records a connection (or refreshes it: heartbeat of a
// connection this instance knows). An expiry only ever grows (GT), so a
// late or replayed write never shortens a connection's life.
//
// KEYS: live, connflow, conns, conninfo. ARGV: conn ID, flow ID, expiry ms,
// info JSON, key TTL ms.
var registerScript = newScript(`
redis.call('ZADD', KEYS[1], 'GT', ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], 'GT', ARGV[3], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
redis.call('PEXPIRE', KEYS[4], ARGV[5])
return 1
`)

// beatScript is the heartbeat of a connection this instance registered:
// its expiry in the flow's conns and in live (only growing, GT), and the
// flow keys' TTL only when ARGV[4] is not empty (the caller refreshes it
// every third of the TTL): 3 executed commands, where registerScript runs
// 7. A connection missing from its flow's conns (Redis lost it: a
// restart, an eviction, a cleanup while this instance was cut off) is
// registered again in full. Returns 1, or 2 when it registered again.
//
// KEYS: live, connflow, conns, conninfo. ARGV: conn ID, flow ID, expiry
// ms, key TTL ms or "", info JSON, key TTL ms (for a full register).
var beatScript = newScript(`
local added = redis.call('ZADD', KEYS[3], 'GT', ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[1], 'GT', ARGV[3], ARGV[1])
if added == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
  return 2
end
if ARGV[4] ~= '' then
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
return 1
`)

// heartbeatScript refreshes a connection this instance did not register
// (expiry only growing, as above), whose flow the caller read from
// connflow first: every key it touches is in KEYS (scriptkeys checks it).
// Returns 0 for an unknown connection, -1 when its flow is no longer the
// one given (the caller reads it again).
//
// KEYS: live, connflow, conns, conninfo (of the flow). ARGV: conn ID,
// expiry ms, key TTL ms, flow ID.
var heartbeatScript = newScript(`
local f = redis.call('HGET', KEYS[2], ARGV[1])
if not f then return 0 end
if f ~= ARGV[4] then return -1 end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], 'GT', ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[4], ARGV[3])
return 1
`)

// expiredScript lists up to ARGV[2] connections whose expiry is before
// ARGV[1] (ms) with their flows ("" when connflow has none): a read, for
// the cleanup's removeScript to declare the flows' keys.
//
// KEYS: live, connflow. Returns id, flow, id, flow, ...
var expiredScript = newScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return {} end
local fs = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = fs[i] or ''
end
return out
`)

// removeScript unregisters connections, each with the flow the caller
// read for it and the index in KEYS of that flow's conns key (conninfo
// follows it; 0: no flow known, only the global entries go). With ARGV[1]
// non-empty (a cleanup) a connection is removed only if its expiry is
// still before ARGV[1] (a heartbeat since the read keeps it). A connection
// whose flow is no longer the one given is left alone and returned, for
// the caller to read again. Every key it touches is in KEYS.
//
// KEYS: live, connflow, then per flow its conns and conninfo. ARGV: now ms
// or "", then per connection: ID, flow ID, KEYS index. Returns the number
// removed, then the IDs whose flow changed.
var removeScript = newScript(`
local out = {0}
for i = 2, #ARGV, 3 do
  local id, f, k = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local due = true
  if ARGV[1] ~= '' then
    local s = redis.call('ZSCORE', KEYS[1], id)
    due = s ~= false and tonumber(s) < tonumber(ARGV[1])
  end
  if due then
    local cur = redis.call('HGET', KEYS[2], id)
    if cur and cur ~= f then
      out[#out + 1] = id
    else
      if k > 0 then
        redis.call('ZREM', KEYS[k], id)
        redis.call('HDEL', KEYS[k + 1], id)
      end
      redis.call('HDEL', KEYS[2], id)
      out[1] = out[1] + redis.call('ZREM', KEYS[1], id)
    end
  end
end
return out
`)

// fillScript caches a flow's state unless the lease is stale: a non-empty
// lease must equal the flow's current generation ("0" when it has none).
// The state is stored after the generation it was filled at
// ("<generation>\n<state JSON>"): a read serves it only while the flow is
// still at that generation, so an invalidation holds in every cache epoch,
// not only in the one it was made in (see Cache.get). Returns 1 when
// stored, 0 when refused.
//
// KEYS: state, meta, gen. ARGV: lease, state JSON, meta JSON, ttl ms.
var fillScript = newScript(`
local g = redis.call('GET', KEYS[3]) or '0'
if ARGV[1] ~= '' and g ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], g .. '\n' .. ARGV[2], 'PX', ARGV[4])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1
`)

// invalidateScript drops a flow's cached state and bumps its generation so
// that leases issued before are refused.
//
// KEYS: state, meta, gen. ARGV: gen TTL ms.
var invalidateScript = newScript(`
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
return 1
`)

// script keeps its source next to go-redis's Script: Script.Load inside a
// pipeline would record an empty hash before the pipeline runs.
type script struct {
	src string
	*redis.Script
}

func newScript(src string) script { return script{src: src, Script: redis.NewScript(src)} }

var allScripts = []script{publishScript, replayScript, registerScript, beatScript, heartbeatScript, expiredScript, removeScript, fillScript, invalidateScript, leaseScript}

// loadScripts loads every script in one round trip; on a cluster one
// round trip per script, to every node (go-redis's ClusterClient.ScriptLoad:
// a pipeline would send a command without keys to one node), replicas
// included so that a replica promoted by a failover has them too.
func loadScripts(ctx context.Context, rdb redis.UniversalClient) error {
	if _, ok := rdb.(*redis.ClusterClient); ok {
		for _, s := range allScripts {
			if err := rdb.ScriptLoad(ctx, s.src).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, s := range allScripts {
			p.ScriptLoad(ctx, s.src)
		}
		return nil
	})
	return err
}
