package check

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/gonogo/harness/internal/history"
)

// Sentinels of the instance checks.
var (
	ErrStopLost  = errors.New("an event acknowledged by an instance that is stopped gracefully must be in Redis afterwards, or the instance's exit status and log must say how many it could not write")
	ErrCrashLost = errors.New("events acknowledged by an instance that was killed are lost only within the bound its gate states (lost_on_crash)")
	ErrMemory    = errors.New("an instance's resident memory must stay under the bound its scenario states (rss_max_mib)")
)

// The values of an instance_exit op: how the instance was ended.
const (
	ExitStop = "stop" // SIGTERM: the instance closes its layer
	ExitKill = "kill" // SIGKILL: no Close
)

// announceRE finds the count an instance logged of the acknowledged
// events it could not write when it closed: "… 12 events lost",
// "12 acknowledged events not written", or a key=value field
// (unwritten=12, events_lost=12, lost=12).
var announceRE = regexp.MustCompile(`(?i)(?:\b(\d+) (?:acknowledged )?events? (?:lost|not written|unwritten|could not be written)|\b(?:unwritten|unwritten_events|events_lost|lost)=(\d+)\b)`)

// Announced is the number of acknowledged events an instance said, in the
// log lines of its instance_exit op, it could not write when it closed,
// and whether it said so at all: it must both exit with a non-zero status
// and log a count (the largest it logged). An instance that exited 0 has
// announced nothing, whatever it logged.
func Announced(exit history.Op) (int, bool) {
	if exit.OK {
		return 0, false
	}
	n, found := 0, false
	for _, line := range exit.Values {
		for _, m := range announceRE.FindAllStringSubmatch(line, -1) {
			s := m[1]
			if s == "" {
				s = m[2]
			}
			if v, err := strconv.Atoi(s); err == nil {
				n, found = max(n, v), true
			}
		}
	}
	return n, found
}

// ended is one instance_exit with the acknowledged events of that
// instance's process that are missing from their flow's final read.
type ended struct {
	exit           history.Op
	acked, missing int
	unread         bool
	firstMissing   []string
}

// endedInstances pairs every instance_exit op of kind how with the
// publishes that process acknowledged (their Value names its Instance,
// called after the
// instance's previous exit, returned before this one was called) and
// counts those missing from their flow's final read (finalReads: what
// Redis holds, read by the harness itself when it could). Publishes in a
// rollback window that turned the event bus off are left out: memory only
// by design, as in Lost (explore's acked_on_stop-36592a48: an event
// acknowledged with the event bus off, lost as the rollback's end rebuilt
// the instance, was blamed on the stop).
func endedInstances(h history.History, how string, maxEvidence int) []ended {
	ops := sortedOps(h)
	rollback := only(faultsOf(h), memoryOnly)
	final := finalReads(h)
	seen := map[string]map[string]bool{}
	inFinal := func(flow, id string) (bool, bool) {
		rd, ok := final[flow]
		if !ok {
			return false, false
		}
		if seen[flow] == nil {
			seen[flow] = make(map[string]bool, len(rd.Values))
			for _, v := range rd.Values {
				seen[flow][v] = true
			}
		}
		return seen[flow][id], true
	}
	byInst := map[string][]*history.Op{}
	var exits []*history.Op
	for k := range ops {
		switch o := &ops[k]; {
		case o.Kind == history.Publish && o.OK && o.Value != "":
			byInst[o.Value] = append(byInst[o.Value], o)
		case o.Kind == history.InstanceExit:
			exits = append(exits, o)
		}
	}
	prev := map[string]time.Duration{}
	var out []ended
	for _, x := range exits {
		since := prev[x.Instance]
		prev[x.Instance] = x.Return
		if x.Value != how {
			continue
		}
		e := ended{exit: *x}
		for _, p := range byInst[x.Instance] {
			if p.Call < since || p.Return > x.Call || inAny(rollback, p.Call) {
				continue
			}
			e.acked++
			in, read := inFinal(p.Flow, p.EventID)
			switch {
			case !read || final[p.Flow].Call < x.Return:
				e.unread = true
			case !in:
				e.missing++
				if maxEvidence < 0 || len(e.firstMissing) < maxEvidence {
					e.firstMissing = append(e.firstMissing, fmt.Sprintf("event %s/%s acknowledged by %s at %s, missing from the history read at %s",
						p.Flow, p.EventID, x.Instance, secs(p.Return), secs(final[p.Flow].Call)))
				}
			}
		}
		out = append(out, e)
	}
	return out
}

func exitText(x history.Op) string {
	if x.Err == "" {
		return "exit status 0"
	}
	return x.Err
}

