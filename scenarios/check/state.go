package check

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/history"
)

// versionAt is a version that became known at time at.
type versionAt struct {
	at      time.Duration
	version int64
}

// completed returns, per flow, the successful ops of kind in completion
// order, each carrying the highest version completed so far (and when that
// one completed). Ops whose Value is one of the excluded (a deferred
// invalidation) did not complete.
func completed(h history.History, kind string, excluded ...string) map[string][]versionAt {
	m := map[string][]versionAt{}
	for _, o := range h.Ops {
		if o.Kind == kind && o.OK && !slices.Contains(excluded, o.Value) {
			m[o.Flow] = append(m[o.Flow], versionAt{o.Return, o.Version})
		}
	}
	for _, vs := range m {
		sort.SliceStable(vs, func(i, j int) bool { return vs[i].at < vs[j].at })
		for i := 1; i < len(vs); i++ {
			if vs[i].version < vs[i-1].version {
				vs[i].version, vs[i].at = vs[i-1].version, vs[i-1].at
			}
		}
	}
	return m
}

// highestBy returns the highest version among vs (as made by completed)
// completed at or before t, and when it completed.
func highestBy(vs []versionAt, t time.Duration) (versionAt, bool) {
	i := sort.Search(len(vs), func(i int) bool { return vs[i].at > t })
	if i == 0 {
		return versionAt{}, false
	}
	return vs[i-1], true
}

// StaleRead judges ErrStaleRead: a successful cache_get that hits (Version >
// 0) must return at least the highest version of the flow's invalidations
// that completed before the get was called. A deferred invalidation (the
// layer could not reach Redis) completed only on the instance that deferred
// it: it binds that instance's reads (by Op.Instance), not the others'.
// Gets called before any invalidation of their flow completed are not
// judged. It also measures the hit rate of successful gets.
func StaleRead(h history.History, c Config) Result {
	c = c.withDefaults()
	r := result("stale_read", ErrStaleRead.Error())
	inval := completed(h, history.CacheInval, history.Deferred)
	deferred := map[string]*history.History{}
	for _, o := range h.Ops {
		if o.Kind == history.CacheInval && o.Value == history.Deferred {
			if deferred[o.Instance] == nil {
				deferred[o.Instance] = &history.History{}
			}
			deferred[o.Instance].Ops = append(deferred[o.Instance].Ops, o)
		}
	}
	deferredOn := map[string]map[string][]versionAt{}
	for inst, dh := range deferred {
		deferredOn[inst] = completed(*dh, history.CacheInval)
	}
	writes := completed(h, history.DBWrite)
	fs := faultsOf(h)
	var gets, hits, judged, stale int
	for _, g := range sortedOps(h) {
		if g.Kind != history.CacheGet || !g.OK {
			continue
		}
		gets++
		if g.Version > 0 {
			hits++
		}
		inv, ok := highestBy(inval[g.Flow], g.Call)
		if d, dok := highestBy(deferredOn[g.Instance][g.Flow], g.Call); dok && (!ok || d.version > inv.version) {
			inv, ok = d, true
		}
		if !ok {
			continue
		}
		judged++
		if g.Version == 0 || g.Version >= inv.version {
			continue
		}
		stale++
		auth := ""
		if w, ok := highestBy(writes[g.Flow], g.Call); ok {
			auth = fmt.Sprintf(" (authoritative version %d since %s)", w.version, secs(w.at))
		}
		r.Evidence = append(r.Evidence, fmt.Sprintf("cache_get of %s by %s at %s (%s) returned version %d; the invalidation for version %d completed at %s%s",
			g.Flow, g.Client, secs(g.Call), where(fs, g.Call), g.Version, inv.version, secs(inv.at), auth))
	}
	if gets == 0 {
		return r.noData("no successful cache read")
	}
	r.Metrics["stale_reads"] = float64(stale)
	r.Metrics["cache_reads"] = float64(gets)
	r.Metrics["cache_hit_rate"] = 100 * float64(hits) / float64(gets)
	var fails []error
	if stale > 0 {
		fails = append(fails, fmt.Errorf("%w: %d of %d reads after an invalidation", ErrStaleRead, stale, judged))
	}
	unjudged := ""
	if judged == 0 {
		unjudged = "no cache read follows a completed invalidation"
	}
	return r.finish(c, fails, unjudged)
}

