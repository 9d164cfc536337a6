package reports

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"gopkg.in/yaml.v3"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/inputfile"
)

//go:embed gates.yaml
var defaultGates []byte

// Gates is a parsed gates file: the gates in file order, and the load their
// benchmarks are driven with.
type Gates struct {
	File  string `json:"file"`
	Gates []Gate `json:"gates"`
	// BenchLoad is the file's bench_load; nil when it has none (the
	// shipped file's then applies).
	BenchLoad *BenchLoad `json:"bench_load,omitempty"`
}

// BenchLoad is the load each benchmark of a gate run is driven with: open
// loop, Rate calls per second for DurationS seconds after WarmupS seconds of
// warm-up, at most Workers calls in flight. Latency runs from each call's
// intended start; a step is inconclusive when more than MaxMissed (a
// fraction) of its calls start over LateAfterMs late (the load generator,
// not the layer, fell behind).
type BenchLoad struct {
	Workers     int     `json:"workers"`
	Rate        float64 `json:"rate"`
	DurationS   float64 `json:"duration_s"`
	WarmupS     float64 `json:"warmup_s"`
	LateAfterMs float64 `json:"late_after_ms"`
	MaxMissed   float64 `json:"max_missed"`
}

// Gate is one go/no-go decision point: what it runs and what must hold.
// Included gates are already merged in: Scenarios, Benchmarks and Criteria
// are complete.
type Gate struct {
	Name        string   `json:"name"`
	Day         int      `json:"day,omitempty"`
	Description string   `json:"description"`
	Include     []string `json:"include,omitempty"`
	Scenarios   []string `json:"scenarios,omitempty"`  // scenario names it runs
	Benchmarks  []string `json:"benchmarks,omitempty"` // benchmark ops it runs
	// Sweeps are the sweeps it runs, as `harness bench --sweep` takes
	// them (NAME=v1,v2,…); its own only, not its includes' (a sweep is long).
	Sweeps   []string    `json:"sweeps,omitempty"`
	Criteria []Criterion `json:"criteria"`
	pos      string
}

// Criterion is one thing that must hold for a gate to say GO:
// Aggregation(Metric) Comparator Bound, e.g. p99(bench:publish:latency_ms) < 10.
//
// Metric names one measured series:
//
//	scenario:<scenario>:<metric>  a metric a scenario produced (any aggregation)
//	check:<scenario>:<check>      a check's verdict: 1 PASS, 0 FAIL (value)
//	bench:<op>:<field>            latency_ms (count, value = mean, p50…max), or
//	                              ops_per_sec, round_trips_per_op, commands_per_op, errors (value)
//	                              server_commands_per_op, connections_idle,
//	                              connections_under_load (value; INCONCLUSIVE when
//	                              the target did not report them)
//	sweep:<param>:<op>:<field>    a sweep point field (reports.SweepFields) over the
//	                              gate's sweep of param: growth (0 flat, 1 linear,
//	                              2 worse), max, or value (at the largest size)
//	cost:<field>                  the cost benchmark's (CostBench): idle_commands_per_sec,
//	                              connections_idle, connections_under_load,
//	                              publish_server_commands, and under the run's plan
//	                              commands_per_month, days_to_quota, connections_share
//	                              (connections / the plan's cap) (value)
//	env:<field>                   tls (1/0), remote (1/0), rtt_ms (value)
type Criterion struct {
	ID          string  `json:"id"`
	Metric      string  `json:"metric"`
	Aggregation string  `json:"aggregation"`
	Comparator  string  `json:"comparator"`
	Bound       float64 `json:"bound"`
	Unit        string  `json:"unit,omitempty"`
	Why         string  `json:"why"`
	// MinSamples is the fewest samples the aggregation needs; 0 means the
	// default: 1000 for p99.9, 100 for p99, 10 for p90, 1 otherwise (0 for count).
	MinSamples int64 `json:"min_samples,omitempty"`
	// Precondition marks a condition on how the evidence was gathered (the
	// target is remote, the load was high enough): when it does not hold the
	// criterion is INCONCLUSIVE, not FAIL.
	Precondition bool `json:"precondition,omitempty"`
	pos          string
}

