package check

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
)

// LayerKinds are the kinds of call made to the layer under test: the ones
// fallback, recovery and error rate are measured on.
var LayerKinds = []string{
	history.Publish, history.Read,
	history.CacheGet, history.CacheSet, history.CacheInval,
	history.RegRegister, history.RegHeartbeat, history.RegUnreg, history.RegLookup, history.RegCount,
}

// LatencyKinds are the kinds whose latency is measured (every kind with a
// meaningful call → return time: deliver is publish → receive).
var LatencyKinds = append(append([]string(nil), LayerKinds...), history.Deliver, history.DBWrite, history.Health)

func isLayer(kind string) bool {
	for _, k := range LayerKinds {
		if k == kind {
			return true
		}
	}
	return false
}

// runEnd is the last instant the history covers.
func runEnd(h history.History) time.Duration {
	end := h.End
	for _, o := range h.Ops {
		end = max(end, o.Return, o.Call)
	}
	return end
}

// describeOp names an op for evidence.
func describeOp(o history.Op) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s by %s", o.Kind, o.Client)
	var about []string
	if o.Flow != "" {
		about = append(about, "flow "+o.Flow)
	}
	if o.EventID != "" {
		about = append(about, "event "+o.EventID)
	}
	if len(about) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(about, ", "))
	}
	return b.String()
}

// Budget judges ErrBlocked: every op of a kind in Config.BudgetKinds,
// successful or not, returned within Config.Budget[kind] (50ms for a kind
// with no budget of its own). The harness stalls of the history (windows in
// which the harness process itself did not run, merged) are subtracted
// from each call by their overlap with its [call, return] interval, never
// more: a call over budget only because the harness froze passes, and is
// counted in metric stall_excused. Evidence lists the slowest offenders
// first, with the phase they were called in and any stall subtracted.
// Metrics harness_stalls and harness_stall_max_ms describe the stalls.
func Budget(h history.History, c Config) Result {
	c = c.withDefaults()
	r := result("budget", ErrBlocked.Error())
	budget := map[string]time.Duration{}
	for _, k := range c.BudgetKinds {
		budget[k] = defaultBudget
		if b, ok := c.Budget[k]; ok {
			budget[k] = b
		}
	}
	fs := faultsOf(h)
	ss := stallsOf(h)
	type late struct {
		o      history.Op
		stalls time.Duration
	}
	var over, excused []late
	var worst time.Duration
	judged := 0
	for _, o := range h.Ops {
		b, ok := budget[o.Kind]
		if !ok {
			continue
		}
		judged++
		worst = max(worst, o.Latency())
		if o.Latency() <= b {
			continue
		}
		l := late{o, stalled(ss, o.Call, o.Return)}
		if o.Latency()-l.stalls > b {
			over = append(over, l)
		} else {
			excused = append(excused, l)
		}
	}
	if judged == 0 {
		return r.noData("no op of kind %s", strings.Join(c.BudgetKinds, ", "))
	}
	sort.SliceStable(over, func(i, j int) bool { return over[i].o.Latency() > over[j].o.Latency() })
	for _, l := range over {
		o := l.o
		took := o.Latency().Round(time.Millisecond).String()
		if l.stalls > 0 {
			took = fmt.Sprintf("%s (%s after subtracting %s of harness stall)", took,
				(o.Latency() - l.stalls).Round(time.Millisecond), l.stalls.Round(time.Millisecond))
		}
		line := fmt.Sprintf("%s took %s (budget %s), called at %s %s", describeOp(o),
			took, budget[o.Kind], secs(o.Call), where(fs, o.Call))
		if o.Err != "" {
			line += ": " + o.Err
		}
		r.Evidence = append(r.Evidence, line)
	}
	if len(excused) > 0 {
		sort.SliceStable(excused, func(i, j int) bool { return excused[i].o.Latency() > excused[j].o.Latency() })
		l := excused[0]
		r.Evidence = append(r.Evidence, fmt.Sprintf("%d calls over budget only for harness stalls (not the layer's); slowest: %s took %s, %s of it a harness stall, called at %s",
			len(excused), describeOp(l.o), l.o.Latency().Round(time.Millisecond), l.stalls.Round(time.Millisecond), secs(l.o.Call)))
	}
	var longest time.Duration
	for _, st := range ss {
		longest = max(longest, st.End-st.Start)
	}
	r.Metrics["over_budget"] = float64(len(over))
	r.Metrics["budget_worst_ms"] = ms(worst)
	r.Metrics["stall_excused"] = float64(len(excused))
	r.Metrics["harness_stalls"] = float64(len(ss))
	r.Metrics["harness_stall_max_ms"] = ms(longest)
	var fails []error
	if len(over) > 0 {
		w := over[0]
		fails = append(fails, fmt.Errorf("%w: %d of %d calls over budget, worst %s", ErrBlocked, len(over), judged, w.o.Latency().Round(time.Millisecond)))
	}
	return r.finish(c, fails, "")
}