// conn is what the history says about one registry connection.
type conn struct {
	id, flow string
	// refreshed holds one mark per successful register or heartbeat: at
	// its Return (or later: see effective), the latest Call of those that
	// took effect by then. tried holds
	// one mark per register or heartbeat attempt: at its Call, the latest
	// Return of those called by then. Both sorted by at.
	refreshed, tried []mark
	// registered is when the first successful register took effect (its
	// return, or later: see effective).
	registered time.Duration
	isReg      bool
	// unreg is the Call of the first unregister attempt (forever if none);
	// unregDone the Return of the first successful one (forever if none),
	// unregDoneCall its Call.
	unreg, unregDone, unregDoneCall time.Duration
	// inst is the instance its register and heartbeat calls went through
	// (Op.Instance, "" when not recorded); registers are the calls of its
	// registers; stops are the calls of that instance's graceful stops
	// (instance_exit "stop"), each of which ends the connection until it
	// registers again: the stop closes it (see mustAppear).
	inst             string
	registers, stops []time.Duration
}

// mark is an instant and the latest instant known by then.
type mark struct{ at, latest time.Duration }

// marks sorts ms by at and makes each latest the running maximum.
func marks(ms []mark) []mark {
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].at < ms[j].at })
	for i := 1; i < len(ms); i++ {
		ms[i].latest = max(ms[i].latest, ms[i-1].latest)
	}
	return ms
}

// latestBy returns the latest instant of the marks (as made by marks) at
// or before t.
func latestBy(ms []mark, t time.Duration) (time.Duration, bool) {
	i := sort.Search(len(ms), func(i int) bool { return ms[i].at > t })
	if i == 0 {
		return 0, false
	}
	return ms[i-1].latest, true
}

// effective is when a registry write called at t holds readers: at once
// outside fault windows; when called inside a window (ws, merged), or less
// than resync after one ended, from that window's end + resync. Until then
// nothing can tell the other instances that the connection lives: a cut-off
// instance's connections look, from Redis, exactly like a dead instance's,
// which must disappear within TTL + cleanup; so it answers from memory and
// writes them back once it notices Redis is back, within resync.
func effective(ws []window, resync, t time.Duration) time.Duration {
	for _, w := range ws {
		if w.End == forever && t >= w.Start {
			return forever
		}
		if t >= w.Start && t < w.End+resync {
			t = w.End + resync
		}
	}
	return t
}

// conns gathers registry connections by flow, each flow's sorted by id;
// a successful register or heartbeat holds from max(its return, its call's
// effective instant).
func conns(h history.History, c Config) map[string][]*conn {
	ws := windowsOf(faultsOf(h))
	byID := map[string]*conn{}
	var order []string
	for _, o := range sortedOps(h) {
		switch o.Kind {
		case history.RegRegister, history.RegHeartbeat, history.RegUnreg:
		default:
			continue
		}
		cn := byID[o.Value]
		if cn == nil {
			cn = &conn{id: o.Value, flow: o.Flow, unreg: forever, unregDone: forever}
			byID[o.Value] = cn
			order = append(order, o.Value)
		}
		if o.Kind == history.RegUnreg {
			cn.unreg = min(cn.unreg, o.Call)
			if o.OK && o.Return < cn.unregDone {
				cn.unregDone, cn.unregDoneCall = o.Return, o.Call
			}
			continue
		}
		cn.tried = append(cn.tried, mark{at: o.Call, latest: o.Return})
		if o.Instance != "" {
			cn.inst = o.Instance
		}
		if o.Kind == history.RegRegister {
			cn.registers = append(cn.registers, o.Call)
		}
		if o.OK {
			at := max(o.Return, effective(ws, c.Resync, o.Call))
			cn.refreshed = append(cn.refreshed, mark{at: at, latest: o.Call})
			if o.Kind == history.RegRegister && (!cn.isReg || at < cn.registered) {
				cn.registered, cn.isReg = at, true
			}
		}
	}
	stops := map[string][]time.Duration{}
	for _, o := range sortedOps(h) {
		if o.Kind == history.InstanceExit && o.Value == ExitStop {
			stops[o.Instance] = append(stops[o.Instance], o.Call)
		}
	}
	m := map[string][]*conn{}
	sort.Strings(order)
	for _, id := range order {
		cn := byID[id]
		cn.refreshed, cn.tried = marks(cn.refreshed), marks(cn.tried)
		if cn.inst != "" {
			cn.stops = stops[cn.inst]
		}
		m[cn.flow] = append(m[cn.flow], cn)
	}
	return m
}