// Comparators a criterion may use.
var comparators = []string{"<", "<=", ">", ">=", "=="}

// benchFields are the fields of a Bench a criterion may name.
var benchFields = []string{"latency_ms", "ops_per_sec", "round_trips_per_op", "commands_per_op", "errors",
	"server_commands_per_op", "connections_idle", "connections_under_load"}

// envFields are the environment facts a criterion may name.
var envFields = []string{"tls", "remote", "rtt_ms"}

// GateLimits are the ranges of the numbers of a gates file, by key, and
// of the number of entries of its lists (a gate's after its includes are
// merged), which keep parsing time and memory bounded. docs/limits.md
// lists them; a test keeps it in step.
var GateLimits = []struct {
	Key      string
	Min, Max float64
	// Count says the limit is on the number of entries.
	Count bool
}{
	{Key: "version", Min: 1, Max: 1},
	{Key: "day", Min: 0, Max: 366},
	{Key: "bound", Min: -1e12, Max: 1e12},
	{Key: "min_samples", Min: 1, Max: 1e9},
	{Key: "gates", Min: 1, Max: 100, Count: true},
	{Key: "include", Min: 0, Max: 10, Count: true},
	{Key: "scenarios", Min: 0, Max: 200, Count: true},
	{Key: "benchmarks", Min: 0, Max: 200, Count: true},
	{Key: "sweeps", Min: 0, Max: 10, Count: true},
	{Key: "criteria", Min: 1, Max: 1000, Count: true},
	{Key: "workers", Min: 1, Max: 10000},
	{Key: "rate", Min: 1, Max: 1e6},
	{Key: "duration_s", Min: 0.1, Max: 3600},
	{Key: "warmup_s", Min: 0, Max: 600},
	{Key: "late_after_ms", Min: 0.1, Max: 60000},
	{Key: "max_missed", Min: 0.001, Max: 1},
}

// checkRange reports a number of key outside its GateLimits range.
func (p *gateParser) checkRange(n *yaml.Node, key string, v float64) bool {
	for _, l := range GateLimits {
		if l.Key == key && !l.Count && (v < l.Min || v > l.Max) {
			p.errorf(n, "%s %s: want %g to %g", key, deref(n).Value, l.Min, l.Max)
			return false
		}
	}
	return true
}

// tooMany reports a list of key with more than its GateLimits entries.
func (p *gateParser) tooMany(n *yaml.Node, what, key string, count int) bool {
	for _, l := range GateLimits {
		if l.Key == key && l.Count && float64(count) > l.Max {
			p.errorf(deref(n), "%s: %d %s; at most %g", what, count, key, l.Max)
			return true
		}
	}
	return false
}

// DefaultGates returns the gates file shipped with the harness (gates.yaml).
func DefaultGates() Gates {
	g, err := ParseGates("gates.yaml", defaultGates)
	if err != nil {
		panic("reports: embedded gates.yaml: " + err.Error())
	}
	return g
}

// DefaultGatesYAML returns the text of the shipped gates file, for users to
// copy and edit.
func DefaultGatesYAML() []byte { return slices.Clone(defaultGates) }

// LoadGates reads and parses a gates file. Every error is bad input (exit 3)
// and names file:line.
func LoadGates(path string) (Gates, error) {
	b, err := inputfile.Read(path, inputfile.MaxYAML)
	if err != nil {
		return Gates{}, exitcode.Config(fmt.Errorf("read gates file: %w", err))
	}
	return ParseGates(path, b)
}

// Gate returns the gate called name, or a bad-input error naming the gates
// there are.
func (g Gates) Gate(name string) (Gate, error) {
	for _, x := range g.Gates {
		if x.Name == name {
			return x, nil
		}
	}
	return Gate{}, exitcode.Configf("unknown gate %q (have %s)", name, strings.Join(g.Names(), ", "))
}

// Names lists the gates in file order.
func (g Gates) Names() []string {
	var ns []string
	for _, x := range g.Gates {
		ns = append(ns, x.Name)
	}
	return ns
}