// firstAfter returns the earliest Return among ops called in [from, to) that
// match, and how many layer calls were made in that span.
func firstAfter(ops []history.Op, from, to time.Duration, match func(history.Op) bool) (history.Op, bool, int) {
	var best history.Op
	found, tried := false, 0
	for _, o := range ops {
		if o.Call < from || o.Call >= to || !isLayer(o.Kind) {
			continue
		}
		tried++
		if match(o) && (!found || o.Return < best.Return) {
			best, found = o, true
		}
	}
	return best, found, tried
}

// bounded judges, for each merged fault window, the time from mark(w) to the
// first layer call matching match (called in [mark, until(w))), against
// limit, less the harness stalls inside that time (a host stall is the
// harness's, not the layer's). It is the shared body of FallbackTime and
// RecoverTime. Windows
// that cannot be judged are listed in the evidence; the result is
// INCONCLUSIVE only when no window could be judged.
type bounded struct {
	name, metric string
	sentinel     error
	limit        time.Duration
	mark         func(window) time.Duration
	until        func(i int, ws []window) time.Duration
	match        func(history.Op) bool
	event, goal  string
	// needMode: the result needs ops that report their Mode.
	needMode bool
}

func (b bounded) judge(h history.History, c Config) Result {
	r := result(b.name, b.sentinel.Error())
	ws := windowsOf(faultsOf(h))
	if len(ws) == 0 {
		return r.noData("no fault")
	}
	ops := sortedOps(h)
	if b.needMode && !anyMode(ops) {
		return r.noData("no call reports the mode it was served in")
	}
	end := runEnd(h)
	ss := stallsOf(h)
	var fails []error
	var unjudged []string
	var worst time.Duration
	measured := false
	for i, w := range ws {
		at := b.mark(w)
		if at == forever {
			unjudged = append(unjudged, fmt.Sprintf("fault %s never %s", w.name(), b.event))
			continue
		}
		to := b.until(i, ws)
		o, ok, tried := firstAfter(ops, at, to, b.match)
		if ok {
			stall := stalled(ss, at, o.Return)
			d := max(o.Return-at-stall, 0)
			measured = true
			worst = max(worst, d)
			line := fmt.Sprintf("fault %s %s at %s: %s %s after (%s returned at %s)", w.name(), b.event, secs(at), b.goal, d.Round(time.Millisecond), describeOp(o), secs(o.Return))
			if stall > 0 {
				line += fmt.Sprintf(", %s of harness stall subtracted", stall.Round(time.Millisecond))
			}
			if d > b.limit {
				fails = append(fails, fmt.Errorf("%w: fault %s: %s > %s", b.sentinel, w.name(), d.Round(time.Millisecond), b.limit))
				line += fmt.Sprintf(", over the %s bound", b.limit)
			}
			r.Evidence = append(r.Evidence, line)
			continue
		}
		span := min(to, end) - at
		span -= stalled(ss, at, at+span)
		if tried == 0 || span < b.limit {
			unjudged = append(unjudged, fmt.Sprintf("fault %s: %d calls in the %s observed after it %s", w.name(), tried, span.Round(time.Millisecond), b.event))
			continue
		}
		fails = append(fails, fmt.Errorf("%w: fault %s: not within %s", b.sentinel, w.name(), span.Round(time.Millisecond)))
		r.Evidence = append(r.Evidence, fmt.Sprintf("fault %s %s at %s: %s never, %d calls over the next %s", w.name(), b.event, secs(at), b.goal, tried, span.Round(time.Millisecond)))
	}
	if measured {
		r.Metrics[b.metric] = ms(worst)
	}
	r.Evidence = append(r.Evidence, unjudged...)
	why := ""
	if !measured && len(fails) == 0 {
		why = strings.Join(unjudged, "; ")
	}
	return r.finish(c, joinFails(fails), why)
}

