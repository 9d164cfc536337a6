// Package check judges a recorded run. Every checker is a pure function over
// a history.History: it reads the operations and fault windows a run left
// behind and returns one Result naming the guarantee it judged, a verdict,
// the evidence (event ids and times) and metrics. Nothing here talks to Redis,
// so a saved run can be re-judged offline.
//
// A checker never passes on missing evidence: a history without the
// operations it judges gives INCONCLUSIVE (ErrNoData), and Run turns every
// verdict INCONCLUSIVE when the load before the first fault was below
// Config.MinRateBefore (ErrLowLoad).
package check

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/verdict"
)

// Result is what one checker found.
type Result struct {
	// Check is the checker's name (an entry of Checks).
	Check string `json:"check"`
	// Guarantee is the text of the guarantee judged.
	Guarantee string          `json:"guarantee"`
	Verdict   verdict.Verdict `json:"verdict"`
	// Err is nil on PASS; otherwise it wraps the sentinel of the broken
	// guarantee (FAIL), ErrNoData or ErrLowLoad (INCONCLUSIVE). Test it
	// with errors.Is. JSON carries its text as "error".
	Err error `json:"-"`
	// Evidence lists what the verdict rests on, worst first, at most
	// Config.MaxEvidence lines.
	Evidence []string `json:"evidence,omitempty"`
	// Metrics are measured values, each named in the Metrics catalogue.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Sensitivity states, where the check can, the rarest violation it
	// would have caught with 95 % probability given the events it judged.
	Sensitivity string `json:"sensitivity,omitempty"`
	// Anomalies are the events found wrong, as data, at most
	// Config.MaxEvidence; AnomaliesLeft counts those left out.
	Anomalies     []Anomaly `json:"anomalies,omitempty"`
	AnomaliesLeft int       `json:"anomalies_left,omitempty"`
}

// MarshalJSON writes r with its error text as "error".
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	msg := ""
	if r.Err != nil {
		msg = r.Err.Error()
	}
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(r), msg})
}

// Sentinel errors, one per guarantee; the text states the guarantee.
var (
	ErrLost              = errors.New("an acknowledged event must be readable from history after recovery")
	ErrDuplicate         = errors.New("an event must appear at most once in a history read and be delivered at most once to each subscriber")
	ErrReordered         = errors.New("a flow's events must appear, in history and in every subscriber's stream, in publish order: per publisher, and after every event acknowledged before they were published")
	ErrDeliveryLost      = errors.New("a subscriber must receive every event acknowledged while it was subscribed")
	ErrDeliveryDuplicate = errors.New("a subscriber must receive each event at most once")
	ErrDeliveryLate      = errors.New("a subscriber must receive an event within the delivery bound of its publish")
	ErrStaleRead         = errors.New("a cache read must never return a state older than the last completed invalidation")
	ErrVanished          = errors.New("a connection that heartbeats within its TTL must appear in every lookup of its flow")
	ErrLingered          = errors.New("a connection that stopped heartbeating must disappear from lookups within TTL plus one cleanup interval")
	ErrGhost             = errors.New("a connection must disappear from every lookup and count once its unregister has returned")
	ErrCountMismatch     = errors.New("a registry count must agree, on every instance, with the connections live across instances when it is read")
	ErrBlocked           = errors.New("no call may take longer than its budget")
	ErrNoFallback        = errors.New("after a fault starts, operations must succeed again within the fallback bound")
	ErrNoRecovery        = errors.New("after a fault ends, operations must be served from Redis again within the recovery bound")
	ErrHealthMismatch    = errors.New("the health endpoint must report the Redis state within one health interval")
	ErrErrorRate         = errors.New("the error rate of each phase must stay within its bound")
	ErrLowLoad           = errors.New("the load before the first fault must reach its target for the run to be judged")
	ErrStreamBounds      = errors.New("a flow's stream must be trimmed to about its MAXLEN and expire within its configured TTL")
	ErrNoData            = errors.New("a verdict needs the operations it judges to be in the history")
)

// Checker judges one guarantee over a history.
type Checker func(h history.History, c Config) Result

// Check is a named checker and the guarantee it judges.
type Check struct {
	Name string
	Func Checker
	// Guarantee is the number of the guarantee the checker judges in
	// the product brief (DESIGN.md, "Guarantees"); 0 for a check that judges a measurement
	// or the run itself rather than one of them.
	Guarantee int
}

