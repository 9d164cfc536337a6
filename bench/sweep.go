package bench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/target"
)

// SweepParam is a size a sweep varies: the op it drives at every point,
// the range its values must lie in, and how DESIGN.md says the cost may
// grow with it (a field of the point's row to a growth class).
type SweepParam struct {
	Name     string
	Op       string
	Unit     string
	Min, Max int64
	Doc      string
	// Promise maps a reports.SweepFields field to the growth the design
	// allows (reports.Flat, reports.Linear).
	Promise map[string]reports.Growth
}

// Names of the sweep parameters.
const (
	SweepSSEClients = "sse_clients"
	SweepFlows      = "flows"
	SweepMembers    = "members"
	SweepOutage     = "outage_s"
	SweepEventBytes = "event_bytes"
)

// SweepParams lists what --sweep may vary.
var SweepParams = []SweepParam{
	{Name: SweepSSEClients, Op: OpSSE, Unit: "SSE connections", Min: 1, Max: 20_000,
		Doc:     "SSE clients on one instance (the sse op); memory per connection, delivery latency",
		Promise: map[string]reports.Growth{reports.FieldRoundTrips: reports.Flat, reports.FieldRSSPerConn: reports.Flat}},
	{Name: SweepFlows, Op: OpPublish, Unit: "flows", Min: 1, Max: 100_000,
		Doc:     "flows the publishes spread over, round robin (the publish op)",
		Promise: map[string]reports.Growth{reports.FieldRoundTrips: reports.Flat, reports.FieldServerCommands: reports.Flat}},
	{Name: SweepMembers, Op: OpRegLookup, Unit: "registry members", Min: 1, Max: 100_000,
		Doc:     "connections registered on the looked-up flow (the reg_lookup op); guarantee 9: one round trip per lookup",
		Promise: map[string]reports.Growth{reports.FieldRoundTrips: reports.Flat, reports.FieldServerCommands: reports.Flat}},
	{Name: SweepOutage, Op: OpPublish, Unit: "outage seconds", Min: 1, Max: 3600,
		Doc:     "seconds Redis is unreachable (proxy down) while publishing at --rate (default 1000/s); process target only",
		Promise: map[string]reports.Growth{reports.FieldOutboxPeak: reports.Linear, reports.FieldRSS: reports.Linear}},
	{Name: SweepEventBytes, Op: OpPublish, Unit: "event bytes", Min: 64, Max: 1 << 20,
		Doc:     "size of each published event's JSON (the publish op)",
		Promise: map[string]reports.Growth{reports.FieldRoundTrips: reports.Flat, reports.FieldBytesOut: reports.Linear}},
}

// maxSweepPoints bounds the values of one sweep.
const maxSweepPoints = 20

// Sweep is one --sweep: a parameter and its values, ascending.
type Sweep struct {
	Param  string  `json:"param"`
	Values []int64 `json:"values"`
}

// SweepParamOf returns the named parameter.
func SweepParamOf(name string) (SweepParam, bool) {
	for _, p := range SweepParams {
		if p.Name == name {
			return p, true
		}
	}
	return SweepParam{}, false
}

// SweepNames lists the parameters' names.
func SweepNames() []string {
	out := make([]string, len(SweepParams))
	for i, p := range SweepParams {
		out[i] = p.Name
	}
	return out
}