func anyMode(ops []history.Op) bool {
	for _, o := range ops {
		if o.Mode != "" && isLayer(o.Kind) {
			return true
		}
	}
	return false
}

// FallbackTime judges ErrNoFallback: for each fault window (overlapping
// faults merged), the time from its start to the earliest return of a
// successful layer call made after it started — a publish, or any call
// served in memory mode — is at most Config.MaxFallback. A window after
// which no such call is seen fails only when calls were made and at least
// MaxFallback of the run was observed after its start; otherwise it is not
// judged. Metric fallback_ms is the worst window.
func FallbackTime(h history.History, c Config) Result {
	c = c.withDefaults()
	return bounded{
		name: "fallback_time", metric: "fallback_ms", sentinel: ErrNoFallback, limit: c.MaxFallback,
		mark:  func(w window) time.Duration { return w.Start },
		until: func(int, []window) time.Duration { return forever },
		match: func(o history.Op) bool { return o.OK && (o.Kind == history.Publish || o.Mode == impl.ModeMemory) },
		event: "started", goal: "first successful call",
	}.judge(h, c)
}

// RecoverTime judges ErrNoRecovery: for each fault window (overlapping
// faults merged) that ended, the time from its end to the earliest return
// of a successful layer call served from Redis (Mode "redis") made before
// the next window starts is at most Config.MaxRecover. A window is not
// judged when no call was made after it, or less than MaxRecover was
// observed before the next window or the end of the run; a fault never
// undone is not judged, nor is a run where no call reports its Mode. Metric
// recover_ms is the worst window.
func RecoverTime(h history.History, c Config) Result {
	c = c.withDefaults()
	return bounded{
		name: "recover_time", metric: "recover_ms", sentinel: ErrNoRecovery, limit: c.MaxRecover,
		mark: func(w window) time.Duration { return w.End },
		until: func(i int, ws []window) time.Duration {
			if i+1 < len(ws) {
				return ws[i+1].Start
			}
			return forever
		},
		match: func(o history.Op) bool { return o.OK && o.Mode == impl.ModeRedis },
		event: "ended", goal: "first call served from redis", needMode: true,
	}.judge(h, c)
}

// ErrorRate judges ErrErrorRate: the share of failed layer calls in each
// phase (by call time) is at most Config.MaxErrorRate percent. A phase
// without calls has no metric.
func ErrorRate(h history.History, c Config) Result {
	c = c.withDefaults()
	r := result("error_rate", ErrErrorRate.Error())
	fs := faultsOf(h)
	type tally struct {
		n, failed int
		byKind    map[string]int
		first     history.Op
	}
	per := map[Period]*tally{}
	for _, o := range sortedOps(h) {
		if !isLayer(o.Kind) {
			continue
		}
		p := phaseIn(fs, o.Call)
		t := per[p]
		if t == nil {
			t = &tally{byKind: map[string]int{}}
			per[p] = t
		}
		t.n++
		if !o.OK {
			t.failed++
			t.byKind[o.Kind]++
			if t.failed == 1 {
				t.first = o
			}
		}
	}
	if len(per) == 0 {
		return r.noData("no layer call")
	}
	var fails []error
	for _, p := range Periods {
		t := per[p]
		if t == nil {
			continue
		}
		rate := 100 * float64(t.failed) / float64(t.n)
		r.Metrics["error_rate_"+string(p)] = rate
		if t.failed == 0 {
			continue
		}
		var kinds []string
		for _, k := range sortedKeys(t.byKind) {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, t.byKind[k]))
		}
		over := c.MaxErrorRate >= 0 && rate > c.MaxErrorRate
		line := fmt.Sprintf("%s: %d of %d calls failed (%.2f%%; %s); first: %s at %s: %s",
			p, t.failed, t.n, rate, strings.Join(kinds, ", "), describeOp(t.first), secs(t.first.Call), t.first.Err)
		if over {
			line += fmt.Sprintf("; bound %g%%", c.MaxErrorRate)
			fails = append(fails, fmt.Errorf("%w: %s %.2f%% > %g%%", ErrErrorRate, p, rate, c.MaxErrorRate))
		}
		r.Evidence = append(r.Evidence, line)
	}
	return r.finish(c, fails, "")
}

