package scenarios

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/service"
)

// Production-proportioned timing. Scenarios scale intervals down so that
// TTLs and intervals elapse within seconds, and a scaled setting that
// loses its production ratio to another hides the defects that ratio
// decides: with health 200 ms and probe 100 ms the cache lease (three
// health intervals) lapses in every 2 s outage, a fresh cache epoch
// starts, and an invalidation the outage lost is never served stale,
// while at production settings (health 30 s, lease 90 s) every outage
// under 90 s keeps the epoch and serves it. Timing states how a scenario's
// effective configuration stands to production's: the settings it scales
// and, for each ratio a check depends on, whether it is kept.

// tolerance is how far a ratio may stray from production's, either way,
// and still count as production's.
const tolerance = 0.1

// Timing is how a scenario's timing stands to production's.
type Timing struct {
	// Scaled are the settings that differ from production's defaults.
	Scaled []Setting `json:"scaled,omitempty"`
	// Ratios are the production ratios between intervals, as the
	// scenario has them.
	Ratios []Ratio `json:"ratios"`
}

// Setting is one interval of the scenario next to production's.
type Setting struct {
	Name       string        `json:"name"`
	Got        time.Duration `json:"got_ns"`
	Production time.Duration `json:"production_ns"`
}

// Ratio is one ratio between two intervals, Num/Den, as the scenario has
// it and as production has it.
type Ratio struct {
	Num, Den   string  `json:"-"`
	Got        float64 `json:"got"`
	Production float64 `json:"production"`
	// Min and Max bound the values that keep what the ratio decides (a
	// value past production's in the direction that makes the scenario
	// stricter stays within them).
	Min float64 `json:"min"`
	Max float64 `json:"max,omitempty"`
	// Matters is set when the scenario runs a check whose verdict the
	// ratio decides (Needs names it).
	Matters bool   `json:"matters"`
	Needs   string `json:"needs,omitempty"`
	// Why is what a broken ratio hides.
	Why string `json:"why"`
}

// Name is "num/den".
func (r Ratio) Name() string { return r.Num + "/" + r.Den }

// Kept reports whether the ratio keeps what it decides.
func (r Ratio) Kept() bool { return r.Got >= r.Min && (r.Max == 0 || r.Got <= r.Max) }

// Broken reports whether the ratio is broken where a check of the
// scenario depends on it.
func (r Ratio) Broken() bool { return r.Matters && !r.Kept() }

// Error says what is broken and what it hides.
func (r Ratio) Error() string {
	want := "at least " + ratioNum(r.Min)
	if r.Max > 0 {
		want = "at most " + ratioNum(r.Max)
	}
	return fmt.Sprintf("%s is %s (production %s; %s needs %s): %s", r.Name(), ratioNum(r.Got), ratioNum(r.Production), r.Needs, want, r.Why)
}

// Broken lists the ratios broken where a check depends on them.
func (t Timing) Broken() []Ratio {
	var out []Ratio
	for _, r := range t.Ratios {
		if r.Broken() {
			out = append(out, r)
		}
	}
	return out
}

// String is the report's timing line: "production", "scaled (…), ratios
// kept", or the scaled settings and the ratios broken.
func (t Timing) String() string {
	var b strings.Builder
	if len(t.Scaled) == 0 {
		b.WriteString("production")
	} else {
		parts := make([]string, len(t.Scaled))
		for i, s := range t.Scaled {
			parts[i] = s.Name + " " + s.Got.String() + " " + scale(s)
		}
		b.WriteString("scaled (" + strings.Join(parts, ", ") + ")")
	}
	broken := t.Broken()
	switch {
	case len(broken) > 0:
		names := make([]string, len(broken))
		for i, r := range broken {
			names[i] = fmt.Sprintf("%s %s (production %s)", r.Name(), ratioNum(r.Got), ratioNum(r.Production))
		}
		b.WriteString("; ratios broken: " + strings.Join(names, ", "))
	case len(t.Scaled) > 0:
		b.WriteString(", ratios kept")
	}
	var idle []string
	for _, r := range t.Ratios {
		if !r.Matters && !r.Kept() {
			idle = append(idle, fmt.Sprintf("%s %s (production %s)", r.Name(), ratioNum(r.Got), ratioNum(r.Production)))
		}
	}
	if len(idle) > 0 {
		b.WriteString(" where a check here depends on them; off production's, with no check here depending on it: " + strings.Join(idle, ", "))
	}
	return b.String()
}

// scale is "×1/150" (scaled down) or "×4" (up).
func scale(s Setting) string {
	if s.Got <= 0 || s.Production <= 0 {
		return ""
	}
	f := float64(s.Production) / float64(s.Got)
	if f >= 1 {
		return "×1/" + ratioNum(f)
	}
	return "×" + ratioNum(1/f)
}

