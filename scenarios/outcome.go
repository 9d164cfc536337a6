package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/scenarios/check"
)

// Result is one checker's result with the spec's thresholds on its metrics
// applied.
type Result struct {
	check.Result
	// Error is the text of Err (the broken guarantee), for JSON.
	Error string `json:"error,omitempty"`
	// ReportOnly results are shown but do not decide the verdict.
	ReportOnly bool              `json:"report_only,omitempty"`
	Thresholds []ThresholdResult `json:"thresholds,omitempty"`
}

// ThresholdResult is one threshold judged against a measured metric.
type ThresholdResult struct {
	Metric   string  `json:"metric"`
	Bound    string  `json:"bound"`
	Measured float64 `json:"measured"`
	// Verdict is PASS, FAIL, or INCONCLUSIVE when the checker could not
	// measure the metric.
	Verdict verdict.Verdict `json:"verdict"`
}

// Outcome is what one run of one scenario against one profile decided.
type Outcome struct {
	Scenario string          `json:"scenario"`
	Profile  string          `json:"profile"`
	Seed     int64           `json:"seed"`
	Verdict  verdict.Verdict `json:"verdict"`
	Results  []Result        `json:"results"`
	// Counts are the Redis round trips and commands per op kind.
	Counts  map[string]counter.Counts `json:"counts,omitempty"`
	Started time.Time                 `json:"started"`
	Elapsed time.Duration             `json:"elapsed_ns"`
	Dir     string                    `json:"dir,omitempty"`
	// Notes are things the engine noticed that are not verdicts (a fault
	// that failed to undo).
	Notes []string `json:"notes,omitempty"`
	// Timing is how the scenario's intervals stand to production's
	// (Spec.Timing): "production", the settings scaled and "ratios kept",
	// or the ratios broken.
	Timing string `json:"timing,omitempty"`
	// Episodes states the power of a scenario that repeats its fault
	// episode (EpisodePower); empty for one episode.
	Episodes string `json:"episodes,omitempty"`
}

// Save writes o as JSON atomically.
func (o Outcome) Save(path string) error {
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	return history.WriteFileAtomic(path, append(b, '\n'))
}

// Failed lists the results that did not pass.
func (o Outcome) Failed() []Result {
	var out []Result
	for _, r := range o.Results {
		if r.Verdict != verdict.Pass {
			out = append(out, r)
		}
	}
	return out
}

// LayerConfig is the layer configuration the spec asks for: its overrides
// over the layer's defaults. The engine adds URL, TLS, hooks and key prefix.
func (s Spec) LayerConfig() impl.Config {
	c := s.Config
	flag := func(p *bool) bool { return p == nil || *p }
	cfg := impl.Config{
		Enabled:         flag(c.Enabled),
		EventBus:        flag(c.EventBus),
		Cache:           flag(c.Cache),
		SSE:             flag(c.SSE),
		PoolSize:        c.PoolSize,
		ConnectTimeout:  c.ConnectTimeout.D(),
		DrainTimeout:    c.DrainTimeout.D(),
		PublishBudget:   c.PublishBudget.D(),
		CallBudget:      c.CallBudget.D(),
		ProbeInterval:   c.ProbeInterval.D(),
		HealthInterval:  c.HealthInterval.D(),
		RegistryTTL:     c.RegistryTTL.D(),
		CleanupInterval: c.CleanupInterval.D(),
		CacheTTLActive:  c.CacheTTL.D(),
		MemoryEvents:    c.MemoryEvents,
		OutboxCap:       c.OutboxCap,
		StreamMaxLen:    c.StreamMaxLen,
		AckReplicas:     c.AckReplicas,
	}
	if c.ConnectTimeout == 0 {
		// Scenarios are scaled down: a dial that may take the default 5s
		// makes a start-up outage outlast the run.
		cfg.ConnectTimeout = time.Second
	}
	return cfg.WithDefaults()
}

