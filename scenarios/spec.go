// Package scenarios runs the harness's chaos scenarios: a scenario is data (a
// YAML file naming the target, the profiles, the workload, a fault timeline
// and the checks), the engine runs workload and faults together under one
// context while every client records its calls in one history, and the
// checkers (package scenarios/check) judge that history afterwards.
package scenarios

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gonogo/harness/target"
)

// Spec is one scenario file.
type Spec struct {
	// Name is the scenario's name (the file name without .yaml).
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Target      Target `yaml:"target"`
	// Profiles lists the profiles the scenario applies to. Default: every
	// registered profile.
	Profiles []string `yaml:"profiles"`
	// Instances is the number of service instances sharing one Redis.
	// Default 1.
	Instances int `yaml:"instances"`
	// InstanceMode is how the engine runs the instances: "in-process"
	// (default: layers built in the harness) or "process" (`harness serve
	// -control` child processes on loopback, reached over the HTTP
	// contract; the instance faults need it, and publishers then spread
	// over the instances, pub-p on instance p mod n). While an instance
	// is down, calls that any instance can serve (publish, cache, SSE
	// subscribe) go to the next instance that is up, and calls that
	// belong to it (its registry connections, lookups and health) are
	// not made: error_rate judges the calls of the live instances only.
	InstanceMode string   `yaml:"instance_mode"`
	Config       Config   `yaml:"config"`
	Workload     Workload `yaml:"workload"`
	// Faults is the fault timeline.
	Faults []FaultStep `yaml:"faults"`
	// Checks lists the checkers that judge the run.
	Checks []CheckSpec `yaml:"checks"`
	// Bounds are what the checkers judge against.
	Bounds Bounds `yaml:"bounds"`
	// Recovery bounds the wait, after the workload, for the layers to be
	// back on Redis and the history to settle. Default 3s.
	Recovery Duration `yaml:"recovery"`
	// Episodes repeats the fault timeline within the run, so that a
	// verdict does not turn on one race (which command meets a fault
	// first): episode i (from 0) injects every step EpisodeEvery × i later
	// than written, plus up to 250 ms spreading the episodes over the
	// phases of the workload's periodic calls (episodeOffset), and the
	// workload runs EpisodeEvery × (Episodes-1) + 250 ms longer. The checks judge the whole run, every episode's fault
	// window in it; the report states the power (EpisodePower). Default
	// 1; at most maxEpisodes.
	Episodes int `yaml:"episodes"`
	// EpisodeEvery is the time from one episode's start to the next's.
	// Default: the workload's duration less the first step's at (each
	// episode gets the fault and the recovery after it as written).
	EpisodeEvery Duration `yaml:"episode_every"`

	// File is where the spec was read from ("catalogue/basic.yaml" or a
	// path); set by Parse.
	File string `yaml:"-"`
	Line int    `yaml:"-"`
	// Source is the file's text, saved with a run so that it can be
	// re-judged offline.
	Source []byte `yaml:"-"`
}

// Target says where Redis comes from and how it is set up.
type Target struct {
	// Kind is "process" (default) or "remote-sim" (a process behind TLS
	// with an injected round-trip time). `harness run --target` overrides
	// it for every scenario (TargetOptions.Kind); the other options map
	// onto the chosen target, and a target that cannot honour one reports
	// the scenario INCONCLUSIVE (ErrUnavailable).
	Kind target.Kind `yaml:"kind"`
	// AOF turns on appendonly everysec.
	AOF bool `yaml:"aof"`
	// MaxMemory ("2mb") and Policy ("allkeys-lru") set eviction.
	MaxMemory string `yaml:"maxmemory"`
	Policy    string `yaml:"policy"`
	// TLS serves Redis over TLS with certificates made at run time.
	TLS bool `yaml:"tls"`
	// RTT is the injected round-trip time of remote-sim. Default 20ms.
	RTT  Duration `yaml:"rtt"`
	Line int      `yaml:"-"`
}