func ratioNum(v float64) string {
	if math.IsInf(v, 0) {
		return "∞"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// Uses is what of a scenario the timing check needs: the checks it runs,
// whether it has faults, and the heartbeat of its registry connections
// (0: none).
type Uses struct {
	Checks    []string
	Faults    bool
	Heartbeat time.Duration
}

// TimingOf computes cfg's (a layer configuration with defaults applied)
// settings and ratios against production's defaults. It is pure.
func TimingOf(cfg impl.Config, u Uses) Timing {
	prod := impl.Config{}.WithDefaults()
	var t Timing
	set := func(name string, got, p time.Duration) {
		if got != p {
			t.Scaled = append(t.Scaled, Setting{name, got, p})
		}
	}
	set("health_interval", cfg.HealthInterval, prod.HealthInterval)
	set("probe_interval", cfg.ProbeInterval, prod.ProbeInterval)
	set("cache_ttl", cfg.CacheTTLActive, prod.CacheTTLActive)
	set("registry_ttl", cfg.RegistryTTL, prod.RegistryTTL)
	set("cleanup_interval", cfg.CleanupInterval, prod.CleanupInterval)
	if u.Heartbeat > 0 {
		set("heartbeat", u.Heartbeat, service.DefaultHeartbeatInterval)
	}
	set("publish_budget", cfg.PublishBudget, prod.PublishBudget)
	set("call_budget", cfg.CallBudget, prod.CallBudget)
	set("connect_timeout", cfg.ConnectTimeout, prod.ConnectTimeout)
	set("drain_timeout", cfg.DrainTimeout, prod.DrainTimeout)
	set("stream_ttl", cfg.StreamTTL, prod.StreamTTL)

	runs := func(names ...string) string {
		for _, n := range names {
			if slices.Contains(u.Checks, n) {
				return n
			}
		}
		return ""
	}
	ratio := func(num, den string, got, p [2]time.Duration, min, max float64, needs, why string) {
		r := Ratio{Num: num, Den: den, Got: float64(got[0]) / float64(got[1]), Production: float64(p[0]) / float64(p[1]),
			Min: min, Max: max, Needs: needs, Matters: needs != "", Why: why}
		t.Ratios = append(t.Ratios, r)
	}
	near := func(p float64) (float64, float64) { return p * (1 - tolerance), p * (1 + tolerance) }

	cacheFault := ""
	if u.Faults {
		cacheFault = runs("stale_read")
	}
	lo, _ := near(float64(prod.HealthInterval) / float64(prod.ProbeInterval))
	ratio("health_interval", "probe_interval", [2]time.Duration{cfg.HealthInterval, cfg.ProbeInterval},
		[2]time.Duration{prod.HealthInterval, prod.ProbeInterval}, lo, 0, cacheFault,
		"the cache lease is three health intervals (90 s at production): below this it lapses within an outage the layer rides out at production settings, and the fresh cache epoch hides an invalidation the outage lost")
	lo, _ = near(float64(prod.CacheTTLActive) / float64(prod.HealthInterval))
	ratio("cache_ttl", "health_interval", [2]time.Duration{cfg.CacheTTLActive, cfg.HealthInterval},
		[2]time.Duration{prod.CacheTTLActive, prod.HealthInterval}, lo, 0, cacheFault,
		"a cached state outlives the cache lease at production: below this it expires first and hides a stale state the lease would have served")
	lo, _ = near(float64(prod.RegistryTTL) / float64(prod.CleanupInterval))
	ratio("registry_ttl", "cleanup_interval", [2]time.Duration{cfg.RegistryTTL, cfg.CleanupInterval},
		[2]time.Duration{prod.RegistryTTL, prod.CleanupInterval}, lo, 0, runs("registry", "registry_count"),
		"a stopped connection may stay listed for the TTL and one cleanup interval: below this the grace is a larger share of the TTL than at production, and a ghost that outstays production's bound passes")
	if u.Heartbeat > 0 {
		_, hi := near(float64(prod.RegistryTTL) / float64(service.DefaultHeartbeatInterval))
		ratio("registry_ttl", "heartbeat", [2]time.Duration{cfg.RegistryTTL, u.Heartbeat},
			[2]time.Duration{prod.RegistryTTL, service.DefaultHeartbeatInterval}, 1, hi, runs("registry"),
			"above this a connection gets more heartbeats per TTL than at production, and a registry that refreshes on only some of them keeps it listed")
	}
	ratio("connect_timeout", "publish_budget", [2]time.Duration{cfg.ConnectTimeout, cfg.PublishBudget},
		[2]time.Duration{prod.ConnectTimeout, prod.PublishBudget}, 2, 0, runs("budget"),
		"a dial that hangs must outlast the budget and the check's slack, or a layer that waits for it passes the budget check")
	return t
}

// Timing is the spec's timing against production's.
func (s Spec) Timing() Timing {
	u := Uses{Faults: len(s.Faults) > 0}
	for _, c := range s.Checks {
		u.Checks = append(u.Checks, c.Name)
	}
	lc := s.LayerConfig()
	switch {
	case s.Workload.Registry.Connections > 0:
		u.Heartbeat = s.Workload.Registry.Heartbeat.D()
		if u.Heartbeat == 0 {
			u.Heartbeat = defaultRegistryHeartbeat
		}
	case s.Workload.SSE.Clients+s.Workload.SSE.Browser.Clients > 0:
		u.Heartbeat = sseHeartbeat(lc)
	}
	return TimingOf(lc, u)
}

// defaultRegistryHeartbeat is workload.registry.heartbeat's default.
const defaultRegistryHeartbeat = 200 * time.Millisecond

// sseHeartbeat is the heartbeat of the service's SSE streams in a
// scenario: four per registry TTL.
func sseHeartbeat(cfg impl.Config) time.Duration { return cfg.RegistryTTL / 4 }