// CheckConfig is the checkers' configuration for the spec: the layer's
// scaled TTLs, intervals and budgets, and the spec's bounds.
func (s Spec) CheckConfig() check.Config {
	lc := s.LayerConfig()
	b := s.Bounds
	slack := b.BudgetSlack.D()
	if slack == 0 {
		slack = 150 * time.Millisecond
	}
	budget := map[string]time.Duration{history.Publish: lc.PublishBudget + slack}
	for _, k := range []string{history.CacheGet, history.CacheSet, history.CacheInval,
		history.RegRegister, history.RegHeartbeat, history.RegUnreg, history.RegLookup, history.RegCount} {
		budget[k] = lc.CallBudget + slack
	}
	lag := b.HealthLag.D()
	if lag == 0 {
		lag = 200 * time.Millisecond
	}
	c := check.Config{
		DeliveryGrace:    b.DeliveryGrace.D(),
		DeliveryLate:     b.DeliveryLate.D(),
		SkipFaultWindows: b.SkipFaultWindows,
		RegistryTTL:      lc.RegistryTTL,
		CleanupInterval:  lc.CleanupInterval,
		Resync:           lc.ProbeInterval + lc.CallBudget + slack,
		Budget:           budget,
		BudgetKinds:      b.BudgetKinds,
		MaxFallback:      b.MaxFallback.D(),
		MaxRecover:       b.MaxRecover.D(),
		MaxErrorRate:     b.MaxErrorRate,
		HealthInterval:   lc.HealthInterval + s.Workload.Health.Interval.D() + lag,
		StreamMaxLen:     lc.StreamMaxLen,
		StreamTTL:        lc.StreamTTL,
	}
	minLoad := b.MinLoad
	if minLoad == 0 {
		minLoad = 0.5
	}
	if minLoad > 0 && len(s.Faults) > 0 && !s.startupFault() {
		c.MinRateBefore = minLoad * s.Workload.Publish.Rate
	}
	return c
}

// startupFault reports whether a fault starts with the run: there is then
// no "before" to measure the load in.
func (s Spec) startupFault() bool {
	for _, f := range s.Faults {
		if f.At == 0 {
			return true
		}
	}
	return false
}

// Judge applies the spec's checks and thresholds to a history. It is pure:
// `harness report` re-judges a saved run with it. A history of a scenario
// that was not run (MetaUnavailable) judges every check INCONCLUSIVE.
func Judge(h history.History, s Spec) ([]Result, error) {
	if why := h.Meta[MetaUnavailable]; why != "" {
		return unavailableResults(s, why), nil
	}
	names := make([]string, len(s.Checks))
	for i, c := range s.Checks {
		names[i] = c.Name
	}
	cfg := s.CheckConfig()
	cfg.Wipes = wipeStarts(h, s)
	wiped, exempt := exemptWiped(h, cfg.Wipes)
	res, err := check.Run(h, names, cfg)
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(s.Checks))
	for i, c := range s.Checks {
		r := res[i]
		if judge := wipeExempt[r.Check]; judge != nil && !errors.Is(r.Err, check.ErrLowLoad) {
			if exempt {
				r = judge(wiped, cfg)
				r.Evidence = append(r.Evidence, fmt.Sprintf("not judged: %d publishes Redis acknowledged before a fault that wiped its data", len(h.Ops)-len(wiped.Ops)))
			}
		}
		out[i] = Result{Result: r, ReportOnly: c.ReportOnly}
		for _, t := range c.Thresholds {
			out[i].applyThreshold(t)
		}
		if out[i].Err != nil {
			out[i].Error = out[i].Err.Error()
		}
	}
	return out, nil
}