// mustAppear reports whether a registry read o (a lookup or a count) must
// see cn (ErrVanished's rule below); last is the call of the refresh that
// keeps it alive.
func (cn *conn) mustAppear(o history.Op, c Config) (last time.Duration, must bool) {
	last, ok := latestBy(cn.refreshed, o.Call)
	for _, w := range c.Wipes {
		if last < w && w <= o.Call {
			return last, false // Redis lost it since: owed from its next refresh
		}
	}
	return last, ok && cn.isReg && cn.registered <= o.Call && cn.unreg >= o.Return && o.Return-last < c.RegistryTTL && !cn.stopped(o)
}

// memLookup is what an instance that may have answered a lookup from
// memory can know of the flow's connections: blind, it has not read the
// flow from Redis since it last started (at started), and knows only the
// connections registered on it since; else its last read from Redis was
// called at read, and it knows the other instances' connections as that
// read saw them.
type memLookup struct {
	blind         bool
	started, read time.Duration
}

// owes reports whether lookup l, answered from memory, must list cn as far
// as what its instance can know goes (mustAppear judges the rest).
func (m memLookup) owes(cn *conn, l history.Op, c Config) bool {
	switch {
	case m.blind:
		return cn.inst == l.Instance && cn.lastRegister(l.Call) >= m.started
	case cn.inst == l.Instance:
		return true
	}
	asOf := l
	asOf.Call = m.read
	_, must := cn.mustAppear(asOf, c)
	return must
}

// memLookups are the lookups that may have been answered from memory, with
// what their instance could know (memLookup). A process that starts while
// Redis is unreachable has seen no other instance's connections, nor those
// of the process it replaced (explore's registry-cdb77ee7,
// registry-6b1dddf5); one that read the flow before knows another
// instance's connection until the expiry that read saw, not the heartbeats
// that went to Redis since (registry-26a5b9cc-3; explore seed 21212,
// registry-b1809e93), which holds in a window of Redis-side faults or less
// than Config.Resync after one: later, a layer still answering from memory
// has not noticed Redis is back, and owes what Redis holds
// (TestRegistryResyncCaught). A lookup says it answered from memory (mode
// memory) or overlaps a window of Redis-side faults, where it may have
// whatever mode it reports: a lookup that misses its budget answers from
// memory before the layer changes mode, and a layer need not say which
// answered (explore seed 18181, registry-2ac417fc: a process restarted
// 100 ms before a hang listed none of the other instance's connections,
// mode redis).
func memLookups(h history.History, c Config) map[lookupKey]memLookup {
	out := map[lookupKey]memLookup{}
	started := map[string]time.Duration{} // instance → return of its last exit
	read := map[[2]string]time.Duration{} // instance, flow → call of its last lookup from Redis
	cut := windowsOf(redisSide(faultsOf(h)))
	resync := slices.Clone(cut)
	for i := range resync {
		resync[i].End += c.Resync
	}
	for _, o := range sortedOps(h) {
		switch {
		case o.Kind == history.InstanceExit:
			started[o.Instance] = o.Return
		case o.Kind == history.RegLookup && o.OK && o.Instance != "":
			k := [2]string{o.Instance, o.Flow}
			if o.Mode == impl.ModeMemory || overlapsAny(cut, o) {
				at, ok := read[k]
				if blind := !ok || at < started[o.Instance]; blind || overlapsAny(resync, o) {
					out[keyOf(o)] = memLookup{blind: blind, started: started[o.Instance], read: at}
				}
				continue
			}
			read[k] = o.Call
		}
	}
	return out
}

