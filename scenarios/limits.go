package scenarios

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gonogo/harness/impl"
)

// limit is the allowed range of one number a scenario file may give. Every
// int, float and duration field of Spec has one (TestLimitsCoverSpec), and
// docs/limits.md lists them all (TestLimitsDoc): a new field gets a line
// here, and its range is checked where it is decoded, with file:line.
type limit struct {
	// path is the field's YAML path; "[]" stands for any list index.
	path string
	// min and max bound the value (durations in nanoseconds).
	min, max float64
	// zero allows 0 below min: the field's default, or off.
	zero bool
	// off allows -1 below min: the check is off.
	off bool
	// unit names the value's unit in messages ("per second", "bytes");
	// durations need none.
	unit string
	dur  bool
	// count says the limit is on the number of entries of a list or
	// mapping, checked before its entries are decoded.
	count bool
}

// entries is a list's or mapping's limit: at most max entries.
func entries(path string, max int) limit {
	return limit{path: path, max: float64(max), count: true}
}

// dur is a duration's limit: 0 (the default, or none) or min to max.
func dur(path string, min, max time.Duration) limit {
	return limit{path: path, min: float64(min), max: float64(max), zero: true, dur: true}
}

// num is a number's limit: 0 (the default, or off) or min to max.
func num(path string, min, max float64, unit string) limit {
	return limit{path: path, min: min, max: max, zero: true, unit: unit}
}

// limits is the range of every number of a scenario file, and the most
// entries of each of its lists and mappings.
var limits = []limit{
	entries("profiles", 10),
	entries("faults", 100),
	entries("faults[].params", 10),
	entries("checks", 50),
	entries("checks[].thresholds", 50),
	entries("bounds.budget_kinds", 50),
	num("instances", 1, 8, ""),
	dur("recovery", 100*time.Millisecond, 10*time.Minute),
	num("episodes", 1, maxEpisodes, "episodes"),
	dur("episode_every", 100*time.Millisecond, time.Hour),
	dur("target.rtt", time.Millisecond, 5*time.Second),

	num("config.pool_size", 1, 1000, "connections"),
	dur("config.connect_timeout", time.Millisecond, time.Minute),
	dur("config.drain_timeout", time.Millisecond, impl.MaxDrainTimeout),
	dur("config.publish_budget", time.Millisecond, time.Minute),
	dur("config.call_budget", time.Millisecond, time.Minute),
	dur("config.probe_interval", time.Millisecond, time.Hour),
	dur("config.health_interval", time.Millisecond, time.Hour),
	dur("config.registry_ttl", 100*time.Millisecond, 24*time.Hour),
	dur("config.cleanup_interval", time.Millisecond, time.Hour),
	dur("config.cache_ttl", 100*time.Millisecond, 24*time.Hour),
	num("config.memory_events", 1, 1_000_000, "events per flow"),
	num("config.outbox_cap", 1, 1_000_000, "events"),
	num("config.stream_maxlen", 1, 10_000_000, "entries"),
	{path: "config.ack_replicas", min: -1, max: impl.MaxAckReplicas, unit: "replicas (-1 off, 0 auto)"},

	{path: "workload.duration", min: float64(100 * time.Millisecond), max: float64(time.Hour), dur: true},
	num("workload.publish.rate", 0.1, 100_000, "per second"),
	num("workload.publish.flows", 1, 1000, "flows"),
	num("workload.publish.publishers", 1, 100, "clients"),
	num("workload.publish.concurrency", 1, 100, "in flight per publisher"),
	num("workload.publish.payload", 1, 1<<20, "bytes"),
	num("workload.sse.clients", 1, 1000, "per flow"),
	num("workload.sse.flows", 1, 1000, "flows"),
	dur("workload.sse.reconnect", 50*time.Millisecond, time.Hour),
	dur("workload.sse.jitter", time.Millisecond, time.Hour),
	dur("workload.sse.retry", time.Millisecond, time.Minute),
	dur("workload.sse.max_backoff", time.Millisecond, time.Minute),
	num("workload.sse.attempts", 1, 1000, "connects"),
	num("workload.sse.slow.clients", 1, 100, "clients"),
	num("workload.sse.slow.read_rate", 1, 1<<30, "bytes per second"),
	num("workload.sse.slow.after", 1, 10_000_000, "events"),
	dur("workload.sse.slow.at", time.Millisecond, time.Hour),
	dur("workload.sse.slow.for", time.Millisecond, time.Hour),
	num("workload.sse.slow.recv_buffer", 1, 64<<20, "bytes"),
	num("workload.sse.stalled.clients", 1, 100, "clients"),
	num("workload.sse.stalled.read_rate", 1, 1<<30, "bytes per second"),
	num("workload.sse.stalled.after", 1, 10_000_000, "events"),
	dur("workload.sse.stalled.at", time.Millisecond, time.Hour),
	dur("workload.sse.stalled.for", time.Millisecond, time.Hour),
	num("workload.sse.stalled.recv_buffer", 1, 64<<20, "bytes"),
	num("workload.sse.browser.clients", 1, 20, "pages"),
	num("workload.cache.rate", 0.1, 100_000, "per second"),
	{path: "workload.cache.write_ratio", min: 0, max: 1},
	num("workload.cache.flows", 1, 100_000, "flows"),
	num("workload.cache.clients", 1, 100, "clients"),
	dur("workload.cache.fill_delay", time.Millisecond, 10*time.Second),
	num("workload.registry.connections", 1, 10_000, "connections"),
	num("workload.registry.flows", 1, 1000, "flows"),
	dur("workload.registry.heartbeat", time.Millisecond, time.Hour),
	dur("workload.registry.lookup", time.Millisecond, time.Hour),
	num("workload.registry.stop", 1, 10_000, "connections"),
	dur("workload.registry.stop_at", time.Millisecond, time.Hour),
	num("workload.registry.unregister", 1, 10_000, "connections"),
	dur("workload.health.interval", time.Millisecond, time.Hour),

	{path: "faults[].at", min: 0, max: float64(time.Hour), dur: true},
	dur("faults[].for", time.Millisecond, time.Hour),

	dur("bounds.budget_slack", time.Millisecond, time.Hour),
	dur("bounds.max_fallback", time.Millisecond, time.Hour),
	dur("bounds.max_recover", time.Millisecond, time.Hour),
	{path: "bounds.max_error_rate", min: 0, max: 100, off: true, unit: "percent"},
	dur("bounds.delivery_late", time.Millisecond, time.Hour),
	dur("bounds.delivery_grace", time.Millisecond, time.Hour),
	{path: "bounds.min_load", min: 0, max: 1, off: true, unit: "of the publish rate"},
	dur("bounds.health_lag", time.Millisecond, time.Hour),
}