// Latency measures the latency of every kind in LatencyKinds, per phase and
// over the whole run: metrics <kind>_{p50,p90,p99,max}_ms_<phase> and
// <kind>_{p50,p90,p99,max}_ms. It judges nothing (bounds on these metrics
// are gate thresholds): PASS when anything was measured.
func Latency(h history.History, c Config) Result {
	c = c.withDefaults()
	r := result("latency", "latency is measured per phase; its bounds are gate thresholds")
	fs := faultsOf(h)
	lat := map[string][]time.Duration{}
	for _, o := range h.Ops {
		if !measured(o.Kind) {
			continue
		}
		lat[o.Kind] = append(lat[o.Kind], o.Latency())
		k := o.Kind + "\x00" + string(phaseIn(fs, o.Call))
		lat[k] = append(lat[k], o.Latency())
	}
	if len(lat) == 0 {
		return r.noData("no op to time")
	}
	for _, key := range sortedKeys(lat) {
		xs := lat[key]
		sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
		kind, phase, _ := strings.Cut(key, "\x00")
		for _, s := range latencyStats {
			r.Metrics[latencyName(kind, s.name, Period(phase))] = ms(rank(xs, s.p))
		}
	}
	return r.finish(c, nil, "")
}

func measured(kind string) bool {
	for _, k := range LatencyKinds {
		if k == kind {
			return true
		}
	}
	return false
}

// latencyStats are the statistics Latency reports.
var latencyStats = []struct {
	name string
	p    float64
}{{"p50", 50}, {"p90", 90}, {"p99", 99}, {"max", 100}}

// latencyName is the metric name of a latency statistic; phase "" is the
// whole run.
func latencyName(kind, stat string, phase Period) string {
	if phase == "" {
		return kind + "_" + stat + "_ms"
	}
	return kind + "_" + stat + "_ms_" + string(phase)
}

// reports says whether a health status reports Redis state s ("up" or
// "down").
func reports(status, s string) bool {
	if s == "up" {
		return status == "healthy"
	}
	return status != "healthy"
}