// Validate checks every gate against what the harness can measure: known is
// asked about each criterion's metric, and about "scenario:<name>" and
// "bench:<op>" for each scenario and benchmark a gate runs. Anything unknown
// is a bad-input error naming file:line: a criterion on a metric nothing
// produces must never pass silently.
func (g Gates) Validate(known func(metric string) bool) error {
	var errs []error
	seen := map[string]bool{}
	add := func(pos, format string, args ...any) {
		msg := pos + ": " + fmt.Sprintf(format, args...)
		if !seen[msg] {
			seen[msg] = true
			errs = append(errs, errors.New(msg))
		}
	}
	for _, x := range g.Gates {
		for _, s := range x.Scenarios {
			if !known("scenario:" + s) {
				add(x.pos, "gate %s: unknown scenario %q", x.Name, s)
			}
		}
		for _, b := range x.Benchmarks {
			if !known("bench:" + b) {
				add(x.pos, "gate %s: unknown benchmark %q", x.Name, b)
			}
		}
		for _, sw := range x.Sweeps {
			if name, _, _ := strings.Cut(sw, "="); !known("sweep:" + name) {
				add(x.pos, "gate %s: unknown sweep %q", x.Name, sw)
			}
		}
		for _, c := range x.Criteria {
			if !known(c.Metric) {
				add(c.pos, "criterion %s: no scenario or benchmark produces metric %q", c.ID, c.Metric)
			}
		}
	}
	return exitcode.Config(errors.Join(errs...))
}

// Catalogue is what the scenario engine and benchmarks can produce; its Has
// method is a Validate known func.
type Catalogue struct {
	Scenarios  map[string][]string // scenario name → metric names it produces
	Checks     map[string][]string // scenario name → check names it runs
	Benchmarks []string            // benchmark ops
	Sweeps     []string            // sweep parameters
}

// Has reports whether metric (a criterion metric, "scenario:<name>",
// "bench:<op>" or "sweep:<param>") is produced.
func (c Catalogue) Has(metric string) bool {
	parts := strings.Split(metric, ":")
	switch {
	case len(parts) == 2 && parts[0] == "scenario":
		_, ok := c.Scenarios[parts[1]]
		return ok
	case len(parts) == 2 && parts[0] == "bench":
		return slices.Contains(c.Benchmarks, parts[1])
	case len(parts) == 2 && parts[0] == "sweep":
		return slices.Contains(c.Sweeps, parts[1])
	case len(parts) == 4 && parts[0] == "sweep":
		return slices.Contains(c.Sweeps, parts[1]) && isSweepField(parts[3])
	case len(parts) == 2 && parts[0] == "env":
		return slices.Contains(envFields, parts[1])
	case len(parts) == 2 && parts[0] == "cost":
		return slices.Contains(c.Benchmarks, CostBench) && slices.Contains(costFields, parts[1])
	case len(parts) == 3 && parts[0] == "scenario":
		return slices.Contains(c.Scenarios[parts[1]], parts[2])
	case len(parts) == 3 && parts[0] == "check":
		return slices.Contains(c.Checks[parts[1]], parts[2])
	case len(parts) == 3 && parts[0] == "bench":
		return slices.Contains(c.Benchmarks, parts[1]) && slices.Contains(benchFields, parts[2])
	}
	return false
}