// ParseSweep reads NAME=v1,v2,…: a known parameter and 2 to
// maxSweepPoints distinct integer values within its range (sorted
// ascending). Values may end in k (thousand).
func ParseSweep(s string) (Sweep, error) {
	name, list, ok := strings.Cut(s, "=")
	if !ok {
		return Sweep{}, fmt.Errorf("sweep %q: want NAME=v1,v2,… (names: %s)", s, strings.Join(SweepNames(), ", "))
	}
	p, ok := SweepParamOf(strings.TrimSpace(name))
	if !ok {
		return Sweep{}, fmt.Errorf("sweep %q: unknown parameter %q (known: %s)", s, name, strings.Join(SweepNames(), ", "))
	}
	sw := Sweep{Param: p.Name}
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		mult := int64(1)
		if t, ok := strings.CutSuffix(strings.ToLower(f), "k"); ok {
			f, mult = t, 1000
		}
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return Sweep{}, fmt.Errorf("sweep %s: value %q is not an integer", p.Name, f)
		}
		if v < 1 || v > p.Max/mult {
			return Sweep{}, fmt.Errorf("sweep %s: value %d out of range [%d, %d]", p.Name, v*mult, p.Min, p.Max)
		}
		v *= mult
		if v < p.Min {
			return Sweep{}, fmt.Errorf("sweep %s: value %d out of range [%d, %d]", p.Name, v, p.Min, p.Max)
		}
		if slices.Contains(sw.Values, v) {
			return Sweep{}, fmt.Errorf("sweep %s: value %d given twice", p.Name, v)
		}
		sw.Values = append(sw.Values, v)
	}
	if len(sw.Values) < 2 || len(sw.Values) > maxSweepPoints {
		return Sweep{}, fmt.Errorf("sweep %s: %d values; want 2 to %d", p.Name, len(sw.Values), maxSweepPoints)
	}
	slices.Sort(sw.Values)
	return sw, nil
}

// String is the sweep as --sweep takes it.
func (s Sweep) String() string {
	vs := make([]string, len(s.Values))
	for i, v := range s.Values {
		vs[i] = strconv.FormatInt(v, 10)
	}
	return s.Param + "=" + strings.Join(vs, ",")
}

// Point is the sweep value a step runs at.
type Point struct {
	Param string
	Value int64
}

// knobs are the sizes a step runs with: the configuration's, or its sweep
// point's.
type knobs struct {
	sseClients int
	flows      int // 0: one flow per worker
	members    int
	eventBytes int // 0: the bench event as it is
	outage     time.Duration
}

func (s *session) knobs(st Step) knobs {
	k := knobs{sseClients: s.cfg.SSEClients, members: lookupConns}
	if st.Point == nil {
		return k
	}
	v := int(st.Point.Value)
	switch st.Point.Param {
	case SweepSSEClients:
		k.sseClients = v
	case SweepFlows:
		k.flows = v
	case SweepMembers:
		k.members = v
	case SweepEventBytes:
		k.eventBytes = v
	case SweepOutage:
		k.outage = time.Duration(v) * time.Second
	}
	return k
}

// sweepSteps are the steps of a sweep: the parameter's op at each value,
// in ascending order (every round in turn).
func (c Config) sweepSteps() []Step {
	p, _ := SweepParamOf(c.Sweep.Param)
	var out []Step
	for _, v := range c.Sweep.Values {
		l := c.Load
		if p.Name == SweepOutage {
			l = outageLoad(l, time.Duration(v)*time.Second)
		}
		out = append(out, Step{Op: p.Op, Load: l, Point: &Point{Param: p.Name, Value: v}})
	}
	return out
}

// Sweeps groups a sweep run's rows into the report model's sweeps: one
// per op kind and profile, points in value order.
func (r *Report) Sweeps() []reports.Sweep {
	if r.Sweep == nil {
		return nil
	}
	p, _ := SweepParamOf(r.Sweep.Param)
	var out []reports.Sweep
	index := map[string]int{}
	for _, x := range r.Results {
		if x.Point == nil {
			continue
		}
		key := x.Op + "\x00" + x.Profile
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			promise := p.Promise
			if x.Op != p.Op { // sse_publish: the side row
				promise = nil
			}
			out = append(out, reports.Sweep{Param: p.Name, Unit: p.Unit, Op: x.Op, Profile: x.Profile, Promise: promise})
		}
		vals := map[string]float64{}
		if x.Ops > 0 { // a point that could not run measured nothing
			vals = x.sweepValues()
		}
		out[i].Points = append(out[i].Points, reports.SweepPoint{X: float64(*x.Point), Values: vals,
			Inconclusive: x.Inconclusive, TimingOnly: x.TimingOnly})
	}
	return out
}

