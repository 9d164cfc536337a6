// Package reports turns what a gate run measured into a verdict and the files
// a release manager reads: the gates file (criteria as data), the result model
// (Run), its evaluation (GO / NO-GO / INCONCLUSIVE / INCOMPLETE), four
// renderings (report.json, summary.md, report.html, junit.xml) and the trend
// against the previous run.
//
// Units in the model: every duration and latency is a float64 number of
// milliseconds, in a Go field named …Ms and a JSON field named …_ms; wall-clock
// times are RFC 3339 (time.Time); times inside a scenario (series points,
// fault windows) are milliseconds since the scenario's history base time.
package reports

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/inputfile"
	"github.com/gonogo/harness/internal/verdict"
)

// SchemaVersion is the version of the report.json schema this package writes.
// LoadRun refuses a report written with a newer version.
const SchemaVersion = 1

// Run is the result model: everything a gate run found, enough to re-render
// every report from report.json alone.
type Run struct {
	Schema          int             `json:"schema"`
	ID              string          `json:"id"` // NewRunID: sortable by start time
	Gate            string          `json:"gate"`
	GateDescription string          `json:"gate_description,omitempty"`
	Verdict         verdict.Verdict `json:"verdict"`
	Started         time.Time       `json:"started"`
	Finished        time.Time       `json:"finished"`
	Interrupted     bool            `json:"interrupted,omitempty"`
	Environment     Environment     `json:"environment"`
	Scenarios       []Scenario      `json:"scenarios,omitempty"`
	Benchmarks      []Bench         `json:"benchmarks,omitempty"`
	// Sweeps are the run's sweeps: an op measured at each size of one
	// parameter (bench.SweepParams).
	Sweeps []Sweep `json:"sweeps,omitempty"`
	// Cost is the cost benchmark's projection, nil when the gate did not
	// run it.
	Cost *Cost `json:"cost,omitempty"`
	// Criteria is the evaluation of the gate's criteria (Judge fills it).
	Criteria  []CriterionResult `json:"criteria"`
	Anomalies []Anomaly         `json:"anomalies,omitempty"`
	// Trend is the comparison with the previous run, when there was one.
	Trend *Trend `json:"trend,omitempty"`
}

// Environment is where and how the run happened. Write masks the password of
// TargetURL and of any redis URL in CommandLine; callers need not redact first.
type Environment struct {
	RedisVersion string   `json:"redis_version,omitempty"`
	TargetKind   string   `json:"target_kind,omitempty"` // process, container, url, remote-sim
	TargetURL    string   `json:"target_url,omitempty"`
	TLS          bool     `json:"tls"`
	RTTMs        float64  `json:"rtt_ms"`
	GoVersion    string   `json:"go_version,omitempty"`
	GitSHA       string   `json:"git_sha,omitempty"`
	Seed         int64    `json:"seed"`
	Profile      string   `json:"profile,omitempty"`
	CommandLine  []string `json:"command_line,omitempty"`
	// Implementation is External when the layer under test ran elsewhere,
	// reached over HTTP (`harness run --service`); "" for the harness's
	// own in-process profiles.
	Implementation string `json:"implementation,omitempty"`
	// Services are the base URLs of the external implementation's
	// instances (passwords masked).
	Services []string `json:"services,omitempty"`
}

// External is Environment.Implementation for services reached by URL.
const External = "external"

// Remote reports whether the target is reached over a real or simulated
// network rather than on this machine's loopback.
// TargetKind joins several kinds with "+" when scenarios ran on different
// targets: every one must be remote.
func (e Environment) Remote() bool {
	for _, k := range strings.Split(e.TargetKind, "+") {
		if k != "url" && k != "remote-sim" && k != "upstash-sim" {
			return false
		}
	}
	return true
}

