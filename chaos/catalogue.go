package chaos

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrUnknownFault is returned by Lookup for a name not in the catalogue.
var ErrUnknownFault = errors.New("unknown fault")

// ErrBadParam is returned by Lookup for an unknown, missing or invalid
// parameter.
var ErrBadParam = errors.New("bad fault parameter")

// entry is one fault of the catalogue: its parameters (all strings, as in
// a scenario file) and how to build it from them.
type entry struct {
	name   string
	params []string
	build  func(p *params) Fault
}

// streamParams are the parameters every toxic fault takes.
var streamParams = []string{"stream", "toxicity"}

func toxicEntry(name string, own []string, build func(p *params, stream string, toxicity float32) Fault) entry {
	return entry{name: name, params: append(own, streamParams...), build: func(p *params) Fault {
		return build(p, p.stream(), p.toxicity())
	}}
}

// catalogue is every fault, in the order Names lists them.
var catalogue = slices.Concat([]entry{
	{name: "down", build: func(*params) Fault { return Down{} }},
	toxicEntry("latency", []string{"latency", "jitter"}, func(p *params, s string, t float32) Fault {
		return Latency{Latency: p.duration("latency", true), Jitter: p.duration("jitter", false), Stream: s, Toxicity: t}
	}),
	toxicEntry("bandwidth", []string{"rate"}, func(p *params, s string, t float32) Fault {
		return Bandwidth{Rate: p.int("rate", true), Stream: s, Toxicity: t}
	}),
	toxicEntry("timeout", []string{"timeout"}, func(p *params, s string, t float32) Fault {
		return Timeout{Timeout: p.duration("timeout", false), Stream: s, Toxicity: t}
	}),
	toxicEntry("reset_peer", []string{"timeout"}, func(p *params, s string, t float32) Fault {
		return ResetPeer{Timeout: p.duration("timeout", false), Stream: s, Toxicity: t}
	}),
	toxicEntry("slow_close", []string{"delay"}, func(p *params, s string, t float32) Fault {
		return SlowClose{Delay: p.duration("delay", true), Stream: s, Toxicity: t}
	}),
	toxicEntry("slicer", []string{"average_size", "size_variation", "delay"}, func(p *params, s string, t float32) Fault {
		return Slicer{AverageSize: int(p.int("average_size", true)), SizeVariation: int(p.int("size_variation", false)),
			Delay: p.duration("delay", false), Stream: s, Toxicity: t}
	}),
	toxicEntry("limit_data", []string{"bytes"}, func(p *params, s string, t float32) Fault {
		return LimitData{Bytes: p.int("bytes", true), Stream: s, Toxicity: t}
	}),
	{name: "flapping", params: []string{"period"}, build: func(p *params) Fault {
		return &Flapping{Period: p.duration("period", true)}
	}},
	{name: "kill", build: func(*params) Fault { return Kill{} }},
	{name: "pause", build: func(*params) Fault { return Pause{} }},
	{name: "restart", params: []string{"hard"}, build: func(p *params) Fault {
		return Restart{Hard: p.bool("hard")}
	}},
	{name: "maxmemory", params: []string{"bytes", "policy"}, build: func(p *params) Fault {
		return &MaxMemory{Bytes: p.memory("bytes"), Policy: p.oneOf("policy", "allkeys-lru", evictionPolicies)}
	}},
	{name: "quota", params: []string{"limit"}, build: func(p *params) Fault {
		return Quota{Limit: int(p.int("limit", true))}
	}},
	{name: "failover", build: func(*params) Fault { return &Failover{} }},
	{name: "primary_kill", build: func(*params) Fault { return &PrimaryKill{} }},
	{name: "primary_pause", build: func(*params) Fault { return &PrimaryPause{} }},
	{name: "replica_lag", build: func(*params) Fault { return ReplicaLag{} }},
	{name: "partition_primary", build: func(*params) Fault { return &PartitionPrimary{} }},
	{name: "slot_migration", params: []string{"tag", "pace"}, build: func(p *params) Fault {
		tag, ok := p.get("tag", false)
		if !ok {
			tag = "flow:flow-0"
		}
		pace := p.duration("pace", false)
		if _, ok := p.get("pace", false); !ok {
			pace = 50 * time.Millisecond
		}
		return &SlotMigration{Tag: tag, Pace: pace}
	}},
	{name: "conn_limit", params: []string{"limit"}, build: func(p *params) Fault {
		return ConnLimit{Limit: int(p.int("limit", true))}
	}},
	{name: "rate_cap", params: []string{"limit"}, build: func(p *params) Fault {
		return RateCap{Limit: int(p.int("limit", true))}
	}},
}, tlsEntries())

