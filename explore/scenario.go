// Package explore looks for failures between the catalogue's hand-written
// schedules: it generates scenarios (a workload and one to four faults drawn
// from the whole fault catalogue, reproducible from a seed and an index),
// runs them back to back within a budget, judges each with the scenario
// checkers, and shrinks every failure to the smallest scenario in which the
// same checker still fails, written as a catalogue YAML file that `harness
// run --scenario FILE` replays.
//
// Everything that calls the scenario engine is in engine.go; the rest is
// pure logic over Scenario, the part of a scenario file explore writes.
package explore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Scenario is what explore writes of a scenario file: the fields it
// generates and shrinks, with the file format's names (scenarios.Spec).
// Zero values are left out of the file, so the engine's defaults apply.
type Scenario struct {
	Name         string   `yaml:"name"`
	Description  string   `yaml:"description,omitempty"`
	Target       Target   `yaml:"target,omitempty"`
	Instances    int      `yaml:"instances,omitempty"`
	InstanceMode string   `yaml:"instance_mode,omitempty"`
	Config       Config   `yaml:"config"`
	Workload     Workload `yaml:"workload"`
	Faults       []Fault  `yaml:"faults,omitempty"`
	Checks       []Check  `yaml:"checks"`
}

// Target is the target section: TLS for the TLS faults, AOF so that a
// kill or restart keeps Redis's data, kind sentinel for the faults of a
// replicated Redis.
type Target struct {
	Kind string `yaml:"kind,omitempty"`
	AOF  bool   `yaml:"aof,omitempty"`
	TLS  bool   `yaml:"tls,omitempty"`
}

// Config is the layer configuration, scaled down as the catalogue's is.
type Config struct {
	ProbeInterval   Dur  `yaml:"probe_interval,omitempty"`
	HealthInterval  Dur  `yaml:"health_interval,omitempty"`
	RegistryTTL     Dur  `yaml:"registry_ttl,omitempty"`
	CleanupInterval Dur  `yaml:"cleanup_interval,omitempty"`
	Journal         bool `yaml:"journal,omitempty"`
}

// Workload is the traffic.
type Workload struct {
	Duration Dur       `yaml:"duration"`
	Publish  *Publish  `yaml:"publish,omitempty"`
	SSE      *SSE      `yaml:"sse,omitempty"`
	Cache    *Cache    `yaml:"cache,omitempty"`
	Registry *Registry `yaml:"registry,omitempty"`
}

// Publish drives the event bus.
type Publish struct {
	Rate       float64 `yaml:"rate"`
	Flows      int     `yaml:"flows,omitempty"`
	Publishers int     `yaml:"publishers,omitempty"`
	Payload    int     `yaml:"payload,omitempty"`
}

// SSE drives live delivery, with reconnecting, slow and stalled clients.
type SSE struct {
	Clients   int       `yaml:"clients"`
	Reconnect Dur       `yaml:"reconnect,omitempty"`
	Move      string    `yaml:"move,omitempty"`
	Slow      *Consumer `yaml:"slow,omitempty"`
	Stalled   *Consumer `yaml:"stalled,omitempty"`
}

// Consumer is a slow or stalled SSE client.
type Consumer struct {
	Clients  int `yaml:"clients"`
	ReadRate int `yaml:"read_rate,omitempty"`
	After    int `yaml:"after,omitempty"`
	For      Dur `yaml:"for,omitempty"`
}

// Cache drives the flow-state cache.
type Cache struct {
	Rate       float64 `yaml:"rate"`
	WriteRatio float64 `yaml:"write_ratio,omitempty"`
	Flows      int     `yaml:"flows,omitempty"`
	Clients    int     `yaml:"clients,omitempty"`
}

// Registry drives the SSE connection registry.
type Registry struct {
	Connections int `yaml:"connections"`
	Flows       int `yaml:"flows,omitempty"`
}

// Fault is one step of the fault timeline.
type Fault struct {
	At     Dur               `yaml:"at"`
	For    Dur               `yaml:"for,omitempty"`
	Fault  string            `yaml:"fault"`
	Params map[string]string `yaml:"params,omitempty"`
	Redis  string            `yaml:"redis,omitempty"`
	Wipes  bool              `yaml:"wipes,omitempty"`
}

// end is when the fault is undone: For 0 lasts to the end of the workload.
func (f Fault) end(d Dur) Dur {
	if f.For == 0 {
		return d
	}
	return f.At + f.For
}

// Check names a checker, with a bound where it needs one.
type Check struct {
	Name       string            `yaml:"name"`
	Thresholds map[string]string `yaml:"thresholds,omitempty"`
	ReportOnly bool              `yaml:"report_only,omitempty"`
}

// Dur is a duration written as a Go duration string ("1.5s").
type Dur time.Duration

// MarshalYAML writes the duration string.
func (d Dur) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML reads a duration string.
func (d *Dur) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	*d = Dur(v)
	return err
}

// IsZero lets omitempty leave a zero duration out.
func (d Dur) IsZero() bool { return d == 0 }

func (d Dur) String() string { return time.Duration(d).String() }

// YAML is the scenario file's text.
func (s Scenario) YAML() []byte {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		// Every field is a plain value: encoding cannot fail.
		panic("explore: encoding a scenario: " + err.Error())
	}
	return b.Bytes()
}

// Hash identifies the scenario by what it runs and judges (name and
// description left out): 8 hex digits.
func (s Scenario) Hash() string {
	s.Name, s.Description = "", ""
	sum := sha256.Sum256(s.YAML())
	return hex.EncodeToString(sum[:4])
}

// Clone is a deep copy: the shrinker changes copies.
func (s Scenario) Clone() Scenario {
	c := s
	w := &c.Workload
	if w.Publish != nil {
		p := *w.Publish
		w.Publish = &p
	}
	if w.SSE != nil {
		x := *w.SSE
		if x.Slow != nil {
			v := *x.Slow
			x.Slow = &v
		}
		if x.Stalled != nil {
			v := *x.Stalled
			x.Stalled = &v
		}
		w.SSE = &x
	}
	if w.Cache != nil {
		v := *w.Cache
		w.Cache = &v
	}
	if w.Registry != nil {
		v := *w.Registry
		w.Registry = &v
	}
	c.Faults = make([]Fault, len(s.Faults))
	for i, f := range s.Faults {
		f.Params = cloneMap(f.Params)
		c.Faults[i] = f
	}
	c.Checks = make([]Check, len(s.Checks))
	for i, ch := range s.Checks {
		ch.Thresholds = cloneMap(ch.Thresholds)
		c.Checks[i] = ch
	}
	return c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// FaultKinds are the names of the scenario's faults, sorted, without
// repeats.
func (s Scenario) FaultKinds() []string {
	var out []string
	for _, f := range s.Faults {
		if !slices.Contains(out, f.Fault) {
			out = append(out, f.Fault)
		}
	}
	slices.Sort(out)
	return out
}

// Describe is a one-line summary: "5s, 2 instances, down+latency".
func (s Scenario) Describe() string {
	var parts []string
	parts = append(parts, s.Workload.Duration.String())
	if s.Instances > 1 {
		parts = append(parts, strconv.Itoa(s.Instances)+" instances")
	}
	names := make([]string, len(s.Faults))
	for i, f := range s.Faults {
		names[i] = f.Fault
	}
	if len(names) == 0 {
		names = []string{"no fault"}
	}
	parts = append(parts, strings.Join(names, "+"))
	return strings.Join(parts, ", ")
}