// Scenario is what one scenario run produced.
type Scenario struct {
	Name       string          `json:"name"`
	Profile    string          `json:"profile,omitempty"`
	Verdict    verdict.Verdict `json:"verdict"`
	DurationMs float64         `json:"duration_ms"`
	// Inconclusive, when set, says why this scenario's evidence cannot be
	// trusted (load before the fault below target, quota exhausted, target
	// unreachable); every criterion on its metrics is then INCONCLUSIVE.
	Inconclusive string `json:"inconclusive,omitempty"`
	// Timing is how the scenario's intervals stand to production's:
	// "production", the settings scaled and "ratios kept", or the ratios
	// broken.
	Timing string `json:"timing,omitempty"`
	// Episodes states a scenario whose fault episode ran more than once:
	// how many, how many failed, and the power (the chance that a defect
	// showing in one episode of k slips through every one).
	Episodes string  `json:"episodes,omitempty"`
	Checks   []Check `json:"checks,omitempty"`
	// Metrics are the scenario's measured metrics by name (see gates.yaml for
	// the names criteria refer to), each a single value or a distribution.
	Metrics map[string]Stat `json:"metrics,omitempty"`
	Faults  []Fault         `json:"faults,omitempty"`
	Series  Series          `json:"series"`
}

// Check is the outcome of one checker (one guarantee) over a scenario's history.
type Check struct {
	Name      string          `json:"name"`
	Guarantee int             `json:"guarantee,omitempty"` // DESIGN.md guarantee number, 0 if none
	Verdict   verdict.Verdict `json:"verdict"`
	// Error is the broken guarantee (FAIL) or why the check could not
	// judge (INCONCLUSIVE); empty on PASS.
	Error string `json:"error,omitempty"`
	// Evidence is what a reader needs to believe the verdict: event ids
	// lost, the time the fault began, the slowest call.
	Evidence []string `json:"evidence,omitempty"`
	// Metrics are single values the check computed; they are also measured
	// as scenario metrics (a Scenario.Metrics entry of the same name wins).
	// They count as evidence only when the check reached a verdict (PASS or
	// FAIL).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Sensitivity states the rarest violation the check would have caught
	// with 95 % probability, given the events it judged ("" when the check
	// does not say); it is also the last line of Evidence.
	Sensitivity string `json:"sensitivity,omitempty"`
}

// Fault is a fault window, in ms since the scenario's base time.
type Fault struct {
	Name    string            `json:"name"`
	Params  map[string]string `json:"params,omitempty"`
	StartMs float64           `json:"start_ms"`
	EndMs   float64           `json:"end_ms"`
}

// FaultFrom converts a recorded fault window.
func FaultFrom(f history.Fault) Fault {
	return Fault{Name: f.Name, Params: f.Params, StartMs: Ms(f.Start), EndMs: Ms(f.End)}
}

// Bench is one benchmark result for one operation. Latency is in ms.
type Bench struct {
	Op              string  `json:"op"`
	Profile         string  `json:"profile,omitempty"`
	Target          string  `json:"target,omitempty"`
	Mode            string  `json:"mode,omitempty"` // open or closed loop
	DurationMs      float64 `json:"duration_ms"`
	OpsPerSec       float64 `json:"ops_per_sec"`
	Latency         Stat    `json:"latency_ms"` // Count = ops measured, Value = mean
	RoundTripsPerOp float64 `json:"round_trips_per_op"`
	CommandsPerOp   float64 `json:"commands_per_op"`
	// BytesOutPerOp and BytesInPerOp are the RESP bytes written and read
	// per op.
	BytesOutPerOp float64 `json:"bytes_out_per_op"`
	BytesInPerOp  float64 `json:"bytes_in_per_op"`
	Errors        int64   `json:"errors"`
	// ServerCommandsPerOp and ServerByCommand are the commands the server
	// executed per op (INFO commandstats around the measured phase):
	// commands run inside scripts included, the layer's background traffic
	// too. This is what a metered Redis bills under the conservative rule.
	// Nil when the target did not report them.
	ServerCommandsPerOp *float64           `json:"server_commands_per_op,omitempty"`
	ServerByCommand     map[string]float64 `json:"server_by_command,omitempty"`
	// Connections is the connection footprint, nil when not measured.
	Connections *Connections `json:"connections,omitempty"`
	// Inconclusive, when set, says why the result cannot be trusted
	// (command budget exhausted, achieved rate below offered).
	Inconclusive string `json:"inconclusive,omitempty"`
}