// Config overrides the layer's configuration, scaled down so that TTLs and
// intervals elapse within a run. Zero keeps the layer's default.
type Config struct {
	// Enabled is REDIS_ENABLED (default true); EventBus, Cache, SSE are the
	// component flags (default true). A false value is the rollback.
	Enabled  *bool `yaml:"enabled"`
	EventBus *bool `yaml:"event_bus"`
	Cache    *bool `yaml:"cache"`
	SSE      *bool `yaml:"sse"`

	PoolSize        int      `yaml:"pool_size"`
	ConnectTimeout  Duration `yaml:"connect_timeout"`
	DrainTimeout    Duration `yaml:"drain_timeout"`
	PublishBudget   Duration `yaml:"publish_budget"`
	CallBudget      Duration `yaml:"call_budget"`
	ProbeInterval   Duration `yaml:"probe_interval"`
	HealthInterval  Duration `yaml:"health_interval"`
	RegistryTTL     Duration `yaml:"registry_ttl"`
	CleanupInterval Duration `yaml:"cleanup_interval"`
	CacheTTL        Duration `yaml:"cache_ttl"`
	MemoryEvents    int      `yaml:"memory_events"`
	OutboxCap       int      `yaml:"outbox_cap"`
	StreamMaxLen    int64    `yaml:"stream_maxlen"`
	// AckReplicas is impl.Config.AckReplicas: 0 auto (1 on a sentinel
	// target), -1 off, n wait for n replicas.
	AckReplicas int `yaml:"ack_replicas"`
	// Journal keeps each instance's outbox journal in a directory of its
	// own (OUTBOX_JOURNAL_DIR for a process, see docs/http.md; Config.
	// JournalDir in process): what it acknowledged from memory survives a
	// stop, a kill or a flag step's rebuild, and the instance writes it
	// when it starts again. Default false.
	Journal bool `yaml:"journal"`
	Line    int  `yaml:"-"`
}

// Workload is the traffic a scenario drives while its faults run.
type Workload struct {
	// Duration is how long traffic runs. Required.
	Duration Duration `yaml:"duration"`
	Publish  Publish  `yaml:"publish"`
	SSE      SSE      `yaml:"sse"`
	Cache    Cache    `yaml:"cache"`
	Registry Registry `yaml:"registry"`
	Health   Health   `yaml:"health"`
	Line     int      `yaml:"-"`
}

// Publish drives the event bus.
type Publish struct {
	// Rate is publishes per second across all publishers (0: no publishing).
	Rate float64 `yaml:"rate"`
	// Flows is the number of flows (default 4); Publishers the number of
	// publishing clients (default 2), each publishing to every flow.
	Flows      int `yaml:"flows"`
	Publishers int `yaml:"publishers"`
	// Concurrency is the number of in-flight publishes per publisher
	// (default 1). Above 1 per-flow order is only meaningful per worker,
	// so each worker is its own publisher in the history.
	Concurrency int `yaml:"concurrency"`
	// Payload is the event payload size in bytes (default 64).
	Payload int `yaml:"payload"`
	Line    int `yaml:"-"`
}

// SSE drives live delivery: Clients subscribers per flow, spread across
// the service instances, reconnecting with Last-Event-ID when dropped, as
// a browser's EventSource does. Every connection of a client is recorded
// (a subscribe op numbered by Seq, naming its instance and the cursor it
// sent), so that the session_chain check can follow it across reconnects.
type SSE struct {
	Clients int `yaml:"clients"`
	// Flows limits subscriptions to the first N flows (default all).
	Flows int `yaml:"flows"`
	// Reconnect makes each client drop its stream and reconnect every
	// Reconnect, give or take Jitter (drawn from the run's seed). Default
	// 0: a client reconnects only when its stream ends (instance gone,
	// stream closed by the server).
	Reconnect Duration `yaml:"reconnect"`
	// Jitter spreads the reconnects uniformly over Reconnect ± Jitter.
	// Default Reconnect/4; must be below Reconnect.
	Jitter Duration `yaml:"jitter"`
	// Move is the instance a client reconnects to: "same" (default),
	// "other" (the next instance, round robin) or "random".
	Move string `yaml:"move"`
	// Retry is the wait before a reconnect when the server sent no
	// "retry:" field (EventSource's reconnection time, scaled down).
	// Default 100ms. A failed connect doubles the wait, up to MaxBackoff
	// (default 2s), and moves again.
	Retry      Duration `yaml:"retry"`
	MaxBackoff Duration `yaml:"max_backoff"`
	// Attempts bounds consecutive failed connects; past it the client
	// gives up (recorded). Default 20.
	Attempts int `yaml:"attempts"`
	// Slow and Stalled add consumers that fall behind, on the first flow,
	// named slow-rate-N and slow-stall-N: the delivery check leaves them
	// out, the session_chain check judges them.
	Slow    Consumer `yaml:"slow"`
	Stalled Consumer `yaml:"stalled"`
	// Browser adds clients that are pages of a headless Chromium with
	// the native EventSource (scenarios/browser.go).
	Browser Browser `yaml:"browser"`
	Line    int     `yaml:"-"`
}