// tlsEntries are the TLS faults, one name per kind ("tls_expired", ...).
func tlsEntries() []entry {
	var es []entry
	for _, k := range TLSKinds {
		es = append(es, entry{name: "tls_" + k, build: func(*params) Fault { return &TLSFault{Kind: k} }})
	}
	return es
}

// evictionPolicies are Redis's maxmemory-policy values.
var evictionPolicies = []string{"noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
	"volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"}

// Names lists every fault name Lookup knows, in catalogue order.
func Names() []string {
	names := make([]string, len(catalogue))
	for i, e := range catalogue {
		names[i] = e.name
	}
	return names
}

// Lookup builds the named fault from string parameters as a scenario file
// gives them: durations like "100ms", integers, toxicity "0.5", stream
// "upstream" or "downstream", booleans "true"/"false", memory "2mb". An
// unknown fault (ErrUnknownFault) or an unknown, missing or invalid
// parameter (ErrBadParam) is an error naming it and what is known.
func Lookup(name string, args map[string]string) (Fault, error) {
	i := slices.IndexFunc(catalogue, func(e entry) bool { return e.name == name })
	if i < 0 {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownFault, name, strings.Join(Names(), ", "))
	}
	e := catalogue[i]
	for k := range args {
		if !slices.Contains(e.params, k) {
			known := "none"
			if len(e.params) > 0 {
				known = strings.Join(e.params, ", ")
			}
			return nil, fmt.Errorf("%w: fault %s has no parameter %q (known: %s)", ErrBadParam, name, k, known)
		}
	}
	p := &params{fault: name, m: args}
	f := e.build(p)
	if p.err != nil {
		return nil, p.err
	}
	return f, nil
}

// params reads string parameters, keeping the first error.
type params struct {
	fault string
	m     map[string]string
	err   error
}

func (p *params) fail(key, format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: fault %s: %s %q: %s", ErrBadParam, p.fault, key, p.m[key], fmt.Sprintf(format, args...))
	}
}

// get returns the value of key; a required key that is missing is an error.
func (p *params) get(key string, required bool) (string, bool) {
	v, ok := p.m[key]
	if !ok && required && p.err == nil {
		p.err = fmt.Errorf("%w: fault %s needs parameter %q", ErrBadParam, p.fault, key)
	}
	return v, ok
}

// The ranges of fault parameters (docs/limits.md): a duration from
// MinParamDuration (when required; else 0 too) to MaxParamDuration, an
// integer from 0 (1 when required) to MaxParamInt, a toxicity in (0, 1].
const (
	MinParamDuration = time.Millisecond
	MaxParamDuration = time.Hour
	MaxParamInt      = 1 << 40
)

// durationRange states the range of a duration parameter: "1ms to 1h".
var durationRange = MinParamDuration.String() + " to " + strings.TrimSuffix(MaxParamDuration.String(), "0m0s")

// duration reads a Go duration ("100ms", "1.5s").
func (p *params) duration(key string, required bool) time.Duration {
	v, ok := p.get(key, required)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		p.fail(key, "not a duration like 100ms or 2s")
	case d < 0:
		p.fail(key, "negative")
	case required && d == 0:
		p.fail(key, "must be > 0")
	case d > MaxParamDuration || required && d < MinParamDuration:
		p.fail(key, "want %s", durationRange)
	}
	return d
}

func (p *params) int(key string, required bool) int64 {
	v, ok := p.get(key, required)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil:
		p.fail(key, "not an integer")
	case n < 0:
		p.fail(key, "negative")
	case required && n == 0:
		p.fail(key, "must be > 0")
	case n > MaxParamInt:
		p.fail(key, "want at most %d", int64(MaxParamInt))
	}
	return n
}

func (p *params) bool(key string) bool {
	v, ok := p.get(key, false)
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(key, "not true or false")
	}
	return b
}

func (p *params) memory(key string) int64 {
	v, ok := p.get(key, true)
	if !ok {
		return 0
	}
	n, err := parseBytes(v)
	if err != nil {
		p.fail(key, "not a memory size like 1048576, 100kb, 2mb or 1gb")
	}
	return n
}

func (p *params) oneOf(key, def string, allowed []string) string {
	v, ok := p.get(key, false)
	if !ok {
		return def
	}
	if !slices.Contains(allowed, v) {
		p.fail(key, "want one of %s", strings.Join(allowed, ", "))
	}
	return v
}

func (p *params) stream() string {
	return p.oneOf("stream", Downstream, []string{Upstream, Downstream})
}

func (p *params) toxicity() float32 {
	v, ok := p.get("toxicity", false)
	if !ok {
		return 1
	}
	t, err := strconv.ParseFloat(v, 32)
	if err != nil || !(t > 0 && t <= 1) { // NaN is neither
		p.fail("toxicity", "want a number in (0, 1]")
	}
	return float32(t)
}