// Checks lists every checker by name, in the order Run reports them.
var Checks = []Check{
	{"lost", Lost, 2},
	{"duplicated", Duplicated, 3},
	{"reordered", Reordered, 3},
	{"delivery", Delivery, 4},
	{"session_chain", SessionChain, 0},
	{"stale_read", StaleRead, 6},
	{"registry", Registry, 5},
	{"registry_count", RegistryCount, 0},
	{"budget", Budget, 1},
	{"fallback_time", FallbackTime, 1},
	{"recover_time", RecoverTime, 7},
	{"error_rate", ErrorRate, 0},
	{"latency", Latency, 0},
	{"health", Health, 8},
	{"load", Load, 0},
	{"stream_bounds", StreamBounds, 0},
	{"acked_on_stop", AckedOnStop, 0},
	{"lost_on_crash", LostOnCrash, 0},
	{"memory", Memory, 0},
	{"round_trips", RoundTrips, 9},
}

// GuaranteeNumber is the DESIGN.md number of the guarantee the check named
// name judges (Check.Guarantee), 0 when it judges none or is unknown.
func GuaranteeNumber(name string) int {
	for _, ch := range Checks {
		if ch.Name == name {
			return ch.Guarantee
		}
	}
	return 0
}

// Names returns the names of Checks, in order.
func Names() []string {
	out := make([]string, len(Checks))
	for i, ch := range Checks {
		out[i] = ch.Name
	}
	return out
}

// Lookup returns the checker named name.
func Lookup(name string) (Checker, bool) {
	for _, ch := range Checks {
		if ch.Name == name {
			return ch.Func, true
		}
	}
	return nil, false
}

// Run applies the named checkers (every checker when names is empty) to h.
// An unknown name is a configuration error (exit 3), reported before any
// checker runs. When c.MinRateBefore > 0 and the load before the first fault
// fell short, every PASS or FAIL becomes INCONCLUSIVE: its Err then wraps
// ErrLowLoad as well as the original sentinel, and its evidence keeps what
// it would have said.
func Run(h history.History, names []string, c Config) ([]Result, error) {
	if len(names) == 0 {
		names = Names()
	}
	fns := make([]Checker, len(names))
	for i, n := range names {
		fn, ok := Lookup(n)
		if !ok {
			return nil, exitcode.Configf("unknown check %q (known: %s)", n, strings.Join(Names(), ", "))
		}
		fns[i] = fn
	}
	h.Ops = sortedOps(h) // once, so that every checker finds them sorted
	out := make([]Result, len(names))
	for i, fn := range fns {
		out[i] = fn(h, c)
	}
	if c.MinRateBefore <= 0 {
		return out, nil
	}
	load := Load(h, c)
	if load.Verdict != verdict.Inconclusive {
		return out, nil
	}
	for i, r := range out {
		if r.Check == "load" || r.Verdict == verdict.Inconclusive {
			continue
		}
		why := "load before the first fault below target"
		if load.Err != nil {
			why = load.Err.Error()
		}
		out[i].Evidence = append([]string{fmt.Sprintf("not judged: %s; verdict would have been %s", why, r.Verdict)}, r.Evidence...)
		if r.Err != nil {
			out[i].Err = fmt.Errorf("%w (would have been %s: %w)", ErrLowLoad, r.Verdict, r.Err)
		} else {
			out[i].Err = fmt.Errorf("%w (would have been %s)", ErrLowLoad, r.Verdict)
		}
		out[i].Verdict = verdict.Inconclusive
	}
	return out, nil
}

// Config holds the bounds the checkers judge against. Zero values mean the
// default stated on each field; defaults are applied in one place
// (withDefaults).
type Config struct {
	// MaxEvidence caps the evidence lines of one result. Default 20; -1
	// means no cap.
	MaxEvidence int

	// DeliveryGrace: events acknowledged within this much of the end of
	// a subscription are not required to reach it. Default 500ms.
	DeliveryGrace time.Duration
	// DeliveryLate: a delivery later than this after its publish call is
	// late. Default 1s; -1 disables the late check.
	DeliveryLate time.Duration
	// SkipFaultWindows exempts events published, and registry lookups
	// made, inside a fault window from delivery and visibility checks
	// (for cross-instance workloads, where an outage partitions the
	// instances). Default false: everything is judged.
	SkipFaultWindows bool

	// RegistryTTL is a connection's TTL without heartbeat. Default 300s
	// (impl default).
	RegistryTTL time.Duration
	// CleanupInterval is the registry's stale sweep interval. Default 60s
	// (impl default).
	CleanupInterval time.Duration
	// Resync is how long after a fault window ends an instance may take to
	// notice that Redis is back and write what it answered from memory
	// during the window: a register or heartbeat called inside a window,
	// or less than Resync after its end, holds lookups and counts from the
	// window's end + Resync on, not from its return. Default 450ms (the
	// impl's 250ms probe interval, a 50ms call budget and 150ms of slack).
	Resync time.Duration

	// Wipes are the starts of the faults that lost Redis's data (a kill or
	// restart of a server without persistence): a registry register or
	// heartbeat that held before one holds no lookup after it; the
	// connection is owed again from its next one, which writes it back.
	Wipes []time.Duration

	// Budget is the call budget per op kind. Default 50ms for publish and
	// every cache and registry kind (impl PublishBudget and CallBudget).
	Budget map[string]time.Duration
	// BudgetKinds are the kinds the budget check judges. Default: every
	// kind in Budget.
	BudgetKinds []string

	// MaxFallback bounds the time from a fault's start to the first
	// successful operation. Default 1s.
	MaxFallback time.Duration
	// MaxRecover bounds the time from a fault's end to the first
	// operation served from Redis. Default 2s.
	MaxRecover time.Duration

	// MaxErrorRate is the largest error rate allowed in any phase, in
	// percent. Default 1; -1 disables the bound (rates are still
	// measured).
	MaxErrorRate float64

	// HealthInterval is the time a health report may lag a Redis state
	// change. Default 30s (impl default).
	HealthInterval time.Duration

	// MinRateBefore is the acknowledged publish rate (ops/s) the run must
	// reach before the first fault to be judged. Default 0: no minimum.
	MinRateBefore float64

	// StreamMaxLen and StreamTTL are the layer's stream bounds (TASK-005:
	// MAXLEN ~ 10000, 24 h). Defaults 10000 and 24h (impl defaults).
	StreamMaxLen int64
	StreamTTL    time.Duration
}