// Describe prints the gates and their criteria, for `harness gates list`.
func (g Gates) Describe(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, x := range g.Gates {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		day := ""
		if x.Day > 0 {
			day = fmt.Sprintf(" (Day %d)", x.Day)
		}
		fmt.Fprintf(tw, "%s%s: %s\n", x.Name, day, x.Description)
		fmt.Fprintf(tw, "  scenarios: %s\n", listOrNone(x.Scenarios))
		fmt.Fprintf(tw, "  benchmarks: %s\n", listOrNone(x.Benchmarks))
		for _, c := range x.Criteria {
			fmt.Fprintf(tw, "  %s\t%s %s\t%s\n", c.ID, c.Expr(), c.Threshold(), c.Why)
		}
	}
	return tw.Flush()
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// Expr is the measured side of the criterion: "p99(bench:publish:latency_ms)",
// or the metric alone for the value aggregation.
func (c Criterion) Expr() string {
	if c.Aggregation == AggValue {
		return c.Metric
	}
	return c.Aggregation + "(" + c.Metric + ")"
}

// Threshold is the comparator and bound with its unit: "< 10 ms".
func (c Criterion) Threshold() string {
	return c.Comparator + " " + withUnit(c.Bound, c.Unit)
}

// minSamples is the number of samples the criterion needs.
func (c Criterion) minSamples() int64 {
	if c.MinSamples > 0 {
		return c.MinSamples
	}
	switch c.Aggregation {
	case AggCount:
		return 0
	case AggP999:
		return 1000
	case AggP99:
		return 100
	case AggP90:
		return 10
	case AggGrowth:
		return 2
	}
	return 1
}

// ParseGates parses a gates file's text; name is used in error positions.
// Parsing is strict: an unknown key, comparator, aggregation or metric form,
// a missing required field or a bad include is a bad-input error (exit 3)
// naming name:line.
func ParseGates(name string, data []byte) (Gates, error) {
	p := &gateParser{file: name}
	g := p.parse(data)
	if len(p.errs) > 0 {
		return Gates{}, exitcode.Config(errors.Join(p.errs...))
	}
	return g, nil
}

type gateParser struct {
	file string
	errs []error
}

func (p *gateParser) pos(n *yaml.Node) string { return p.file + ":" + strconv.Itoa(n.Line) }

func (p *gateParser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", p.pos(n), fmt.Sprintf(format, args...)))
}

func (p *gateParser) parse(data []byte) Gates {
	g := Gates{File: p.file}
	doc, err := inputfile.YAML(p.file, data)
	if err != nil {
		p.errs = append(p.errs, err)
		return g
	}
	if len(doc.Content) == 0 {
		p.errs = append(p.errs, fmt.Errorf("%s: empty gates file", p.file))
		return g
	}
	top := p.mapping(doc.Content[0], "gates file", []string{"version", "bench_load", "gates"}, []string{"version", "gates"})
	if top == nil {
		return g
	}
	if n := top["bench_load"]; n != nil {
		g.BenchLoad = p.benchLoad(n)
	}
	if v, ok := p.integer(top["version"], ""); ok && v != 1 {
		p.errorf(top["version"], "gates file version %d, this harness reads version 1", v)
	}
	gates := deref(top["gates"])
	if gates.Kind != yaml.MappingNode {
		p.errorf(gates, "gates: want a mapping of gate name to gate")
		return g
	}
	if p.tooMany(gates, "gates file", "gates", len(gates.Content)/2) {
		return g
	}
	byName := map[string]Gate{}
	for i := 0; i+1 < len(gates.Content); i += 2 {
		k, v := gates.Content[i], gates.Content[i+1]
		if _, dup := byName[k.Value]; dup {
			p.errorf(k, "gate %q defined twice", k.Value)
			continue
		}
		x := p.gate(k, v, byName)
		byName[x.Name] = x
		g.Gates = append(g.Gates, x)
	}
	if len(g.Gates) == 0 {
		p.errorf(gates, "no gates defined")
	}
	return g
}

// benchLoad reads a bench_load mapping; every key is required.
func (p *gateParser) benchLoad(n *yaml.Node) *BenchLoad {
	keys := []string{"workers", "rate", "duration_s", "warmup_s", "late_after_ms", "max_missed"}
	f := p.mapping(n, "bench_load", keys, keys)
	if f == nil {
		return nil
	}
	var l BenchLoad
	if w, ok := p.integer(f["workers"], "workers"); ok {
		l.Workers = int(w)
	}
	for key, dst := range map[string]*float64{"rate": &l.Rate, "duration_s": &l.DurationS, "warmup_s": &l.WarmupS,
		"late_after_ms": &l.LateAfterMs, "max_missed": &l.MaxMissed} {
		*dst, _ = p.number(f[key], key)
	}
	return &l
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

func (p *gateParser) gate(k, v *yaml.Node, earlier map[string]Gate) Gate {
	x := Gate{Name: k.Value, pos: p.pos(k)}
	if !nameRE.MatchString(x.Name) {
		p.errorf(k, "gate name %q: want lowercase letters, digits, _ . -, at most 64", x.Name)
	}
	f := p.mapping(v, "gate "+x.Name,
		[]string{"day", "description", "include", "scenarios", "benchmarks", "sweeps", "criteria"},
		[]string{"description"})
	if f == nil {
		return x
	}
	if d, ok := p.integer(f["day"], "day"); ok {
		x.Day = int(d)
	}
	x.Description = p.str(f["description"], "description")
	x.Include = p.strs(f["include"], "include")
	own := p.strs(f["scenarios"], "scenarios")
	bench := p.strs(f["benchmarks"], "benchmarks")
	x.Sweeps = p.sweeps(f["sweeps"])
	what := "gate " + x.Name
	if p.tooMany(f["sweeps"], what, "sweeps", len(x.Sweeps)) {
		return x
	}
	if p.tooMany(f["include"], what, "include", len(x.Include)) {
		return x
	}
	cs := criteriaSet{p: p, pos: map[string]bool{}, ids: map[string]string{}}
	for _, inc := range x.Include {
		in, ok := earlier[inc]
		if !ok {
			p.errorf(f["include"], "gate %s includes %q, which is not a gate defined above it", x.Name, inc)
			continue
		}
		x.Scenarios = appendNew(x.Scenarios, in.Scenarios...)
		x.Benchmarks = appendNew(x.Benchmarks, in.Benchmarks...)
		for _, c := range in.Criteria {
			cs.add(c, f["include"])
		}
	}
	x.Scenarios = p.appendUnique(x.Scenarios, own, f["scenarios"], "scenario")
	x.Benchmarks = p.appendUnique(x.Benchmarks, bench, f["benchmarks"], "benchmark")
	if p.tooMany(f["scenarios"], what+" (with its includes)", "scenarios", len(x.Scenarios)) ||
		p.tooMany(f["benchmarks"], what+" (with its includes)", "benchmarks", len(x.Benchmarks)) ||
		p.tooMany(k, what+" (with its includes)", "criteria", len(cs.list)) {
		return x
	}
	if n := f["criteria"]; n != nil {
		n = deref(n)
		switch {
		case n.Kind != yaml.SequenceNode:
			p.errorf(n, "criteria: want a list")
		case p.tooMany(n, what+" (with its includes)", "criteria", len(cs.list)+len(n.Content)):
			return x
		default:
			for _, cn := range n.Content {
				c, ok := p.criterion(cn, x)
				if ok {
					cs.add(c, cn)
				}
			}
		}
	}
	x.Criteria = cs.list
	if len(x.Criteria) == 0 {
		p.errorf(k, "gate %s has no criteria", x.Name)
	}
	return x
}

// criteriaSet is a gate's criteria as they are merged, indexed so that a
// merge takes time in proportion to the criteria merged.
type criteriaSet struct {
	p    *gateParser
	list []Criterion
	pos  map[string]bool   // source positions in list
	ids  map[string]string // id → source position
}

// add appends c unless the same criterion (same source position, reached
// through two includes or an alias) is already there; another criterion
// with the same id is an error.
func (s *criteriaSet) add(c Criterion, at *yaml.Node) {
	if s.pos[c.pos] {
		return
	}
	if first, ok := s.ids[c.ID]; ok {
		s.p.errorf(deref(at), "criterion id %q used twice (first at %s)", c.ID, first)
		return
	}
	s.pos[c.pos], s.ids[c.ID] = true, c.pos
	s.list = append(s.list, c)
}

// appendUnique appends names to have, reporting names listed twice in the
// gate's own list; names that came from an include are merged silently.
func (p *gateParser) appendUnique(have, names []string, n *yaml.Node, what string) []string {
	seen := map[string]bool{}
	for _, s := range names {
		if seen[s] {
			p.errorf(deref(n), "%s %q listed twice", what, s)
		}
		seen[s] = true
		if !nameRE.MatchString(s) {
			p.errorf(deref(n), "%s name %q: want lowercase letters, digits, _ . -, at most 64", what, s)
		}
	}
	return appendNew(have, names...)
}

// sweepRE is the form of a gate's sweep (its values are range-checked
// when the gate is planned: bench.ParseSweep).
var sweepRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}=[0-9kK, ]{1,200}$`)

// sweeps reads a gate's sweeps: NAME=v1,v2,…, each parameter once.
func (p *gateParser) sweeps(n *yaml.Node) []string {
	list := p.strs(n, "sweeps")
	seen := map[string]bool{}
	for _, s := range list {
		name, _, _ := strings.Cut(s, "=")
		if !sweepRE.MatchString(s) {
			p.errorf(deref(n), "sweep %q: want NAME=v1,v2,… (as harness bench --sweep takes it)", s)
		} else if seen[name] {
			p.errorf(deref(n), "sweep %s listed twice", name)
		}
		seen[name] = true
	}
	return list
}

func appendNew(have []string, xs ...string) []string {
	seen := make(map[string]bool, len(have)+len(xs))
	for _, h := range have {
		seen[h] = true
	}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			have = append(have, x)
		}
	}
	return have
}

func (p *gateParser) criterion(n *yaml.Node, x Gate) (Criterion, bool) {
	c := Criterion{pos: p.pos(deref(n))}
	f := p.mapping(n, "criterion",
		[]string{"id", "metric", "aggregation", "comparator", "bound", "unit", "why", "min_samples", "precondition"},
		[]string{"id", "metric", "aggregation", "comparator", "bound", "why"})
	if f == nil {
		return c, false
	}
	before := len(p.errs)
	c.ID = p.str(f["id"], "id")
	c.Metric = p.str(f["metric"], "metric")
	c.Aggregation = p.str(f["aggregation"], "aggregation")
	c.Comparator = p.str(f["comparator"], "comparator")
	c.Unit = p.str(f["unit"], "unit")
	c.Why = p.str(f["why"], "why")
	if b, ok := p.number(f["bound"], "bound"); ok {
		c.Bound = b
	}
	if m, ok := p.integer(f["min_samples"], "min_samples"); ok {
		c.MinSamples = m
	}
	if b := f["precondition"]; b != nil {
		if err := deref(b).Decode(&c.Precondition); err != nil || deref(b).Tag != "!!bool" {
			p.errorf(b, "precondition: want true or false")
		}
	}
	if c.ID != "" && !nameRE.MatchString(c.ID) {
		p.errorf(f["id"], "criterion id %q: want lowercase letters, digits, _ . -, at most 64", c.ID)
	}
	if strings.ContainsAny(c.Why, "\n\r") {
		p.errorf(f["why"], "criterion %s: why must be one line", c.ID)
	}
	if f["comparator"] != nil && !slices.Contains(comparators, c.Comparator) {
		p.errorf(f["comparator"], "criterion %s: unknown comparator %q (want one of %s)", c.ID, c.Comparator, strings.Join(comparators, " "))
	}
	if f["aggregation"] != nil && !slices.Contains(aggregations, c.Aggregation) {
		p.errorf(f["aggregation"], "criterion %s: unknown aggregation %q (want one of %s)", c.ID, c.Aggregation, strings.Join(aggregations, ", "))
	} else if f["metric"] != nil {
		if msg := checkMetric(c.Metric, c.Aggregation, x); msg != "" {
			p.errorf(f["metric"], "criterion %s: %s", c.ID, msg)
		}
	}
	return c, len(p.errs) == before
}

// checkMetric checks a metric reference's form, that the aggregation suits
// it, and that the gate runs the scenario or benchmark it names.
func checkMetric(metric, agg string, x Gate) string {
	parts := strings.Split(metric, ":")
	valueOnly := func() string {
		if agg != AggValue {
			return fmt.Sprintf("metric %q has one value; aggregation must be value, not %s", metric, agg)
		}
		return ""
	}
	switch {
	case len(parts) == 3 && parts[0] == "scenario" && parts[2] != "",
		len(parts) == 3 && parts[0] == "check" && parts[2] != "":
		if !slices.Contains(x.Scenarios, parts[1]) {
			return fmt.Sprintf("metric %q names scenario %q, which gate %s does not run (add it to scenarios)", metric, parts[1], x.Name)
		}
		if parts[0] == "check" {
			return valueOnly()
		}
		return ""
	case len(parts) == 3 && parts[0] == "bench":
		if !slices.Contains(x.Benchmarks, parts[1]) {
			return fmt.Sprintf("metric %q names benchmark %q, which gate %s does not run (add it to benchmarks)", metric, parts[1], x.Name)
		}
		if !slices.Contains(benchFields, parts[2]) {
			return fmt.Sprintf("metric %q: unknown benchmark field %q (want one of %s)", metric, parts[2], strings.Join(benchFields, ", "))
		}
		if parts[2] == "latency_ms" {
			if agg == AggRate {
				return fmt.Sprintf("metric %q: aggregation rate does not apply to latency", metric)
			}
			return ""
		}
		return valueOnly()
	case len(parts) == 4 && parts[0] == "sweep":
		if !slices.ContainsFunc(x.Sweeps, func(s string) bool { return strings.HasPrefix(s, parts[1]+"=") }) {
			return fmt.Sprintf("metric %q names sweep %q, which gate %s does not run (add it to sweeps)", metric, parts[1], x.Name)
		}
		if !isSweepField(parts[3]) {
			return fmt.Sprintf("metric %q: unknown sweep field %q", metric, parts[3])
		}
		if agg != AggGrowth && agg != AggMax && agg != AggValue {
			return fmt.Sprintf("metric %q: aggregation must be growth, max or value, not %s", metric, agg)
		}
		return ""
	case agg == AggGrowth:
		return fmt.Sprintf("metric %q: aggregation growth applies to sweep metrics only", metric)
	case len(parts) == 2 && parts[0] == "cost":
		if !slices.Contains(x.Benchmarks, CostBench) {
			return fmt.Sprintf("metric %q needs the %s benchmark, which gate %s does not run (add it to benchmarks)", metric, CostBench, x.Name)
		}
		if !slices.Contains(costFields, parts[1]) {
			return fmt.Sprintf("metric %q: unknown cost field %q (want one of %s)", metric, parts[1], strings.Join(costFields, ", "))
		}
		return valueOnly()
	case len(parts) == 2 && parts[0] == "env":
		if !slices.Contains(envFields, parts[1]) {
			return fmt.Sprintf("metric %q: unknown environment field %q (want one of %s)", metric, parts[1], strings.Join(envFields, ", "))
		}
		return valueOnly()
	}
	return fmt.Sprintf("metric %q: want scenario:<scenario>:<metric>, check:<scenario>:<check>, bench:<op>:<field>, sweep:<param>:<op>:<field>, cost:<field> or env:<field>", metric)
}

// deref follows YAML aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// mapping checks n is a mapping whose keys are all allowed and that holds
// every required key; it returns key → value node, or nil on error.
func (p *gateParser) mapping(n *yaml.Node, what string, allowed, required []string) map[string]*yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping", what)
		return nil
	}
	f := map[string]*yaml.Node{}
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		switch {
		case !slices.Contains(allowed, k.Value):
			p.errorf(k, "%s: unknown key %q (want one of %s)", what, k.Value, strings.Join(allowed, ", "))
			ok = false
		case f[k.Value] != nil:
			p.errorf(k, "%s: key %q given twice", what, k.Value)
			ok = false
		default:
			f[k.Value] = n.Content[i+1]
		}
	}
	for _, r := range required {
		if f[r] == nil {
			p.errorf(n, "%s: missing %q", what, r)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return f
}

func (p *gateParser) str(n *yaml.Node, what string) string {
	if n == nil {
		return ""
	}
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s: want a string", what)
		return ""
	}
	return n.Value
}

func (p *gateParser) strs(n *yaml.Node, what string) []string {
	if n == nil {
		return nil
	}
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: want a list of names", what)
		return nil
	}
	var out []string
	for _, e := range n.Content {
		if s := p.str(e, what); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// number reads a finite number within key's GateLimits range.
func (p *gateParser) number(n *yaml.Node, key string) (float64, bool) {
	if n == nil {
		return 0, false
	}
	n = deref(n)
	var f float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil ||
		math.IsNaN(f) || math.IsInf(f, 0) {
		p.errorf(n, "want a number, got %q", n.Value)
		return 0, false
	}
	return f, p.checkRange(n, key, f)
}

// integer reads an integer within key's GateLimits range.
func (p *gateParser) integer(n *yaml.Node, key string) (int64, bool) {
	if n == nil {
		return 0, false
	}
	n = deref(n)
	var i int64
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
		p.errorf(n, "want an integer, got %q", n.Value)
		return 0, false
	}
	return i, p.checkRange(n, key, float64(i))
}
