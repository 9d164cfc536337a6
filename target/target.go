// Package target is where Redis comes from for a run: a redis-server process
// the harness spawns and owns, any URL it does not own, or a container. Each target says what it owns and which destructive abilities it
// offers; faults find those abilities by type assertion.
package target

import (
	"context"
	"crypto/tls"
	"strings"
	"time"
)

// Kind names a kind of target: where Redis comes from.
type Kind string

// The target kinds.
const (
	// KindProcess is a redis-server the harness spawns and owns.
	KindProcess Kind = "process"
	// KindContainer is a Redis container the harness starts (or attaches
	// to) and owns.
	KindContainer Kind = "container"
	// KindRemoteSim is a process behind TLS and a proxy adding a round-trip
	// time: a stand-in for a managed Redis far away.
	KindRemoteSim Kind = "remote-sim"
	// KindURL is any Redis reached by URL, which the harness does not own.
	KindURL Kind = "url"
	// KindUpstashSim is remote-sim with Upstash's limits and billing rule
	// (chaos.StartUpstashSim).
	KindUpstashSim Kind = "upstash-sim"
)

// Kinds lists the target kinds, in the order messages name them.
var Kinds = []Kind{KindProcess, KindContainer, KindRemoteSim, KindUpstashSim, KindSentinel, KindCluster, KindURL}

// KindList is kinds joined by sep, for messages.
func KindList(kinds []Kind, sep string) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, sep)
}

// Remote reports whether a target of kind k is reached over a network with
// real (or simulated) latency rather than on this machine.
func (k Kind) Remote() bool { return k == KindURL || k == KindRemoteSim || k == KindUpstashSim }

// Target is a Redis the harness can connect to.
type Target interface {
	// Kind is one of Kinds.
	Kind() Kind
	// Addr is host:port of the Redis listener (the upstream of a proxy).
	Addr() string
	// URL is the redis:// or rediss:// URL clients use, credentials
	// included. It is a secret: print Redacted instead.
	URL() string
	// Redacted is URL with any password masked.
	Redacted() string
	// TLS is the client TLS configuration for this target, or nil for
	// plain TCP.
	TLS() *tls.Config
	// Owned reports whether the harness owns the server, so destructive
	// faults (kill, pause, restart, CONFIG SET, FLUSH) are allowed.
	Owned() bool
	// KeyPrefix is the namespace every key the harness writes must carry
	// on this target ("" when the target is owned and private).
	KeyPrefix() string
	// Close releases everything the target started. It is safe to call
	// more than once.
	Close() error
}

// Killer can kill the server with SIGKILL (or the container equivalent).
type Killer interface {
	Kill(ctx context.Context) error
}

// Pauser can freeze and thaw the server (SIGSTOP/SIGCONT, docker pause).
type Pauser interface {
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
}

// Restarter can start the server again on the same address and data dir,
// after a kill or a clean stop.
type Restarter interface {
	Restart(ctx context.Context) error
}

// Stopper can stop the server cleanly without restarting it.
type Stopper interface {
	Stop(ctx context.Context) error
}

// Configurer can read and change server settings at run time (CONFIG GET,
// CONFIG SET), e.g. maxmemory and maxmemory-policy.
type Configurer interface {
	ConfigSet(ctx context.Context, key, value string) error
	ConfigGet(ctx context.Context, key string) (string, error)
}

// Failoverer can move the primary to a replica (SENTINEL FAILOVER) and
// says how long until the new primary was named.
type Failoverer interface {
	Failover(ctx context.Context) (time.Duration, error)
}

// PrimaryKiller can SIGKILL the primary of a replicated target, so that a
// replica is promoted (it says how long until the new primary was named),
// and restart what it killed, as a replica.
type PrimaryKiller interface {
	KillPrimary(ctx context.Context) (time.Duration, error)
	RestartKilled(ctx context.Context) error
}

// PrimaryPauser can freeze the primary of a replicated target (SIGSTOP);
// resume thaws that node.
type PrimaryPauser interface {
	PausePrimary(ctx context.Context) (resume func(context.Context) error, err error)
}

// ReplicaLagger can cut the replicas of a replicated target off from the
// primary, so that replication lags, and reconnect them.
type ReplicaLagger interface {
	LagReplicas(ctx context.Context) error
	CatchUpReplicas(ctx context.Context) error
}

// PrimaryPartitioner can cut the primary of a replicated target off from
// its sentinels and replicas while clients still reach it (it says how
// long until a replica was promoted), and heal that partition.
type PrimaryPartitioner interface {
	PartitionPrimary(ctx context.Context) (time.Duration, error)
	HealPartition(ctx context.Context) error
}

// SlotMigrator can move the hash slot of a key from its primary to another
// one (a cluster), leaving it split until the migration's Finish.
type SlotMigrator interface {
	MigrateSlot(ctx context.Context, key string, pace time.Duration) (*SlotMigration, error)
}

var (
	_ SlotMigrator       = (*Cluster)(nil)
	_ ReplicaLagger      = (*Sentinel)(nil)
	_ PrimaryPartitioner = (*Sentinel)(nil)
	_ PrimaryPauser      = (*Sentinel)(nil)
	_ Failoverer         = (*Sentinel)(nil)
	_ Failoverer         = (*Cluster)(nil)
	_ PrimaryKiller      = (*Sentinel)(nil)
	_ Target             = (*Process)(nil)
	_ Killer             = (*Process)(nil)
	_ Pauser             = (*Process)(nil)
	_ Restarter          = (*Process)(nil)
	_ Stopper            = (*Process)(nil)
	_ Configurer         = (*Process)(nil)
	_ Target             = (*Remote)(nil)
)