const defaultBudget = 50 * time.Millisecond

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.MaxEvidence == 0 {
		c.MaxEvidence = 20
	}
	def(&c.DeliveryGrace, 500*time.Millisecond)
	def(&c.DeliveryLate, time.Second)
	def(&c.RegistryTTL, 300*time.Second)
	def(&c.CleanupInterval, 60*time.Second)
	def(&c.Resync, 450*time.Millisecond)
	def(&c.StreamTTL, 24*time.Hour)
	if c.StreamMaxLen == 0 {
		c.StreamMaxLen = 10000
	}
	if c.Budget == nil {
		c.Budget = map[string]time.Duration{}
		for _, k := range []string{
			history.Publish, history.CacheGet, history.CacheSet, history.CacheInval,
			history.RegRegister, history.RegHeartbeat, history.RegUnreg, history.RegLookup, history.RegCount,
		} {
			c.Budget[k] = defaultBudget
		}
	}
	if len(c.BudgetKinds) == 0 {
		for k := range c.Budget {
			c.BudgetKinds = append(c.BudgetKinds, k)
		}
		sort.Strings(c.BudgetKinds)
	}
	def(&c.MaxFallback, time.Second)
	def(&c.MaxRecover, 2*time.Second)
	if c.MaxErrorRate == 0 {
		c.MaxErrorRate = 1
	}
	def(&c.HealthInterval, 30*time.Second)
	return c
}

// result starts a Result for check judging guarantee.
func result(check, guarantee string) Result {
	return Result{Check: check, Guarantee: guarantee, Metrics: map[string]float64{}}
}

// noData makes r INCONCLUSIVE for want of evidence.
func (r Result) noData(format string, args ...any) Result {
	r.Verdict = verdict.Inconclusive
	r.Err = fmt.Errorf("%w: %s", ErrNoData, fmt.Sprintf(format, args...))
	return r
}

// finish sets the verdict from the errors found: FAIL when any, else
// INCONCLUSIVE when unjudged names what could not be judged, else PASS. The
// evidence is capped at c.MaxEvidence lines.
func (r Result) finish(c Config, fails []error, unjudged string) Result {
	switch {
	case len(fails) > 0:
		r.Verdict = verdict.Fail
		r.Err = errors.Join(fails...)
	case unjudged != "":
		r.Verdict = verdict.Inconclusive
		r.Err = fmt.Errorf("%w: %s", ErrNoData, unjudged)
	default:
		r.Verdict = verdict.Pass
	}
	if c.MaxEvidence >= 0 && len(r.Evidence) > c.MaxEvidence {
		more := len(r.Evidence) - c.MaxEvidence
		r.Evidence = append(r.Evidence[:c.MaxEvidence:c.MaxEvidence], fmt.Sprintf("… and %d more", more))
	}
	if c.MaxEvidence >= 0 && len(r.Anomalies) > c.MaxEvidence {
		r.AnomaliesLeft = len(r.Anomalies) - c.MaxEvidence
		r.Anomalies = r.Anomalies[:c.MaxEvidence:c.MaxEvidence]
	}
	return r
}

// secs formats an offset as seconds with millisecond precision ("2.314s").
func secs(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

// ms converts a duration to float milliseconds, the unit of every *_ms metric.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
