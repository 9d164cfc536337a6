// Package chaos breaks Redis on purpose: network faults through Toxiproxy
// (embedded in-process or external), process faults through the target, TLS
// faults with certificates generated at run time, and Upstash-like quota
// errors. Each fault is a small value with a name, an availability check
// against the environment, Inject and Undo.
package chaos

import (
	"context"

	"github.com/gonogo/harness/target"
)

// Env is what a fault acts on: the Redis target and the proxy in front of it.
// Proxy is nil when the run has no proxy.
type Env struct {
	Target target.Target
	Proxy  Proxy
	// AllowDestructive permits destructive faults on a target the harness
	// does not own (the user said so explicitly).
	AllowDestructive bool
}

// Fault is one injectable failure.
type Fault interface {
	// Name is the catalogue name ("down", "latency", "kill", ...).
	Name() string
	// Available returns nil when the fault can act on env, or an error
	// saying why not (no proxy; target not owned; no pause ability).
	Available(env Env) error
	// Inject starts the fault.
	Inject(ctx context.Context, env Env) error
	// Undo ends it. It must be safe to call after a failed or partial
	// Inject, and callers always call it.
	Undo(ctx context.Context, env Env) error
}

// Toxic is one Toxiproxy toxic: its type ("latency", "timeout", ...), the
// direction it acts on ("upstream": client to Redis, "downstream": Redis to
// client), its toxicity (0..1, 0 means 1) and its attributes.
type Toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float32        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// withDefaults fills the stream (downstream) and toxicity (1) Toxiproxy
// would otherwise take as given.
func (t Toxic) withDefaults() Toxic {
	if t.Stream == "" {
		t.Stream = Downstream
	}
	if t.Toxicity <= 0 {
		t.Toxicity = 1
	}
	return t
}

// The two directions a toxic acts on.
const (
	Upstream   = "upstream"   // client to Redis
	Downstream = "downstream" // Redis to client
)

// Proxy is a Toxiproxy proxy in front of Redis, embedded or external.
type Proxy interface {
	// Listen is the host:port clients dial instead of Redis.
	Listen() string
	// SetEnabled opens (true) or closes (false) the proxy; closed, it
	// refuses connections and drops the ones it has.
	SetEnabled(ctx context.Context, on bool) error
	// AddToxic adds a toxic. Toxics are never updated in place: remove
	// and add again (in-place updates race in toxiproxy).
	AddToxic(ctx context.Context, t Toxic) error
	// RemoveToxic removes a toxic by name; removing one that is not
	// there is not an error (Undo after a failed Inject).
	RemoveToxic(ctx context.Context, name string) error
	// Close removes the proxy.
	Close() error
}