// Health judges ErrHealthMismatch: after each change of the Redis state
// (redis_state ops, Value "up" or "down"; the first one counts as a change),
// a successful health op called after the change and before the next one
// must report it ("healthy" for up, any other status for down) and return
// within Config.HealthInterval of the change. A change followed by less than
// HealthInterval of observation without a matching report is not judged (it
// is listed in the evidence); the result is INCONCLUSIVE only when no change
// could be judged. The engine is expected to poll health several times per
// interval.
func Health(h history.History, c Config) Result {
	c = c.withDefaults()
	r := result("health", ErrHealthMismatch.Error())
	var changes, polls []history.Op
	for _, o := range sortedOps(h) {
		switch {
		case o.Kind == history.RedisState && (o.Value == "up" || o.Value == "down"):
			if n := len(changes); n == 0 || changes[n-1].Value != o.Value {
				changes = append(changes, o)
			}
		case o.Kind == history.Health && o.OK:
			polls = append(polls, o)
		}
	}
	if len(changes) == 0 {
		return r.noData("no redis_state recorded")
	}
	if len(polls) == 0 {
		return r.noData("no successful health call")
	}
	end := runEnd(h)
	var fails []error
	var unjudged []string
	var worst time.Duration
	mismatches, matched := 0, 0
	for i, ch := range changes {
		next := forever
		if i+1 < len(changes) {
			next = changes[i+1].Call
		}
		var seen []string
		var lag time.Duration
		found := false
		for _, p := range polls {
			if p.Call < ch.Call || p.Call >= next {
				continue
			}
			if reports(p.Value, ch.Value) {
				lag, found = p.Return-ch.Call, true
				break
			}
			if len(seen) < 3 {
				seen = append(seen, fmt.Sprintf("%q at %s", p.Value, secs(p.Call)))
			}
		}
		if !found && min(next, end)-ch.Call < c.HealthInterval {
			unjudged = append(unjudged, fmt.Sprintf("redis %s at %s: only %s observed before the next change or the end", ch.Value, secs(ch.Call), (min(next, end)-ch.Call).Round(time.Millisecond)))
			continue
		}
		if found && lag <= c.HealthInterval {
			matched++
			worst = max(worst, lag)
			continue
		}
		mismatches++
		line := fmt.Sprintf("redis %s at %s: health did not report it within %s", ch.Value, secs(ch.Call), c.HealthInterval)
		if found {
			line += fmt.Sprintf(" (it did after %s)", lag.Round(time.Millisecond))
		}
		if len(seen) > 0 {
			line += "; reported " + strings.Join(seen, ", ")
		}
		r.Evidence = append(r.Evidence, line)
		fails = append(fails, fmt.Errorf("%w: redis %s at %s", ErrHealthMismatch, ch.Value, secs(ch.Call)))
	}
	r.Metrics["health_mismatches"] = float64(mismatches)
	if matched > 0 {
		r.Metrics["health_lag_ms"] = ms(worst)
	}
	r.Evidence = append(r.Evidence, unjudged...)
	why := ""
	if matched+mismatches == 0 {
		why = strings.Join(unjudged, "; ")
	}
	return r.finish(c, joinFails(fails), why)
}

// joinFails caps fails at five errors so that a flapping run does not make
// a wall of them.
func joinFails(fails []error) []error {
	if len(fails) <= 5 {
		return fails
	}
	return append(fails[:5:5], fmt.Errorf("… and %d more", len(fails)-5))
}

// Load measures the acknowledged publish rate before the first fault, from
// the first recorded call to the first fault's start (the whole run without
// faults): metric publish_rate_before. With Config.MinRateBefore > 0 a rate
// below it, or no time before the first fault, is INCONCLUSIVE (ErrLowLoad);
// Run then turns every verdict INCONCLUSIVE. An empty history is
// INCONCLUSIVE (ErrNoData).
func Load(h history.History, c Config) Result {
	c = c.withDefaults()
	r := result("load", ErrLowLoad.Error())
	if len(h.Ops) == 0 {
		return r.noData("empty history")
	}
	ops := sortedOps(h)
	from := ops[0].Call
	to := runEnd(h)
	if fs := faultsOf(h); len(fs) > 0 {
		to = fs[0].Start
	}
	low := func(format string, args ...any) Result {
		r.Verdict = verdict.Inconclusive
		r.Err = fmt.Errorf("%w: %s", ErrLowLoad, fmt.Sprintf(format, args...))
		r.Evidence = append(r.Evidence, r.Err.Error())
		return r
	}
	if to <= from {
		if c.MinRateBefore > 0 {
			return low("no time before the first fault at %s: load cannot be measured", secs(to))
		}
		r.Evidence = append(r.Evidence, fmt.Sprintf("no time before the first fault at %s; no minimum load set", secs(to)))
		return r.finish(c, nil, "")
	}
	n := 0
	for _, o := range ops {
		if o.Kind == history.Publish && o.OK && o.Call < to {
			n++
		}
	}
	rate := float64(n) / (to - from).Seconds()
	r.Metrics["publish_rate_before"] = rate
	line := fmt.Sprintf("%d acknowledged publishes in %s before the first fault: %.1f ops/s", n, (to - from).Round(time.Millisecond), rate)
	if c.MinRateBefore > 0 && rate < c.MinRateBefore {
		return low("%s, target %g ops/s", line, c.MinRateBefore)
	}
	r.Evidence = append(r.Evidence, line)
	return r.finish(c, nil, "")
}