// AckedOnStop judges ErrStopLost for every graceful stop of an instance
// (instance_exit "stop"): the events that process acknowledged must be in
// their flow's final history read, unless it announced (Announced) how many
// it could not write. A silent loss, or one larger than announced, FAILs;
// an announced one is reported (stop_announced) for a threshold to judge.
func AckedOnStop(h history.History, c Config) Result {
	c = c.withDefaults()
	r := result("acked_on_stop", ErrStopLost.Error())
	stops := endedInstances(h, ExitStop, c.MaxEvidence)
	if len(stops) == 0 {
		return r.noData("no instance was stopped")
	}
	var acked, lost, announced, silent int
	var fails []error
	unjudged := ""
	for _, s := range stops {
		acked += s.acked
		lost += s.missing
		n, said := Announced(s.exit)
		line := fmt.Sprintf("%s stopped at %s (%s): %d of %d acknowledged events missing", s.exit.Instance, secs(s.exit.Call), exitText(s.exit), s.missing, s.acked)
		switch {
		case said:
			announced += n
			line += fmt.Sprintf("; it announced %d it could not write", n)
		case !s.exit.OK:
			line += "; it exited non-zero but logged no count"
		default:
			line += "; it announced no loss"
		}
		r.Evidence = append(r.Evidence, line)
		if s.unread {
			unjudged = "no final history read after the stop of " + s.exit.Instance
		}
		if !said {
			n = 0
		}
		if s.missing > n {
			silent += s.missing - n
			fails = append(fails, fmt.Errorf("%w: %s lost %d acknowledged events and announced %d", ErrStopLost, s.exit.Instance, s.missing, n))
			r.Evidence = append(r.Evidence, s.firstMissing...)
		}
	}
	r.Metrics["stop_acked"] = float64(acked)
	r.Metrics["stop_lost"] = float64(lost)
	r.Metrics["stop_announced"] = float64(announced)
	r.Metrics["stop_silent"] = float64(silent)
	return r.finish(c, fails, unjudged)
}

// LostOnCrash measures, for every kill of an instance (instance_exit
// "kill"), the events that process acknowledged and that are missing from
// their flow's final history read: metric lost_on_crash. A kill runs no
// Close, so what a design keeps only in the instance's memory is lost; how
// much may be is the gate's to say (a threshold on lost_on_crash, which the
// scenario file must state). Without a threshold the result is a
// measurement: PASS with the number.
func LostOnCrash(h history.History, c Config) Result {
	c = c.withDefaults()
	r := result("lost_on_crash", ErrCrashLost.Error())
	kills := endedInstances(h, ExitKill, c.MaxEvidence)
	if len(kills) == 0 {
		return r.noData("no instance was killed")
	}
	var acked, lost int
	unjudged := ""
	for _, k := range kills {
		acked += k.acked
		lost += k.missing
		r.Evidence = append(r.Evidence, fmt.Sprintf("%s killed at %s (%s): %d of %d acknowledged events missing", k.exit.Instance, secs(k.exit.Call), exitText(k.exit), k.missing, k.acked))
		r.Evidence = append(r.Evidence, k.firstMissing...)
		if k.unread {
			unjudged = "no final history read after the kill of " + k.exit.Instance
		}
	}
	r.Metrics["crash_acked"] = float64(acked)
	r.Metrics["lost_on_crash"] = float64(lost)
	return r.finish(c, nil, unjudged)
}

const mib = 1 << 20

// Memory reports the resident memory of every instance process from its
// rss samples: rss_max_mib (largest sample) and rss_growth_mib (largest
// rise of one instance over its first sample). The bound is the scenario's
// threshold on rss_max_mib, which the file must state.
func Memory(h history.History, c Config) Result {
	c = c.withDefaults()
	r := result("memory", ErrMemory.Error())
	first := map[string]int64{}
	peak := map[string]int64{}
	at := map[string]time.Duration{}
	n := 0
	for _, o := range sortedOps(h) {
		if o.Kind != history.RSS || !o.OK {
			continue
		}
		n++
		if _, ok := first[o.Instance]; !ok {
			first[o.Instance] = o.Count
		}
		if o.Count > peak[o.Instance] {
			peak[o.Instance], at[o.Instance] = o.Count, o.Call
		}
	}
	if n == 0 {
		return r.noData("no rss sample (instances run in-process, or /proc unreadable)")
	}
	var worst, growth float64
	for _, inst := range sortedKeys(peak) {
		p := float64(peak[inst]) / mib
		g := float64(peak[inst]-first[inst]) / mib
		worst, growth = max(worst, p), max(growth, g)
		r.Evidence = append(r.Evidence, fmt.Sprintf("%s: rss %.1f MiB at first sample, %.1f MiB at most (at %s)", inst, float64(first[inst])/mib, p, secs(at[inst])))
	}
	r.Metrics["rss_max_mib"] = worst
	r.Metrics["rss_growth_mib"] = growth
	r.Metrics["rss_samples"] = float64(n)
	return r.finish(c, nil, "")
}