// lastRegister is the call of cn's last register called before t (0 if
// none).
func (cn *conn) lastRegister(t time.Duration) time.Duration {
	var reg time.Duration
	for _, r := range cn.registers {
		if r < t {
			reg = r
		}
	}
	return reg
}

// lookupKey names a lookup op.
type lookupKey struct {
	client, flow string
	call         time.Duration
}

func keyOf(o history.Op) lookupKey { return lookupKey{o.Client, o.Flow, o.Call} }

// stopped reports whether a graceful stop of cn's instance, called before
// o returned and after cn's last register called before it, closed cn:
// the stop unregisters its connections (docs/http.md), and cn lives again
// only once it registers on the instance back (explore's registry-cdb77ee7:
// lookups after inst-1's stop were held to list its connections until
// their TTL).
func (cn *conn) stopped(o history.Op) bool {
	reg := cn.lastRegister(o.Call)
	for _, s := range cn.stops {
		if s >= reg && s < o.Return {
			return true
		}
	}
	return false
}

// expired reports whether a registry read o must not see cn (ErrLingered's
// rule below); lastTry is the return of cn's last register or heartbeat
// attempt called before o returned, tried whether there was one.
func (cn *conn) expired(o history.Op, c Config) (lastTry time.Duration, tried, gone bool) {
	lastTry, tried = latestBy(cn.tried, o.Return)
	return lastTry, tried, tried && o.Call-lastTry > c.RegistryTTL+c.CleanupInterval
}

// unregistered reports whether a registry read o must not see cn because
// cn was unregistered (ErrGhost's rule below): an unregister of it returned
// successfully before o was called, every register or heartbeat attempt of
// it was called and returned before that unregister was called, and the
// unregister was not called inside a fault window (fs), where a layer may
// defer it until Redis is back.
func (cn *conn) unregistered(o history.Op, fs []history.Fault) bool {
	if cn.unregDone >= o.Call || phaseIn(fs, cn.unregDoneCall) == During || len(cn.tried) == 0 {
		return false
	}
	last := cn.tried[len(cn.tried)-1]
	return last.at < cn.unregDoneCall && last.latest < cn.unregDoneCall
}

