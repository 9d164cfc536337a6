package explore

import (
	"context"
	"slices"
	"strconv"
	"time"
)

// Outcome is what one run of a scenario said about the checker being
// shrunk for.
type Outcome struct {
	// Failed: the checker failed (not INCONCLUSIVE, not report-only).
	Failed bool
	// Error is the checker's error and Evidence its evidence, when it
	// failed.
	Error    string
	Evidence []string
	// Dir is where the run was saved ("" when it was not).
	Dir string
}

// Judge runs s and says whether the checker still fails. An error is a run
// that could not be judged: the candidate is not taken.
type Judge func(ctx context.Context, s Scenario) (Outcome, error)

// Shrinker makes a failing scenario smaller while its checker still fails.
type Shrinker struct {
	Judge Judge
	// Valid validates a candidate as a scenario file would be (the
	// engine's Parse); an invalid one is never run.
	Valid func(Scenario) error
	// Confirm is how many runs in a row a scenario must fail to count as
	// failing, the run that found it included (default 2): a candidate
	// that passes once is not taken, and a found failure that does not
	// repeat is reported flaky rather than shrunk.
	Confirm int
	// MaxRuns bounds the runs of one shrink (default 60).
	MaxRuns int
	// Deadline, when set, ends the shrink (Partial) once passed.
	Deadline time.Time
	// Step, when set, is told of each candidate tried (the runs so far, the
	// steps taken, what changed) and whether it was taken.
	Step func(runs, steps int, what string, s Scenario, ok bool)
}

// Shrunk is a shrink's result.
type Shrunk struct {
	// Minimal is the smallest scenario found that fails; with Flaky, the
	// scenario as found (judged by the one checker).
	Minimal Scenario
	// Last is the last failing run of Minimal.
	Last Outcome
	// Flaky: the found failure did not repeat Confirm times in a row;
	// Reproduced of Tries runs failed.
	Flaky             bool
	Reproduced, Tries int
	// Steps is how many candidates were taken, Runs how many runs the
	// shrink made.
	Steps, Runs int
	// Partial: the shrink stopped (run bound, deadline, interrupt) before
	// it had tried every candidate of Minimal.
	Partial bool
}

// Defaults of a Shrinker.
const (
	defConfirm    = 2
	defMaxRuns    = 60
	maxConfirm    = 10
	maxShrinkRuns = 1000
)

// Shrink shrinks s, whose run found (the run that failed) failed checker.
// It first runs s again until it has failed Confirm times in a row; when
// it does not, the failure is flaky and s is returned as it is (judged by
// checker alone). Then it tries the candidates of the current scenario
// (candidates) in order and takes the first that fails Confirm times in a
// row, until none does. Every scenario it returns failed its last Confirm
// runs, unless Flaky.
func (sh Shrinker) Shrink(ctx context.Context, s Scenario, checker string, found Outcome) Shrunk {
	if sh.Confirm <= 0 {
		sh.Confirm = defConfirm
	}
	if sh.MaxRuns <= 0 {
		sh.MaxRuns = defMaxRuns
	}
	cur := narrow(s, checker)
	res := Shrunk{Minimal: cur, Last: found, Reproduced: 1, Tries: 1}
	stop := func() bool {
		return ctx.Err() != nil || res.Runs >= sh.MaxRuns || !sh.Deadline.IsZero() && time.Now().After(sh.Deadline)
	}
	// confirm runs c until it failed want times in a row (the first
	// already, when had); it returns the last failing outcome.
	confirm := func(c Scenario, had int) (Outcome, int, bool) {
		var last Outcome
		for n := had; n < sh.Confirm; n++ {
			if stop() {
				return last, n, false
			}
			res.Runs++
			o, err := sh.Judge(ctx, c)
			if err != nil || !o.Failed {
				return last, n, false
			}
			last = o
		}
		return last, sh.Confirm, true
	}
	last, n, ok := confirm(cur, 1)
	res.Reproduced, res.Tries = n, min(n+1, sh.Confirm)
	if !ok {
		res.Flaky = !stop()
		res.Partial = !res.Flaky
		return res
	}
	if last.Failed {
		res.Last = last
	}
	// A kind of change that did not keep the failure is not tried again:
	// what remains to try then shrinks with every step.
	tried := map[string]bool{cur.Hash(): true}
	rejected := map[string]bool{}
	for {
		taken := false
		for _, cand := range candidates(cur) {
			c, h := cand.s, cand.s.Hash()
			if tried[h] || rejected[cand.what] || sh.Valid(c) != nil {
				continue
			}
			if stop() {
				res.Partial = true
				return res
			}
			tried[h] = true
			o, _, ok := confirm(c, 0)
			if sh.Step != nil {
				sh.Step(res.Runs, res.Steps, cand.what, c, ok)
			}
			if !ok {
				rejected[cand.what] = true
				continue
			}
			cur, taken = c, true
			res.Minimal, res.Last = c, o
			res.Steps++
			break
		}
		if !taken {
			return res
		}
	}
}

