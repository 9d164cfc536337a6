package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/target"
)

// Raw is the Profile of the raw Redis baselines.
const Raw = "raw"

// Result is one row: one op kind of one profile on one target.
type Result struct {
	Op      string      `json:"op"`
	Profile string      `json:"profile"`
	Target  target.Kind `json:"target"`
	Model   string      `json:"model"`
	Workers int         `json:"workers"`

	Ops       int64         `json:"ops"`
	Errors    int64         `json:"errors"`
	FirstErr  string        `json:"first_error,omitempty"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	OpsPerSec float64       `json:"ops_per_sec"`
	Latency   Latency       `json:"latency"`
	// Open loop only.
	Offered     int64   `json:"offered,omitempty"`
	OfferedRate float64 `json:"offered_rate,omitempty"`
	Late        int64   `json:"late,omitempty"`
	Dropped     int64   `json:"dropped,omitempty"`

	// Accounting of the measured phase: every command the client(s) sent
	// except connection set-up, divided by Ops; the commands by name; the
	// connections dialled and the set-up commands they cost.
	RoundTripsPerOp float64            `json:"round_trips_per_op"`
	CommandsPerOp   float64            `json:"commands_per_op"`
	ByCommand       map[string]float64 `json:"by_command_per_op,omitempty"`
	// ServerCommandsPerOp and ServerByCommand are what the server
	// executed in the measured phase per op (INFO commandstats; see
	// server.go): script-internal commands included, the layer's
	// background traffic too. Nil when the target does not report them.
	ServerCommandsPerOp *float64           `json:"server_commands_per_op,omitempty"`
	ServerByCommand     map[string]float64 `json:"server_by_command,omitempty"`
	// Connections is the step's connection footprint (CLIENT LIST).
	Connections *reports.Connections `json:"connections,omitempty"`
	// BytesOutPerOp and BytesInPerOp are the bytes the step's connections
	// wrote and read in the measured phase (RESP, inside TLS; a layer's
	// background traffic, such as health PINGs, included) per op.
	BytesOutPerOp float64 `json:"bytes_out_per_op"`
	BytesInPerOp  float64 `json:"bytes_in_per_op"`
	Dials         int64   `json:"dials"`
	ConnInitCmds  int64   `json:"conn_init_commands"`
	RedisErrors   int64   `json:"redis_errors"`

	// Delivered and Expected count SSE receipts (sse rows only).
	Delivered int64 `json:"delivered,omitempty"`
	Expected  int64 `json:"expected,omitempty"`
	// StreamsEnded counts SSE streams the instance ended before the run
	// did (a slow consumer's, say).
	StreamsEnded int64 `json:"streams_ended,omitempty"`

	// Baseline is the raw op this row is compared with, and the ratios of
	// throughput and p50 to it (0 when it was not measured in this run).
	Baseline      string  `json:"baseline,omitempty"`
	ThroughputVsB float64 `json:"throughput_vs_baseline,omitempty"`
	P50VsB        float64 `json:"p50_vs_baseline,omitempty"`
	// Storage is the raw op that stores what this op must store (publish:
	// xadd_event), and ThroughputVsStorage this row's throughput against
	// it: what the layer adds over the bare write of the same bytes.
	Storage             string  `json:"storage_baseline,omitempty"`
	ThroughputVsStorage float64 `json:"throughput_vs_storage,omitempty"`

	Timeline []Window `json:"timeline,omitempty"`
	// Point is the sweep value the row was measured at (nil outside a
	// sweep); Process the process's footprint at the end of the measured
	// phase (sweep points); Outage what an outage point saw.
	Point   *int64       `json:"point,omitempty"`
	Process *ProcStats   `json:"process,omitempty"`
	Outage  *OutageStats `json:"outage,omitempty"`
	// Hist is the row's latency histogram (HdrHistogram, compressed V2,
	// base64, microseconds) in a share's report (Config.Shard).
	Hist string `json:"hdr_histogram,omitempty"`
	// RoundsOpsPerSec is the throughput of every round (Config.Rounds > 1)
	// in run order; the row is the round with the median one.
	RoundsOpsPerSec []float64 `json:"rounds_ops_per_sec,omitempty"`
	// Inconclusive says why the numbers cannot be trusted (budget
	// reached, missed rate, layer in memory mode, run interrupted).
	Inconclusive string `json:"inconclusive,omitempty"`
	// TimingOnly says Inconclusive concerns latency and throughput only
	// (the open loop missed its rate); the row's counts stand.
	TimingOnly bool `json:"inconclusive_timing_only,omitempty"`
}

// resultOf turns a run's stats for kind into a row.
func resultOf(st *Stats, kind, profile string, tk target.Kind) Result {
	r := Result{Op: kind, Profile: profile, Target: tk, Model: st.Model, Workers: st.Workers,
		Elapsed: st.Elapsed, Latency: st.Latency[kind], Timeline: st.Timeline, Dials: st.Dials}
	if kind != st.Op { // a side kind (sse): its count is its samples
		r.Ops = r.Latency.Count
		r.Timeline = nil
	} else {
		r.Ops, r.Errors, r.FirstErr = st.Ops, st.Errors, st.FirstErr
		r.Offered, r.OfferedRate, r.Late, r.Dropped = st.Offered, st.OfferedRate, st.Late, st.Dropped
	}
	if s := st.Elapsed.Seconds(); s > 0 {
		r.OpsPerSec = float64(r.Ops) / s
	}
	if kind == st.Op {
		r.account(st.Counts)
		if r.Ops > 0 {
			r.BytesOutPerOp, r.BytesInPerOp = float64(st.BytesOut)/float64(r.Ops), float64(st.BytesIn)/float64(r.Ops)
		}
	}
	return r
}

// account fills the per-op accounting from the measured phase's counts.
func (r *Result) account(counts map[string]counter.Counts) {
	var rt, cmds int64
	by := map[string]int64{}
	for op, c := range counts {
		r.RedisErrors += c.Errors
		if op == counter.ConnInit {
			r.ConnInitCmds += c.Commands
			continue
		}
		rt += c.RoundTrips
		cmds += c.Commands
		for name, n := range c.ByCommand {
			by[name] += n
		}
	}
	if r.Ops == 0 {
		return
	}
	n := float64(r.Ops)
	r.RoundTripsPerOp, r.CommandsPerOp = float64(rt)/n, float64(cmds)/n
	r.ByCommand = map[string]float64{}
	for name, c := range by {
		r.ByCommand[name] = float64(c) / n
	}
}

// Bench converts the row to the report model (latency in ms).
func (r Result) Bench() reports.Bench {
	ms := reports.Ms
	return reports.Bench{
		Op: r.Op, Profile: r.Profile, Target: string(r.Target), Mode: r.Model,
		DurationMs: ms(r.Elapsed), OpsPerSec: r.OpsPerSec,
		Latency: reports.Stat{Count: r.Latency.Count, Value: ms(r.Latency.Mean), P50: ms(r.Latency.P50),
			P90: ms(r.Latency.P90), P99: ms(r.Latency.P99), P999: ms(r.Latency.P999), Max: ms(r.Latency.Max)},
		RoundTripsPerOp: r.RoundTripsPerOp, CommandsPerOp: r.CommandsPerOp,
		BytesOutPerOp: r.BytesOutPerOp, BytesInPerOp: r.BytesInPerOp,
		ServerCommandsPerOp: r.ServerCommandsPerOp, ServerByCommand: r.ServerByCommand,
		Connections: r.Connections,
		Errors:      r.Errors, Inconclusive: r.Inconclusive,
	}
}

// Comparison puts two profiles' rows for one op side by side (B over A).
type Comparison struct {
	Op         string  `json:"op"`
	Point      *int64  `json:"point,omitempty"`
	A          string  `json:"a"`
	B          string  `json:"b"`
	Throughput float64 `json:"throughput_ratio"`
	P50        float64 `json:"p50_ratio"`
	P99        float64 `json:"p99_ratio"`
	CommandsA  float64 `json:"commands_per_op_a"`
	CommandsB  float64 `json:"commands_per_op_b"`
}

// Budget is the command budget of a run on a metered target.
type Budget struct {
	Max       int64 `json:"max"`
	Estimated int64 `json:"estimated"`
	Used      int64 `json:"used"`
	Exhausted bool  `json:"exhausted"`
}

// Report is everything one bench invocation measured.
type Report struct {
	Target   string        `json:"target"` // redacted URL
	Kind     target.Kind   `json:"target_kind"`
	TLS      bool          `json:"tls"`
	RTT      time.Duration `json:"rtt_ns,omitempty"`
	Started  time.Time     `json:"started"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	Results  []Result      `json:"results"`
	Compare  []Comparison  `json:"comparisons,omitempty"`
	Plan     Plan          `json:"plan"`
	Project  []Projection  `json:"projections,omitempty"`
	Budget   *Budget       `json:"budget,omitempty"`
	External *External     `json:"redis_benchmark,omitempty"`
	// CPUs is the machine's; ClientProcs the GOMAXPROCS the steps ran
	// with (see Config.ClientProcs).
	CPUs        int `json:"cpus"`
	ClientProcs int `json:"client_procs"`
	// Sweep is the run's sweep (nil: none); NoFile the file descriptor
	// limit the run raised to (0: it needed no more than the default).
	Sweep *Sweep `json:"sweep,omitempty"`
	// Shard is the share this report is (Count 0: the whole load).
	Shard Shard `json:"shard"`
	// EventRate is the rate the projections assume.
	EventRate float64  `json:"event_rate"`
	NoFile    uint64   `json:"nofile_limit,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
}

// Inconclusive reports whether any row could not be trusted.
func (r *Report) Inconclusive() bool {
	for _, x := range r.Results {
		if x.Inconclusive != "" {
			return true
		}
	}
	return r.Budget != nil && r.Budget.Exhausted
}

// finish fills the baseline ratios, the profile comparisons (every later
// profile against the first) and the projections at eventRate, from the
// rows that are not inconclusive.
func (r *Report) finish(profiles []string, eventRate float64) {
	// find is the row of op and profile at point (a sweep value; nil
	// outside a sweep); a raw baseline has no point.
	find := func(op, profile string, point *int64) *Result {
		for i := range r.Results {
			if x := &r.Results[i]; x.Op == op && x.Profile == profile && x.Ops > 0 && x.Inconclusive == "" && samePoint(x.Point, point) {
				return x
			}
		}
		return nil
	}
	for i := range r.Results {
		x := &r.Results[i]
		if x.Profile == Raw || x.Inconclusive != "" {
			continue
		}
		b := find(baselineOf[x.Op], Raw, nil)
		if b == nil {
			continue
		}
		x.Baseline = b.Op
		x.ThroughputVsB = ratio(x.OpsPerSec, b.OpsPerSec)
		x.P50VsB = ratio(float64(x.Latency.P50), float64(b.Latency.P50))
		if st := find(storageOf[x.Op], Raw, nil); st != nil {
			x.Storage, x.ThroughputVsStorage = st.Op, ratio(x.OpsPerSec, st.OpsPerSec)
		}
	}
	r.Compare = nil
	for i, x := range r.Results {
		if len(profiles) < 2 || x.Profile != profiles[0] || x.Inconclusive != "" {
			continue
		}
		for _, p := range profiles[1:] {
			if y := find(x.Op, p, x.Point); y != nil {
				a := &r.Results[i]
				r.Compare = append(r.Compare, Comparison{Op: x.Op, Point: x.Point, A: a.Profile, B: y.Profile,
					Throughput: ratio(y.OpsPerSec, a.OpsPerSec), P50: ratio(float64(y.Latency.P50), float64(a.Latency.P50)),
					P99: ratio(float64(y.Latency.P99), float64(a.Latency.P99)), CommandsA: a.CommandsPerOp, CommandsB: y.CommandsPerOp})
			}
		}
	}
	r.Project = nil
	for _, x := range r.Results {
		if x.CommandsPerOp > 0 && x.Inconclusive == "" && x.Point == nil && (x.Op == OpPublish || x.Profile == Raw && x.Op == OpXAdd) {
			cmds, basis := x.CommandsPerOp, "client"
			if x.ServerCommandsPerOp != nil && r.Plan.billsServer() {
				cmds, basis = *x.ServerCommandsPerOp, "server"
			}
			p := Project(x.Op, x.Profile, eventRate, cmds, r.Plan)
			p.Basis = basis
			r.Project = append(r.Project, p)
			if p.Warning != "" {
				r.Warnings = append(r.Warnings, fmt.Sprintf("%s %s: %s", x.Profile, x.Op, p.Warning))
			}
		}
	}
}

// inconclusiveFrom makes r inconclusive when x, one of the rows it stands
// for, is: the first reason (prefixed) is kept, and the doubt covers
// timing only while every such row's does.
func (r *Result) inconclusiveFrom(x Result, prefix string) {
	switch {
	case x.Inconclusive == "":
	case r.Inconclusive == "":
		r.Inconclusive, r.TimingOnly = prefix+x.Inconclusive, x.TimingOnly
	case !x.TimingOnly:
		r.TimingOnly = false
	}
}

// label is the row's op, with its sweep value ("reg_lookup @1000").
func (r Result) label() string {
	if r.Point == nil {
		return r.Op
	}
	return fmt.Sprintf("%s @%d", r.Op, *r.Point)
}

func samePoint(a, b *int64) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the result table, the comparisons, the projections
// and the warnings for a terminal.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "target %s (%s", r.Target, r.Kind)
	if r.TLS {
		fmt.Fprint(w, ", TLS")
	}
	if r.RTT > 0 {
		fmt.Fprintf(w, ", RTT %s", r.RTT)
	}
	fmt.Fprintf(w, "); client GOMAXPROCS %d of %d CPUs\n\n", r.ClientProcs, r.CPUs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tprofile\tmodel\tworkers\tops\tops/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\tRTT/op\tcmds/op\tB/op out/in\terrors\tvs raw\t")
	for _, x := range r.Results {
		vs := "-"
		if x.Baseline != "" {
			vs = fmt.Sprintf("%.2f× %s", x.ThroughputVsB, x.Baseline)
		}
		if x.Storage != "" {
			vs += fmt.Sprintf(", %.2f× %s", x.ThroughputVsStorage, x.Storage)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.0f/%.0f\t%d\t%s\t\n",
			x.label(), x.Profile, x.Model, x.Workers, x.Ops, x.OpsPerSec, msf(x.Latency.P50), msf(x.Latency.P90),
			msf(x.Latency.P99), msf(x.Latency.P999), msf(x.Latency.Max), x.RoundTripsPerOp, x.CommandsPerOp,
			x.BytesOutPerOp, x.BytesInPerOp, x.Errors, vs)
	}
	tw.Flush()
	r.writeServerTable(w)
	notes := []string{}
	for _, x := range r.Results {
		if x.Offered > 0 {
			notes = append(notes, fmt.Sprintf("%s/%s open loop: offered %.0f/s, achieved %.0f/s; %d late, %d dropped of %d",
				x.label(), x.Profile, x.OfferedRate, x.OpsPerSec, x.Late, x.Dropped, x.Offered))
		}
		if x.Expected > 0 {
			notes = append(notes, fmt.Sprintf("%s/%s: %d of %d deliveries received", x.label(), x.Profile, x.Delivered, x.Expected))
		}
		if x.RoundTripsPerOp > 0 && x.RoundTripsPerOp < 0.995 {
			notes = append(notes, fmt.Sprintf("%s/%s: %.2f round trips per op: ops in flight together shared pipelines, and a shared round trip counts once",
				x.label(), x.Profile, x.RoundTripsPerOp))
		}
		if x.FirstErr != "" {
			notes = append(notes, fmt.Sprintf("%s/%s first error: %s", x.label(), x.Profile, x.FirstErr))
		}
		if len(x.RoundsOpsPerSec) > 1 {
			rs := make([]string, len(x.RoundsOpsPerSec))
			for i, v := range x.RoundsOpsPerSec {
				rs[i] = fmt.Sprintf("%.0f", v)
			}
			notes = append(notes, fmt.Sprintf("%s/%s ops/s per round: %s (the row is the median round)", x.label(), x.Profile, strings.Join(rs, ", ")))
		}
		if x.Inconclusive != "" {
			notes = append(notes, fmt.Sprintf("%s/%s INCONCLUSIVE: %s", x.label(), x.Profile, x.Inconclusive))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	if len(r.Compare) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "op\tB vs A\tthroughput\tp50\tp99\tcmds/op A→B\t")
		for _, c := range r.Compare {
			if c.Point != nil {
				c.Op += fmt.Sprintf(" @%d", *c.Point)
			}
			fmt.Fprintf(tw, "%s\t%s vs %s\t%.2f×\t%.2f×\t%.2f×\t%.2f→%.2f\t\n", c.Op, c.B, c.A, c.Throughput, c.P50, c.P99, c.CommandsA, c.CommandsB)
		}
		tw.Flush()
	}
	if len(r.Project) > 0 {
		fmt.Fprintf(w, "\nprojection against %s (%s; script-internal commands billed: %s):\n", r.Plan.Name,
			r.Plan.limits(), orUnknown(r.Plan.ScriptCommands))
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "op\tprofile\trate/s\tcmds/op\tcounted\tcmds/day\tcmds/month\tof plan\tcost/month\t")
		for _, p := range r.Project {
			cost := "-"
			if p.CostPerMonth != nil {
				cost = fmt.Sprintf("$%.2f", *p.CostPerMonth)
			}
			fmt.Fprintf(tw, "%s\t%s\t%g\t%.2f\t%s\t%s\t%s\t%s\t%s\t\n", p.Op, p.Profile, p.Rate, p.CommandsPerOp, p.Basis,
				human(p.PerDay), human(p.PerMonth), r.Plan.share(p), cost)
		}
		tw.Flush()
	}
	if r.Budget != nil {
		fmt.Fprintf(w, "\ncommand budget: %d used of %d (estimated need %d)", r.Budget.Used, r.Budget.Max, r.Budget.Estimated)
		if r.Budget.Exhausted {
			fmt.Fprint(w, " — REACHED: the run was stopped")
		}
		fmt.Fprintln(w)
	}
	if e := r.External; e != nil {
		fmt.Fprintf(w, "\nredis-benchmark -c %d -n %d XADD: %.0f ops/s (median of runs %v)\nharness raw xadd, %d workers: %.0f ops/s (median of rounds %v)\nratio harness/redis-benchmark: %.2f (goal ≥ 0.90)\n",
			e.Clients, e.Requests, e.Median, roundAll(e.OpsPerSec), e.Clients, e.Harness, roundAll(e.HarnessRuns), e.Ratio)
	}
	if r.Sweep != nil {
		fmt.Fprintf(w, "\nsweep %s:\n\n", r.Sweep)
		w.Write(reports.SweepsMarkdown(r.Sweeps()))
	}
	if r.NoFile > 0 {
		fmt.Fprintf(w, "file descriptor limit raised to %d for this run\n", r.NoFile)
	}
	for _, s := range r.Warnings {
		fmt.Fprintln(w, "WARNING:", s)
	}
}

func roundAll(xs []float64) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = int64(x + 0.5)
	}
	return out
}

func msf(d time.Duration) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)), "0"), ".")
}

// rowOrder is the order of op rows in the table.
var rowOrder = append(append(append([]string(nil), RawOps...), LayerOps...), OpSSEPublish)

// sortResults orders rows by op (raw first, then the layer's order), then
// profile as given.
func sortResults(rs []Result, profiles []string) {
	pi := func(p string) int {
		for i, x := range profiles {
			if x == p {
				return i
			}
		}
		return -1
	}
	oi := func(op string) int {
		for i, x := range rowOrder {
			if x == op {
				return i
			}
		}
		return 1 << 20
	}
	sort.SliceStable(rs, func(i, j int) bool {
		if a, b := oi(rs[i].Op), oi(rs[j].Op); a != b {
			return a < b
		}
		return pi(rs[i].Profile) < pi(rs[j].Profile)
	})
}

// writeServerTable writes the server's side of each row that has one:
// commands per op as the client sent them and as the server executed them
// (and which), and the connections.
func (r *Report) writeServerTable(w io.Writer) {
	var rows []Result
	for _, x := range r.Results {
		if x.ServerCommandsPerOp != nil || x.Connections != nil {
			rows = append(rows, x)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nserver side (INFO commandstats around the measured phase, script-internal commands included; CLIENT LIST):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "op\tprofile\tcmds/op client\tcmds/op server\tserver commands per op\tinstances\tconns idle\tconns under load\t")
	for _, x := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t\n", x.label(), x.Profile, x.CommandsPerOp, strings.Join(x.Bench().ServerCells(), "\t"))
	}
	tw.Flush()
}