// Registry judges registry visibility on every successful reg_lookup. Each
// rule holds whenever the layer's effects happen between a call and its
// return, so neither fires on a lookup that races a heartbeat or the TTL.
//
// ErrVanished: a connection must be in the lookup when its registration
// completed before the lookup was called, it was not being unregistered
// before the lookup returned, and the lookup returned less than
// Config.RegistryTTL after the call of its last successful register or
// heartbeat that returned before the lookup was called (the refresh took
// effect no earlier than that call). A refresh called inside a fault
// window, or less than Config.Resync after one ended, counts only from the
// window's end + Resync (see effective).
//
// ErrLingered: a connection must not be in the lookup when the lookup was
// called more than RegistryTTL + Config.CleanupInterval after the return of
// its last register or heartbeat attempt called before the lookup returned
// (successful or not: a failed one may have taken effect).
//
// ErrGhost: a connection must not be in the lookup when it was unregistered
// before the lookup was called (see unregistered): an explicit unregister
// takes effect at once, on every instance, not when the TTL would have
// run out (at the tracker's 300 s TTL that would be a five-minute ghost).
//
// With Config.SkipFaultWindows, lookups called inside a fault window are
// not judged. Each connection counts once.
func Registry(h history.History, c Config) Result {
	c = c.withDefaults()
	r := result("registry", ErrVanished.Error()+"; "+ErrLingered.Error()+"; "+ErrGhost.Error())
	fs := faultsOf(h)
	byFlow := conns(h, c)
	var vanished, lingered, ghosts findings
	var lookups, judged int
	mem := memLookups(h, c)
	for _, l := range sortedOps(h) {
		if l.Kind != history.RegLookup || !l.OK {
			continue
		}
		lookups++
		if c.SkipFaultWindows && phaseIn(fs, l.Call) == During {
			continue
		}
		seen := make(map[string]bool, len(l.Values))
		for _, id := range l.Values {
			seen[id] = true
		}
		counted := false
		for _, cn := range byFlow[l.Flow] {
			if m, ok := mem[keyOf(l)]; ok && !m.owes(cn, l, c) {
				continue
			}
			if last, must := cn.mustAppear(l, c); must {
				counted = true
				if !seen[cn.id] {
					vanished.note(cn.id, func() string {
						return fmt.Sprintf("lookup of %s by %s at %s (%s) returned at %s: last heartbeat called at %s, %s before (TTL %s)",
							l.Flow, l.Client, secs(l.Call), where(fs, l.Call), secs(l.Return), secs(last), (l.Return - last).Round(time.Millisecond), c.RegistryTTL)
					})
				}
				continue
			}
			if cn.unregistered(l, fs) {
				counted = true
				if seen[cn.id] {
					ghosts.note(cn.id, func() string {
						return fmt.Sprintf("lookup of %s by %s at %s (%s): unregistered at %s, %s before",
							l.Flow, l.Client, secs(l.Call), where(fs, l.Call), secs(cn.unregDone), (l.Call - cn.unregDone).Round(time.Millisecond))
					})
				}
				continue
			}
			if lastTry, _, gone := cn.expired(l, c); gone {
				counted = true
				if seen[cn.id] {
					lingered.note(cn.id, func() string {
						return fmt.Sprintf("lookup of %s by %s at %s (%s): last heartbeat attempt returned at %s, %s before (TTL + cleanup %s)",
							l.Flow, l.Client, secs(l.Call), where(fs, l.Call), secs(lastTry), (l.Call - lastTry).Round(time.Millisecond), c.RegistryTTL+c.CleanupInterval)
					})
				}
			}
		}
		if counted {
			judged++
		}
	}
	if lookups == 0 {
		return r.noData("no successful registry lookup")
	}
	for _, id := range vanished.order {
		r.Evidence = append(r.Evidence, fmt.Sprintf("connection %s missing from %d lookups while heartbeating; first: %s", id, vanished.n[id], vanished.first[id]))
	}
	for _, id := range lingered.order {
		r.Evidence = append(r.Evidence, fmt.Sprintf("connection %s still listed by %d lookups after it stopped heartbeating; first: %s", id, lingered.n[id], lingered.first[id]))
	}
	for _, id := range ghosts.order {
		r.Evidence = append(r.Evidence, fmt.Sprintf("connection %s still listed by %d lookups after its unregister returned; first: %s", id, ghosts.n[id], ghosts.first[id]))
	}
	r.Metrics["vanished"] = float64(len(vanished.order))
	r.Metrics["lingered"] = float64(len(lingered.order))
	r.Metrics["ghosts"] = float64(len(ghosts.order))
	r.Metrics["lookups"] = float64(judged)
	var fails []error
	if n := len(vanished.order); n > 0 {
		fails = append(fails, fmt.Errorf("%w: %d connections", ErrVanished, n))
	}
	if n := len(lingered.order); n > 0 {
		fails = append(fails, fmt.Errorf("%w: %d connections", ErrLingered, n))
	}
	if n := len(ghosts.order); n > 0 {
		fails = append(fails, fmt.Errorf("%w: %d connections", ErrGhost, n))
	}
	unjudged := ""
	if judged == 0 {
		unjudged = "no lookup had a connection to require or forbid"
	}
	return r.finish(c, fails, unjudged)
}

// findings counts, per connection in first-seen order, how often a rule
// broke and describes the first time.
type findings struct {
	order []string
	n     map[string]int
	first map[string]string
}

func (f *findings) note(id string, describe func() string) {
	if f.n == nil {
		f.n, f.first = map[string]int{}, map[string]string{}
	}
	if f.n[id] == 0 {
		f.order = append(f.order, id)
		f.first[id] = describe()
	}
	f.n[id]++
}