// narrow keeps only checker among s's checks: the minimal file judges
// what failed. The run itself does not depend on the checks.
func narrow(s Scenario, checker string) Scenario {
	c := s.Clone()
	c.Checks = slices.DeleteFunc(c.Checks, func(ch Check) bool { return ch.Name != checker })
	return c
}

// candidate is a scenario one step smaller, and what kind of change made
// it ("drop fault down#0": the first down fault).
type candidate struct {
	what string
	s    Scenario
}

// candidates are the scenarios one step smaller than s, most promising
// first: fewer faults, a shorter workload, less traffic, shorter fault
// windows, fewer instances, lower rates, simpler fault parameters. Some
// are invalid (the shrinker validates) or equal to s (it skips them).
func candidates(s Scenario) []candidate {
	var out []candidate
	add := func(what string, f func(c *Scenario)) {
		c := s.Clone()
		f(&c)
		out = append(out, candidate{what, c})
	}
	// id names a fault by its kind and its rank among faults of that kind.
	id := func(i int) string {
		n := 0
		for _, f := range s.Faults[:i] {
			if f.Fault == s.Faults[i].Fault {
				n++
			}
		}
		return s.Faults[i].Fault + "#" + strconv.Itoa(n)
	}
	d := s.Workload.Duration
	for i := range s.Faults {
		add("drop fault "+id(i), func(c *Scenario) { c.Faults = slices.Delete(c.Faults, i, i+1) })
	}
	// The workload ends a second after the last fault.
	end := Dur(0)
	for _, f := range s.Faults {
		if f.For > 0 {
			end = max(end, f.At+f.For)
		}
	}
	if end+Dur(time.Second) < d {
		add("end after the faults", func(c *Scenario) { setDuration(c, max(end+Dur(time.Second), Dur(time.Second))) })
	}
	// Everything happens sooner: faults move to minLead after the start.
	first := Dur(-1)
	for _, f := range s.Faults {
		if f.At > 0 && (first < 0 || f.At < first) {
			first = f.At
		}
	}
	if shift := first - Dur(minLead); first > 0 && shift >= Dur(step) {
		add("faults sooner", func(c *Scenario) {
			for i := range c.Faults {
				if c.Faults[i].At > 0 {
					c.Faults[i].At -= shift
				}
			}
			setDuration(c, d-shift)
		})
	}
	// Everything at half the time.
	add("half the time", func(c *Scenario) {
		for i := range c.Faults {
			c.Faults[i].At = round(c.Faults[i].At / 2)
			if c.Faults[i].For > 0 {
				c.Faults[i].For = max(round(c.Faults[i].For/2), Dur(step))
			}
		}
		if x := c.Workload.SSE; x != nil && x.Stalled != nil && x.Stalled.For > 0 {
			x.Stalled.For = max(round(x.Stalled.For/2), Dur(step))
		}
		c.Workload.Duration = max(round(d/2), Dur(time.Second))
	})
	w := s.Workload
	if w.SSE != nil {
		add("drop sse", func(c *Scenario) { c.Workload.SSE = nil })
		if w.SSE.Stalled != nil {
			add("drop stalled", func(c *Scenario) { c.Workload.SSE.Stalled = nil })
		}
		if w.SSE.Slow != nil {
			add("drop slow", func(c *Scenario) { c.Workload.SSE.Slow = nil })
		}
		if w.SSE.Reconnect > 0 {
			add("no reconnects", func(c *Scenario) { c.Workload.SSE.Reconnect, c.Workload.SSE.Move = 0, "" })
		}
		add("fewer sse clients", func(c *Scenario) { c.Workload.SSE.Clients = max(1, w.SSE.Clients-1) })
	}
	if w.Cache != nil {
		add("drop cache", func(c *Scenario) { c.Workload.Cache = nil })
	}
	if w.Registry != nil {
		add("drop registry", func(c *Scenario) { c.Workload.Registry = nil })
	}
	if w.Publish != nil {
		add("drop publish", func(c *Scenario) { c.Workload.Publish = nil })
	}
	// Fault windows half as long.
	for i, f := range s.Faults {
		if f.Fault == "instance_restart" {
			continue
		}
		add("shorter window "+id(i), func(c *Scenario) {
			if f.For == 0 {
				c.Faults[i].For = round((d - f.At) / 2)
			} else {
				c.Faults[i].For = max(round(f.For/2), Dur(step))
			}
		})
	}
	if s.Instances > 1 {
		add("fewer instances", func(c *Scenario) {
			c.Instances--
			if c.Instances == 1 {
				c.Instances, c.InstanceMode = 0, ""
			}
		})
	}
	if s.InstanceMode != "" && !slices.ContainsFunc(s.Faults, func(f Fault) bool { return isInstanceFault(f.Fault) }) {
		// In process a rollback step still needs the journal (see Generate).
		flag := slices.ContainsFunc(s.Faults, func(f Fault) bool { return f.Fault == "flag" })
		add("in-process", func(c *Scenario) { c.InstanceMode, c.Config.Journal = "", flag })
	}
	if p := w.Publish; p != nil {
		add("publish rate", func(c *Scenario) { c.Workload.Publish.Rate = max(1, float64(int(p.Rate/2))) })
		add("publish flows", func(c *Scenario) { c.Workload.Publish.Flows = max(1, p.Flows/2) })
		add("publishers", func(c *Scenario) { c.Workload.Publish.Publishers = max(1, p.Publishers-1) })
		add("payload", func(c *Scenario) { c.Workload.Publish.Payload = 0 })
	}
	if ca := w.Cache; ca != nil {
		add("cache rate", func(c *Scenario) { c.Workload.Cache.Rate = max(1, float64(int(ca.Rate/2))) })
		add("cache clients", func(c *Scenario) { c.Workload.Cache.Clients = max(1, ca.Clients/2) })
		add("cache flows", func(c *Scenario) { c.Workload.Cache.Flows = max(1, ca.Flows/2) })
	}
	if rg := w.Registry; rg != nil {
		add("registry connections", func(c *Scenario) { c.Workload.Registry.Connections = max(1, rg.Connections/2) })
	}
	// Optional fault parameters left to their defaults.
	for i, f := range s.Faults {
		for _, k := range []string{"stream", "toxicity", "jitter"} {
			if _, ok := f.Params[k]; ok {
				add("default "+k+" "+id(i), func(c *Scenario) { delete(c.Faults[i].Params, k) })
			}
		}
	}
	return out
}

// setDuration sets the workload's duration to d, and the window of a fault
// that lasted to the end to the end.
func setDuration(c *Scenario, d Dur) {
	for i, f := range c.Faults {
		if f.For == 0 && f.Fault != "instance_restart" {
			c.Faults[i].For = c.Workload.Duration - f.At
		}
		if c.Faults[i].For > 0 && c.Faults[i].At+c.Faults[i].For > d {
			c.Faults[i].For = d - c.Faults[i].At
		}
	}
	c.Workload.Duration = d
}

// round rounds d to a multiple of 100ms (down, at least 0).
func round(d Dur) Dur { return d / Dur(step) * Dur(step) }