// sweepValues are the row's numbers a sweep plots and judges.
func (x Result) sweepValues() map[string]float64 {
	ms := reports.Ms
	v := map[string]float64{
		reports.FieldOpsPerSec: x.OpsPerSec, reports.FieldP50: ms(x.Latency.P50), reports.FieldP99: ms(x.Latency.P99),
		reports.FieldP999: ms(x.Latency.P999), reports.FieldRoundTrips: x.RoundTripsPerOp, reports.FieldCommands: x.CommandsPerOp,
		reports.FieldBytesOut: x.BytesOutPerOp, reports.FieldBytesIn: x.BytesInPerOp, reports.FieldErrors: float64(x.Errors),
	}
	if x.ServerCommandsPerOp != nil {
		v[reports.FieldServerCommands] = *x.ServerCommandsPerOp
	}
	if p := x.Process; p != nil {
		v[reports.FieldRSS] = float64(p.RSSBytes)
		v[reports.FieldFDs] = float64(p.FDs)
		if p.Conns > 0 {
			v[reports.FieldRSSPerConn] = p.RSSPerConn
		}
	}
	if o := x.Outage; o != nil {
		v[reports.FieldOutboxPeak] = float64(o.OutboxPeak)
		v[reports.FieldOverflow] = float64(o.Overflow)
		v[reports.FieldReplayed] = float64(o.Replayed)
		if o.DrainedMs >= 0 {
			v[reports.FieldDrained] = o.DrainedMs
		}
		v[reports.FieldRSS] = float64(o.PeakRSSBytes)
	}
	return v
}

// validateSweep checks a sweep against the rest of the configuration.
func (c *Config) validateSweep() error {
	if c.Sweep == nil {
		return nil
	}
	p, ok := SweepParamOf(c.Sweep.Param)
	switch {
	case !ok:
		return fmt.Errorf("unknown sweep parameter %q (known: %s)", c.Sweep.Param, strings.Join(SweepNames(), ", "))
	case len(c.Sweep.Values) < 2 || len(c.Sweep.Values) > maxSweepPoints:
		return fmt.Errorf("sweep %s: %d values; want 2 to %d", p.Name, len(c.Sweep.Values), maxSweepPoints)
	case len(c.Profiles) == 0:
		return fmt.Errorf("sweep %s drives the layer's %s: give a profile (--profile)", p.Name, p.Op)
	case p.Name == SweepOutage && c.Target != target.KindProcess:
		return fmt.Errorf("sweep %s takes Redis away behind a proxy: it needs --target process", p.Name)
	case p.Name == SweepOutage && c.metered():
		return fmt.Errorf("sweep %s: not on a metered target (its command count is not known in advance)", p.Name)
	}
	for i, v := range c.Sweep.Values {
		if v < p.Min || v > p.Max {
			return fmt.Errorf("sweep %s: value %d out of range [%d, %d]", p.Name, v, p.Min, p.Max)
		}
		if i > 0 && v <= c.Sweep.Values[i-1] {
			return fmt.Errorf("sweep %s: values must be distinct and ascending", p.Name)
		}
	}
	return nil
}

// fdNeed is about how many file descriptors the run holds at once: both
// ends of every SSE connection (the clients' only with an instance
// process), with room for the rest (0: the default limit is enough).
func (c Config) fdNeed() uint64 {
	clients := int64(c.SSEClients)
	if c.Sweep != nil && c.Sweep.Param == SweepSSEClients {
		clients = slices.Max(c.Sweep.Values)
	}
	if clients < 256 {
		return 0
	}
	if len(c.SSEInstance) > 0 { // the servers' ends are in the instance
		return uint64(clients + 4096)
	}
	return uint64(2*clients + 4096)
}