// Browser is the kind of SSE client that is a real browser: page i of one
// headless Chromium follows flow i mod flows on instance i mod instances
// with its native EventSource, which reconnects by itself (the stream's
// retry:, Last-Event-ID) to the same URL. Named browser-N; the checks
// judge them as the other clients. When Chromium is missing the scenario
// is INCONCLUSIVE with the reason.
type Browser struct {
	// Clients is how many pages (default 0: none).
	Clients int `yaml:"clients"`
	// CrossOrigin serves the pages from another origin than the service,
	// which allows it by CORS (instance processes get CORS_ORIGINS).
	// Default false: each page has its instance's origin. Needs
	// instance_mode process.
	CrossOrigin bool `yaml:"cross_origin"`
	Line        int  `yaml:"-"`
}

// Consumer is a kind of SSE client that falls behind.
type Consumer struct {
	// Clients is how many (default 0: none).
	Clients int `yaml:"clients"`
	// ReadRate bounds what the client reads, in bytes per second (slow:
	// required; stalled: how it reads when not stalled, 0 unbounded).
	ReadRate int `yaml:"read_rate"`
	// After stops reading after this many events; At stops reading this
	// long after the traffic starts (stalled: one of them is required).
	// The TCP connection stays open, unread. For is how long the client
	// stays stalled (default: to the end of the workload); then it reads
	// what is left and, when the server has closed the stream, reconnects
	// with its last cursor.
	After int      `yaml:"after"`
	At    Duration `yaml:"at"`
	For   Duration `yaml:"for"`
	// RecvBuffer is the socket's receive buffer (SO_RCVBUF) in bytes.
	// Default 4096: the kernel rounds it up, but a stalled reader then
	// backs up into the server quickly.
	RecvBuffer int `yaml:"recv_buffer"`
	Line       int `yaml:"-"`
}

// Cache drives the flow-state cache the way TASK-008 uses it: reads go to
// the cache, a miss reads the database and fills; writes update the
// database and invalidate.
type Cache struct {
	// Rate is cache operations per second (0: no cache traffic).
	Rate float64 `yaml:"rate"`
	// WriteRatio is the share of operations that are writes (default 0.1).
	WriteRatio float64 `yaml:"write_ratio"`
	// Flows is the number of cached flows (default 4); Clients the number
	// of concurrent cache clients (default 2).
	Flows   int `yaml:"flows"`
	Clients int `yaml:"clients"`
	// FillDelay widens the window between the database read and the cache
	// fill on a miss (the invalidate-vs-refill race).
	FillDelay Duration `yaml:"fill_delay"`
	Line      int      `yaml:"-"`
}

// Registry drives the SSE connection registry.
type Registry struct {
	// Connections registered at start (0: no registry traffic), spread
	// over Flows flows (default 2) and the instances.
	Connections int `yaml:"connections"`
	Flows       int `yaml:"flows"`
	// Heartbeat is the heartbeat interval (default 200ms).
	Heartbeat Duration `yaml:"heartbeat"`
	// Lookup is the lookup interval (default 100ms).
	Lookup Duration `yaml:"lookup"`
	// Stop is how many connections stop heartbeating (without
	// unregistering) at StopAt: they must disappear.
	Stop   int      `yaml:"stop"`
	StopAt Duration `yaml:"stop_at"`
	// Unregister is how many connections unregister cleanly at StopAt.
	Unregister int `yaml:"unregister"`
	Line       int `yaml:"-"`
}

// Health polls the health endpoint.
type Health struct {
	// Interval is the polling interval (0: no polling).
	Interval Duration `yaml:"interval"`
	Line     int      `yaml:"-"`
}

// FaultStep is one entry of the fault timeline: Fault with Params is
// injected At after traffic starts and undone For later (0: at the end of
// the workload). A step at 0 is injected before the layers start (start-up
// faults). Fault names a chaos fault or "flag", the engine's rollback step:
// params name REDIS_* flags set to "false" (redis_enabled, event_bus,
// cache, sse); at At every instance restarts with them off, at its end with
// the scenario's configuration again (see flagFault for what each
// guarantee means across the flips).
type FaultStep struct {
	At     Duration          `yaml:"at"`
	For    Duration          `yaml:"for"`
	Fault  string            `yaml:"fault"`
	Params map[string]string `yaml:"params"`
	// Redis overrides whether Redis counts as reachable during the fault
	// ("down" or "up") for the redis_state record; default by fault name.
	Redis string `yaml:"redis"`
	// Wipes says the fault loses Redis's data (kill of a server without
	// persistence): publishes acknowledged before it cannot be in history
	// afterwards, so the lost check does not judge them; publishes
	// acknowledged during and after it still count.
	Wipes bool `yaml:"wipes"`
	Line  int  `yaml:"-"`
}