// applyThreshold judges t against the metric the checker measured: a
// violated bound makes the result FAIL, an unmeasured one makes a PASS
// INCONCLUSIVE.
func (r *Result) applyThreshold(t Threshold) {
	v, ok := r.Metrics[t.Metric]
	tr := ThresholdResult{Metric: t.Metric, Bound: t.Op + " " + formatFloat(t.Value), Measured: v}
	switch {
	case !ok:
		tr.Verdict = verdict.Inconclusive
		r.Evidence = append(r.Evidence, fmt.Sprintf("threshold %s: metric not measured", t))
		if r.Verdict == verdict.Pass {
			r.Verdict = verdict.Inconclusive
			r.Err = fmt.Errorf("%w: metric %s not measured", check.ErrNoData, t.Metric)
		}
	case t.Holds(v):
		tr.Verdict = verdict.Pass
	default:
		tr.Verdict = verdict.Fail
		r.Evidence = append([]string{fmt.Sprintf("threshold %s: measured %s", t, formatFloat(v))}, r.Evidence...)
		if r.Verdict != verdict.Fail {
			r.Verdict = verdict.Fail
			r.Err = fmt.Errorf("threshold %s violated: measured %s", t, formatFloat(v))
		}
	}
	r.Thresholds = append(r.Thresholds, tr)
}

// Fold is a scenario run's verdict from its results: verdict.Fold of the
// results that decide (a report-only result does not). No results is
// INCONCLUSIVE; results that are all report-only leave nothing to fail: PASS.
func Fold(rs []Result) verdict.Verdict {
	if len(rs) == 0 {
		return verdict.Inconclusive
	}
	vs := []verdict.Verdict{verdict.Pass}
	for _, r := range rs {
		if !r.ReportOnly {
			vs = append(vs, r.Verdict)
		}
	}
	return verdict.Fold(vs...)
}

// wipeExempt are the checks that judge acknowledged events against the
// final history read, so that a fault that wiped Redis's data afterwards
// (exemptWiped) is not blamed on the layer: loss, and the loss an
// instance's stop or kill caused (an event an instance acknowledged from
// Redis before it stopped, wiped by a later kill of a server without
// persistence: explore's acked_on_stop-290f75e7).
var wipeExempt = map[string]func(history.History, check.Config) check.Result{
	"lost": check.Lost, "acked_on_stop": check.AckedOnStop, "lost_on_crash": check.LostOnCrash}

// wipeStarts are the recorded starts of the faults of h whose steps wipe
// Redis's data (FaultStep.Wipes). Faults are matched to steps by name, in
// time order.
func wipeStarts(h history.History, s Spec) []time.Duration {
	var wipes []time.Duration
	seen := map[string]int{}
	byName := map[string][]history.Fault{}
	for _, f := range h.Faults {
		byName[f.Name] = append(byName[f.Name], f)
	}
	for _, fs := range byName {
		sort.Slice(fs, func(i, j int) bool { return fs[i].Start < fs[j].Start })
	}
	for _, st := range s.Faults {
		i := seen[st.Fault]
		seen[st.Fault]++
		if st.Wipes && i < len(byName[st.Fault]) {
			wipes = append(wipes, byName[st.Fault][i].Start)
		}
	}
	return wipes
}

// exemptWiped drops from h the publishes acknowledged before a fault that
// wipes Redis's data (wipes: wipeStarts): whether Redis acknowledged them or
// the layer replayed them to Redis before the fault, no layer can make
// them readable afterwards. A publish that returned up to check.WipeSlack
// after the fault's start counts too when the layer was on Redis ("redis"
// mode): Redis answered it before it died.
func exemptWiped(h history.History, wipes []time.Duration) (history.History, bool) {
	if len(wipes) == 0 {
		return h, false
	}
	last := slices.Max(wipes)
	ops := make([]history.Op, 0, len(h.Ops))
	for _, o := range h.Ops {
		if o.Kind == history.Publish && o.OK && (o.Return < last || o.Mode == impl.ModeRedis && o.Return < last+check.WipeSlack) {
			continue
		}
		ops = append(ops, o)
	}
	h.Ops = ops
	return h, true
}