// serverSide is the server's side of b a criterion may name, nil where
// not measured.
func (b Bench) serverSide() map[string]*float64 {
	out := map[string]*float64{"server_commands_per_op": b.ServerCommandsPerOp, "connections_idle": nil, "connections_under_load": nil}
	if c := b.Connections; c != nil {
		for field, n := range map[string]*int{"connections_idle": c.Idle, "connections_under_load": c.Load} {
			if n != nil {
				v := float64(*n)
				out[field] = &v
			}
		}
	}
	return out
}

// Connections is a benchmark step's connection footprint as the server's
// CLIENT LIST shows it: the connections of the step's layer instances (or
// raw client), idle after start-up and still open at the end of the
// measured phase (a pool keeps what the load needed). A count is nil when
// it could not be read.
type Connections struct {
	Instances int  `json:"instances"`
	Idle      *int `json:"idle,omitempty"`
	Load      *int `json:"under_load,omitempty"`
}

// CriterionResult is one criterion judged against what was measured.
type CriterionResult struct {
	Criterion Criterion       `json:"criterion"`
	Verdict   verdict.Verdict `json:"verdict"` // PASS, FAIL or INCONCLUSIVE
	// Measured is the aggregated value; meaningless when Verdict is
	// INCONCLUSIVE for missing evidence (Samples is then 0).
	Measured float64 `json:"measured"`
	Samples  int64   `json:"samples"`
	// Margin is how far Measured is from the bound, in the criterion's
	// unit: positive on the passing side, negative past it, 0 on it.
	Margin float64 `json:"margin"`
	// MarginPct is Margin as a percentage of |bound|; nil when the bound is 0.
	MarginPct *float64 `json:"margin_pct,omitempty"`
	// Reason says, in one line, why the verdict is what it is.
	Reason   string   `json:"reason"`
	Evidence []string `json:"evidence,omitempty"`
}

// Anomaly lists the events a scenario got wrong, by kind (lost, undelivered,
// duplicate, late, reordered).
type Anomaly struct {
	Scenario string   `json:"scenario"`
	Kind     string   `json:"kind"`
	IDs      []string `json:"ids"`
	Detail   string   `json:"detail,omitempty"`
	// Events say, per event and operation that showed it, what was
	// expected and what was seen.
	Events []AnomalyEvent `json:"events,omitempty"`
}

// AnomalyEvent is one event found wrong by one operation.
type AnomalyEvent struct {
	ID       string  `json:"id"`
	Op       string  `json:"op"`
	AtMs     float64 `json:"at_ms"` // since the scenario's history base time
	Expected string  `json:"expected"`
	Seen     string  `json:"seen"`
}

// Ms converts a duration to float milliseconds, the model's unit.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runIDRE matches run ids made by NewRunID.
var runIDRE = regexp.MustCompile(`^\d{8}T\d{6}Z-[0-9a-f]{4}$`)

// NewRunID returns a run id for a run started at t: its UTC time to the
// second and 4 random hex digits, e.g. 20261128T201500Z-3fa9. Ids sort
// lexically in start-time order.
func NewRunID(t time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// IsRunID reports whether s has the form NewRunID makes.
func IsRunID(s string) bool { return runIDRE.MatchString(s) }

// LoadRun reads a report.json written by Write. path may be the file or the
// run directory holding it.
func LoadRun(path string) (Run, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, ReportJSON)
	}
	var r Run
	b, err := inputfile.Read(path, inputfile.MaxReport)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: not a report: %w", path, err)
	}
	if r.Schema < 1 || r.Schema > SchemaVersion {
		return r, fmt.Errorf("%s: report schema %d, this harness reads 1..%d", path, r.Schema, SchemaVersion)
	}
	return r, nil
}
