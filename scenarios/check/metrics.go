package check

import "fmt"

// Metric describes one metric a checker can produce, so that a scenario or
// gate threshold on a name that no checker produces is rejected up front.
type Metric struct {
	Name string `json:"name"`
	// Unit is "count", "ms", "%", "ops/s" or "MiB".
	Unit string `json:"unit"`
	// Check is the checker that produces it.
	Check       string `json:"check"`
	Description string `json:"description"`
}

// Metrics is the catalogue of every metric name a checker can produce. A
// checker omits a metric it could not measure (no sample), so a threshold
// on it should then be judged INCONCLUSIVE, not PASS.
var Metrics = catalogue()

var metricsByName = func() map[string]Metric {
	m := make(map[string]Metric, len(Metrics))
	for _, x := range Metrics {
		m[x.Name] = x
	}
	return m
}()

// MetricNamed returns the catalogue entry of name.
func MetricNamed(name string) (Metric, bool) {
	m, ok := metricsByName[name]
	return m, ok
}

func catalogue() []Metric {
	ms := []Metric{
		{"lost", "count", "lost", "acknowledged events missing from their flow's final history read"},
		{"acknowledged", "count", "lost", "acknowledged events judged by the lost check"},
		{"lost_async_replication", "count", "lost", "lost events that a primary acknowledged shortly before a failover or primary kill replaced it: lost by asynchronous replication (scenarios with those faults)"},
		{"lost_detectable_1_in_redis", "count", "lost", "sensitivity: the rarest loss among events acknowledged on Redis (1 in N) the check catches with 95 % probability"},
		{"lost_detectable_1_in_memory", "count", "lost", "sensitivity: the same for events acknowledged from memory (fallback)"},
		{"duplicated_detectable_1_in_redis", "count", "duplicated", "sensitivity: the rarest duplication of events acknowledged on Redis (1 in N) caught with 95 % probability"},
		{"duplicated_detectable_1_in_memory", "count", "duplicated", "sensitivity: the same for events acknowledged from memory"},
		{"reordered_detectable_1_in_redis", "count", "reordered", "sensitivity: the rarest misplacement of events acknowledged on Redis (1 in N) caught with 95 % probability"},
		{"reordered_detectable_1_in_memory", "count", "reordered", "sensitivity: the same for events acknowledged from memory"},
		{"flows_read_from_redis", "count", "lost", "flows judged on the harness's own read of their Redis stream"},
		{"flows_read_through_layer", "count", "lost", "flows judged on the layer's history read (the layer names no streams)"},
		{"stream_len_max", "count", "stream_bounds", "longest flow stream (XLEN) after the run, read by the harness"},
		{"streams_untrimmed", "count", "stream_bounds", "flow streams longer than MAXLEN + one stream node"},
		{"streams_without_ttl", "count", "stream_bounds", "flow streams with no TTL"},
		{"streams_ttl_over", "count", "stream_bounds", "flow streams whose TTL exceeds the configured one"},
		{"unread_flows", "count", "lost", "flows with acknowledged events but no final history read after the faults"},
		{"memory_only", "count", "lost", "events acknowledged during a rollback (REDIS_ENABLED=false), in memory only by design and not judged"},
		{"duplicates", "count", "duplicated", "events appearing more than once in a history read"},
		{"duplicates_delivered", "count", "duplicated", "events delivered more than once to one subscriber"},
		{"reordered", "count", "reordered", "acknowledged events read out of order: after a later event of their publisher, or after one published after they were acknowledged"},
		{"reordered_realtime", "count", "reordered", "of those, events out of real-time order only (acknowledged before a publish they follow was called)"},
		{"delivery_reordered", "count", "reordered", "deliveries that came after an event they should precede (per publisher or in real time)"},
		{"delivery_expected", "count", "delivery", "(subscriber, event) pairs that had to be delivered"},
		{"delivery_lost", "count", "delivery", "expected deliveries that never arrived"},
		{"delivery_duplicates", "count", "delivery", "(subscriber, event) pairs delivered more than once"},
		{"delivery_late", "count", "delivery", "deliveries later than the delivery bound after their publish"},
		{"delivery_p50_ms", "ms", "delivery", "median publish → receive latency"},
		{"delivery_p99_ms", "ms", "delivery", "99th percentile publish → receive latency"},
		{"delivery_max_ms", "ms", "delivery", "worst publish → receive latency"},
		{"chains", "count", "session_chain", "logical SSE clients (client and flow) judged, each a chain of connections"},
		{"chain_connections", "count", "session_chain", "SSE connections the chains made, reconnects included"},
		{"chain_failed_connects", "count", "session_chain", "SSE connection attempts that failed (instance gone, refused)"},
		{"chain_never_connected", "count", "session_chain", "SSE clients whose every connection attempt failed (owed their events all the same)"},
		{"chain_judged", "count", "session_chain", "(chain, event) pairs that had to be received"},
		{"chain_missing", "count", "session_chain", "events published after a chain's first connect never received by it"},
		{"chain_duplicates", "count", "session_chain", "events a chain received more than once, across its connections"},
		{"chain_reordered", "count", "session_chain", "events a chain received after an event published after their acknowledgement"},
		{"chain_detectable_pct", "%", "session_chain", "sensitivity: smallest per-event violation rate detected with 95 % probability, given chain_judged"},
		{"stale_reads", "count", "stale_read", "cache reads older than the last completed invalidation"},
		{"cache_reads", "count", "stale_read", "successful cache reads"},
		{"cache_hit_rate", "%", "stale_read", "share of successful cache reads that hit"},
		{"vanished", "count", "registry", "heartbeating connections missing from a lookup of their flow"},
		{"lingered", "count", "registry", "dead connections still listed past TTL + cleanup interval"},
		{"ghosts", "count", "registry", "unregistered connections still listed after the unregister returned"},
		{"lookups", "count", "registry", "registry lookups that had a connection to judge"},
		{"count_reads", "count", "registry_count", "registry count reads judged, on every instance"},
		{"count_mismatches", "count", "registry_count", "registry count reads outside the range the live connections allow"},
		{"over_budget", "count", "budget", "calls that took longer than their budget"},
		{"budget_worst_ms", "ms", "budget", "slowest call among the budgeted kinds"},
		{"stall_excused", "count", "budget", "calls over budget only for the harness stalls they overlap"},
		{"harness_stalls", "count", "budget", "windows in which the harness process itself did not run (merged)"},
		{"harness_stall_max_ms", "ms", "budget", "longest harness stall"},
		{"fallback_ms", "ms", "fallback_time", "worst time from a fault's start to the first successful call"},
		{"recover_ms", "ms", "recover_time", "worst time from a fault's end to the first call served from Redis"},
		{"health_mismatches", "count", "health", "Redis state changes the health endpoint did not report in time"},
		{"health_lag_ms", "ms", "health", "worst time from a Redis state change to a health report of it"},
		{"publish_rate_before", "ops/s", "load", "acknowledged publishes per second before the first fault"},
		{"stop_acked", "count", "acked_on_stop", "events acknowledged by instances before they were stopped gracefully"},
		{"stop_lost", "count", "acked_on_stop", "of those, missing from the final history read"},
		{"stop_announced", "count", "acked_on_stop", "events the stopped instances said (exit status and log) they could not write"},
		{"stop_silent", "count", "acked_on_stop", "events lost across a stop beyond what the instance announced"},
		{"crash_acked", "count", "lost_on_crash", "events acknowledged by instances before they were killed"},
		{"lost_on_crash", "count", "lost_on_crash", "of those, missing from the final history read"},
		{"rss_max_mib", "MiB", "memory", "largest resident memory sample of any instance process"},
		{"rss_growth_mib", "MiB", "memory", "largest rise of one instance's resident memory over its first sample"},
		{"rss_samples", "count", "memory", "resident memory samples taken"},
	}
	for _, p := range Periods {
		ms = append(ms, Metric{"error_rate_" + string(p), "%", "error_rate", fmt.Sprintf("share of failed layer calls called %s the faults", p)})
	}
	for _, k := range LatencyKinds {
		for _, s := range latencyStats {
			ms = append(ms, Metric{latencyName(k, s.name, ""), "ms", "latency", fmt.Sprintf("%s latency of %s over the run", s.name, k)})
			for _, p := range Periods {
				ms = append(ms, Metric{latencyName(k, s.name, p), "ms", "latency", fmt.Sprintf("%s latency of %s called %s the faults", s.name, k, p)})
			}
		}
	}
	return append(ms, roundTripMetrics()...)
}
