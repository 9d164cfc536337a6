package check

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gonogo/harness/internal/history"
)

// countRange is what the history allows a registry count read o to
// return: at least len(must), at most may. The rules are Registry's, so a
// count and a lookup made at the same instant are held to the same
// connections.
//
// A connection must be counted when its registration completed before o
// was called, it was not being unregistered before o returned, and o
// returned less than Config.RegistryTTL after the call of its last
// successful register or heartbeat that returned before o was called.
//
// A connection may be counted when a register or heartbeat of it was
// called before o returned and o was called at most RegistryTTL +
// Config.CleanupInterval after the return of its last such attempt
// (successful or not) called before o returned, unless it was unregistered
// before o was called outside a fault window (Registry's ErrGhost rule).
// One unregistered inside a fault window may still be counted until then:
// while Redis is unreachable the layer defers the unregister, as the
// registry check allows for lookups.
func countRange(all []*conn, o history.Op, c Config, fs []history.Fault) (must []string, may int) {
	for _, cn := range all {
		if _, ok := cn.mustAppear(o, c); ok {
			must = append(must, cn.id)
			may++
			continue
		}
		if cn.unregistered(o, fs) {
			continue
		}
		if _, tried, gone := cn.expired(o, c); tried && !gone {
			may++
		}
	}
	return must, may
}

// RegistryCount judges ErrCountMismatch on every successful reg_count: the
// number of live connections an instance reports must lie in the range the
// history allows at that instant (countRange), whichever instance it is
// read on and whichever instances registered the connections. So counts
// agree across instances up to the connections whose TTL edge or
// registration a read races. With Config.SkipFaultWindows, reads called
// inside a fault window are not judged.
func RegistryCount(h history.History, c Config) Result {
	c = c.withDefaults()
	r := result("registry_count", ErrCountMismatch.Error())
	fs := faultsOf(h)
	var all []*conn
	for _, cs := range conns(h, c) {
		all = append(all, cs...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
	var off findings
	reads, judged, mismatches := 0, 0, 0
	for _, o := range sortedOps(h) {
		if o.Kind != history.RegCount || !o.OK {
			continue
		}
		reads++
		if c.SkipFaultWindows && phaseIn(fs, o.Call) == During {
			continue
		}
		judged++
		must, may := countRange(all, o, c, fs)
		if int(o.Count) >= len(must) && int(o.Count) <= may {
			continue
		}
		mismatches++
		inst := o.Value
		if inst == "" {
			inst = o.Client
		}
		off.note(inst, func() string {
			line := fmt.Sprintf("count on %s by %s at %s (%s) returned %d at %s; consistent range [%d, %d]",
				inst, o.Client, secs(o.Call), where(fs, o.Call), o.Count, secs(o.Return), len(must), may)
			if int(o.Count) < len(must) {
				line += "; live throughout: " + names(must, 6)
			}
			return line
		})
	}
	if reads == 0 {
		return r.noData("no successful registry count")
	}
	for _, inst := range off.order {
		r.Evidence = append(r.Evidence, fmt.Sprintf("instance %s: %d count reads outside the range the registrations, unregistrations and expiries allow; first: %s",
			inst, off.n[inst], off.first[inst]))
	}
	r.Metrics["count_reads"] = float64(judged)
	r.Metrics["count_mismatches"] = float64(mismatches)
	var fails []error
	if mismatches > 0 {
		fails = append(fails, fmt.Errorf("%w: %d of %d reads on %d instances", ErrCountMismatch, mismatches, judged, len(off.order)))
	}
	unjudged := ""
	if judged == 0 {
		unjudged = "every count read was inside a fault window"
	}
	return r.finish(c, fails, unjudged)
}

// names lists ids, at most n of them.
func names(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:n], ", "), len(ids)-n)
}