// The limits across fields: what a run holds in memory and opens.
const (
	// maxPlannedOps bounds the operations a run records (publishes, their
	// deliveries to every SSE client, cache calls, registry heartbeats and
	// lookups, health polls): the history is held in memory and saved.
	maxPlannedOps = 1_000_000
	// maxPublishBytes bounds the payload bytes a run publishes (Redis and
	// the memory fallback hold them).
	maxPublishBytes = 1 << 30
	// maxStreams bounds the SSE streams a run opens (each two sockets).
	maxStreams = 1000
)

// nameRE is what a scenario's name must match: it names the run's
// directory and the report's keys.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// NamePattern is the pattern scenario (and profile) names match, for
// messages.
const NamePattern = "lowercase letters, digits, _ and -, starting with a letter or digit, at most 64"

// ValidName reports whether s may name a scenario or profile: it is used
// as a directory name, so it can hold no path separator, dot or NUL.
func ValidName(s string) bool { return nameRE.MatchString(s) }

var indexRE = regexp.MustCompile(`\[\d+\]`)

// limitFor returns the limit of the field at path ("faults[2].at").
func limitFor(path string) (limit, bool) {
	path = indexRE.ReplaceAllString(path, "[]")
	for _, l := range limits {
		if l.path == path {
			return l, true
		}
	}
	return limit{}, false
}

// check returns "" when v is within the limit, else what is allowed.
func (l limit) check(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
	case l.zero && v == 0, l.off && v == -1, v >= l.min && v <= l.max:
		return ""
	}
	return "want " + l.allowed()
}

// checkCount returns "" when n entries are within the limit, else what is
// allowed.
func (l limit) checkCount(n int) string {
	if float64(n) <= l.max {
		return ""
	}
	return "want " + l.allowed()
}

// allowed states the range: "0 or 0.1 to 100000 per second".
func (l limit) allowed() string {
	f := func(v float64) string {
		if l.dur {
			return fmtDuration(time.Duration(v))
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	if l.count {
		return "at most " + f(l.max) + " entries"
	}
	s := f(l.min) + " to " + f(l.max)
	if l.unit != "" {
		s += " " + l.unit
	}
	switch {
	case l.zero:
		s = "0 or " + s
	case l.off:
		s = "-1 (off) or " + s
	}
	return s
}

// fmtDuration is d without zero minutes and seconds: "1h", "10m", "250ms".
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// limitsMarkdown is the table docs/limits.md carries.
func limitsMarkdown() string {
	var b strings.Builder
	b.WriteString("| field | allowed |\n| --- | --- |\n")
	for _, l := range limits {
		fmt.Fprintf(&b, "| `%s` | %s |\n", l.path, l.allowed())
	}
	fmt.Fprintf(&b, "| name | %s (default: the file name) |\n", NamePattern)
	fmt.Fprintf(&b, "| planned operations | at most %d: workload.duration × (publish.rate × (1 + SSE clients of every kind) + cache.rate + registry.connections / heartbeat + 1 / lookup + instances / health.interval) |\n", maxPlannedOps)
	fmt.Fprintf(&b, "| published bytes | at most %d: workload.duration × publish.rate × publish.payload |\n", maxPublishBytes)
	fmt.Fprintf(&b, "| SSE streams | at most %d: sse.clients × sse.flows + slow, stalled and browser clients |\n", maxStreams)
	return b.String()
}
