package explore

import (
	"slices"
	"strings"
)

// Which checkers judge a generated scenario. The guarantees of the data
// (lost, duplicated, reordered, session_chain, stale_read, registry) hold
// under every fault, so each judges every scenario whose workload gives it
// something to judge. A bound in time (budget, fallback and recovery,
// error rate, delivery lateness) is a guarantee only under the faults the
// catalogue judges it with: a scenario is judged by the timing checks that
// every one of its faults allows (timingChecks), so that a failure is a
// broken promise, not a bound the layer never offered under that fault.

// timingChecks are the timing checks each fault kind allows, from the
// catalogue's scenarios of that kind ("tls_" for every TLS kind; "" for a
// scenario without faults).
var timingChecks = map[string][]string{
	"":           {"budget", "error_rate", "delivery"},
	"down":       {"budget", "fallback_time", "recover_time", "error_rate", "delivery"},
	"timeout":    {"budget", "fallback_time", "recover_time", "error_rate"},
	"reset_peer": {"budget", "fallback_time", "recover_time", "error_rate"},
	"pause":      {"budget", "fallback_time", "recover_time", "error_rate"},
	"kill":       {"budget", "fallback_time", "recover_time", "error_rate"},
	"restart":    {"budget", "fallback_time", "recover_time", "error_rate"},
	"flapping":   {"budget", "recover_time"},
	"latency":    {"budget"},
	"bandwidth":  {"budget", "recover_time"},
	"slicer":     {"budget", "recover_time"},
	"limit_data": {"budget", "recover_time"},
	"slow_close": {"budget"},
	"conn_limit": {"budget"},
	"maxmemory":  {"budget"},
	"quota":      {"budget", "fallback_time", "recover_time"},
	"tls_":       {"budget", "fallback_time", "recover_time"},
	"flag":       {"budget", "error_rate", "recover_time"},
	// The replicated target's faults (sentinel_* scenarios).
	"failover":          {"budget", "error_rate", "delivery"},
	"primary_kill":      {"budget", "fallback_time", "recover_time", "error_rate", "delivery"},
	"primary_pause":     {"budget", "recover_time", "error_rate", "delivery"},
	"replica_lag":       {"budget", "recover_time", "error_rate", "delivery"},
	"partition_primary": {"budget", "recover_time", "error_rate", "delivery"},
	// The cluster target's (cluster_* scenarios).
	"slot_migration": {"budget", "error_rate", "delivery"},
	// Instances run as processes: calls cross HTTP, so no budget.
	"instance_stop":    {"error_rate", "fallback_time", "delivery"},
	"instance_kill":    {"error_rate", "fallback_time", "delivery"},
	"instance_pause":   {"error_rate", "fallback_time", "delivery"},
	"instance_restart": {"error_rate", "fallback_time", "delivery"},
}

// checkOrder is the order checks are listed in a scenario file.
var checkOrder = []string{"lost", "duplicated", "reordered", "delivery", "session_chain", "stale_read", "registry",
	"budget", "fallback_time", "recover_time", "error_rate", "acked_on_stop", "lost_on_crash"}

// Checkers lists the checkers explore judges generated scenarios with.
func Checkers() []string { return slices.Clone(checkOrder) }

// checksFor is the checks that judge s.
func checksFor(s Scenario) []Check {
	w := s.Workload
	on := map[string]bool{}
	if w.Publish != nil {
		on["lost"], on["duplicated"], on["reordered"] = true, true, true
	}
	if w.SSE != nil {
		on["session_chain"], on["delivery"] = true, true
	}
	on["stale_read"] = w.Cache != nil
	on["registry"] = w.Registry != nil
	allowed := slices.Clone(timingChecks[""])
	for _, f := range s.Faults {
		k := f.Fault
		if strings.HasPrefix(k, "tls_") {
			k = "tls_"
		}
		allowed = slices.DeleteFunc(allowed, func(c string) bool { return !slices.Contains(timingChecks[k], c) })
		switch {
		case k == "instance_stop", k == "instance_restart" && f.Params["how"] != "kill":
			on["acked_on_stop"] = w.Publish != nil
		case k == "instance_kill", k == "instance_restart":
			on["lost_on_crash"] = w.Publish != nil
		}
	}
	if s.InstanceMode == "process" {
		allowed = slices.DeleteFunc(allowed, func(c string) bool { return c == "budget" })
	}
	for _, c := range []string{"budget", "fallback_time", "recover_time", "error_rate"} {
		on[c] = slices.Contains(allowed, c)
	}
	on["delivery"] = on["delivery"] && slices.Contains(allowed, "delivery")
	// A loss the configuration causes (an evicting maxmemory policy) is
	// reported, never judged: by the instance checks too (explore's
	// acked_on_stop-8b74ee1e, an event evicted under allkeys-lru blamed
	// on a graceful stop).
	evicts := slices.ContainsFunc(s.Faults, func(f Fault) bool {
		return f.Fault == "maxmemory" && f.Params["policy"] != "noeviction"
	})
	var out []Check
	for _, name := range checkOrder {
		if !on[name] {
			continue
		}
		c := Check{Name: name}
		switch name {
		case "lost_on_crash":
			c.Thresholds = map[string]string{"lost_on_crash": "== 0"}
			c.ReportOnly = evicts
		case "lost", "session_chain", "registry", "delivery", "reordered", "acked_on_stop":
			c.ReportOnly = evicts
		}
		out = append(out, c)
	}
	return out
}