// CheckSpec names a checker and thresholds on the metrics it reports.
type CheckSpec struct {
	Name string `yaml:"name"`
	// Thresholds bound metrics, written as a mapping of metric name to
	// "<op> <number>[unit]" with op one of < <= > >= ==, e.g. "<= 50ms",
	// "< 0.01", ">= 80". A duration bound is in milliseconds.
	Thresholds []Threshold `yaml:"thresholds"`
	// ReportOnly reports the result without letting it decide the
	// scenario's verdict: for a loss the configuration causes (eviction
	// under allkeys-lru) that must be shown, never silent, but that no
	// implementation can prevent.
	ReportOnly bool `yaml:"report_only"`
	Line       int  `yaml:"-"`
}

// Bounds are the limits the checkers judge the run against. Zero means the
// default stated on each field.
type Bounds struct {
	// BudgetSlack is added to the layer's call budgets before a call counts
	// as over budget (scheduling noise on a loaded machine). Default 150ms.
	BudgetSlack Duration `yaml:"budget_slack"`
	// BudgetKinds limits the budget check to these op kinds. Default: every
	// budgeted kind.
	BudgetKinds []string `yaml:"budget_kinds"`
	// MaxFallback bounds a fault's start to the first successful call
	// (default 1s); MaxRecover a fault's end to the first call served from
	// Redis (default 2s).
	MaxFallback Duration `yaml:"max_fallback"`
	MaxRecover  Duration `yaml:"max_recover"`
	// MaxErrorRate is the largest error rate of any phase, in percent.
	// Default 1; -1 only measures.
	MaxErrorRate float64 `yaml:"max_error_rate"`
	// DeliveryLate bounds publish to receive (default 1s); DeliveryGrace
	// exempts events published this close to a subscription's end
	// (default 500ms).
	DeliveryLate  Duration `yaml:"delivery_late"`
	DeliveryGrace Duration `yaml:"delivery_grace"`
	// SkipFaultWindows exempts events published and lookups made during a
	// fault from the delivery and registry checks.
	SkipFaultWindows bool `yaml:"skip_fault_windows"`
	// MinLoad is the share of the target publish rate the run must reach
	// before the first fault to be judged. Default 0.5; -1 disables.
	MinLoad float64 `yaml:"min_load"`
	// HealthLag is added to the layer's health interval and the polling
	// interval before a health report counts as late. Default 200ms.
	HealthLag Duration `yaml:"health_lag"`
	Line      int      `yaml:"-"`
}

// Duration is a time.Duration written as a Go duration string ("250ms").
type Duration time.Duration

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Threshold is one parsed threshold.
type Threshold struct {
	Metric string
	Op     string
	Value  float64
	// Raw is the text as written.
	Raw string
	// Line is where the threshold was written.
	Line int
}

// Holds reports whether measured satisfies the threshold.
func (t Threshold) Holds(measured float64) bool {
	switch t.Op {
	case "<":
		return measured < t.Value
	case "<=":
		return measured <= t.Value
	case ">":
		return measured > t.Value
	case ">=":
		return measured >= t.Value
	case "==":
		return measured == t.Value
	}
	return false
}

func (t Threshold) String() string { return t.Metric + " " + t.Op + " " + formatFloat(t.Value) }

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// ParseThreshold parses "<= 50ms", "< 0.01", ">=80". A duration value is
// converted to milliseconds (metrics carry times in ms).
func ParseThreshold(metric, s string) (Threshold, error) {
	t := Threshold{Metric: metric, Raw: s}
	s = strings.TrimSpace(s)
	for _, op := range []string{"<=", ">=", "==", "<", ">"} {
		if strings.HasPrefix(s, op) {
			t.Op = op
			s = strings.TrimSpace(s[len(op):])
			break
		}
	}
	if t.Op == "" {
		return t, fmt.Errorf("threshold %q: want <op> <value> with op one of < <= > >= ==", t.Raw)
	}
	if d, err := time.ParseDuration(s); err == nil && strings.IndexFunc(s, isUnit) >= 0 {
		t.Value = float64(d) / float64(time.Millisecond)
		return t, nil
	}
	if _, err := fmt.Sscanf(s, "%g", &t.Value); err != nil || strings.TrimLeft(s, "+-.0123456789eE") != "" {
		return t, fmt.Errorf("threshold %q: %q is neither a number nor a duration", t.Raw, s)
	}
	return t, nil
}

func isUnit(r rune) bool { return r >= 'a' && r <= 'z' || r == 'µ' }
