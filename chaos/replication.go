package chaos

import (
	"context"
	"sync"
	"time"

	"github.com/gonogo/harness/target"
)

// switchTime holds how long a fault's switch of primary took.
type switchTime struct {
	mu sync.Mutex
	d  time.Duration
}

func (s *switchTime) set(d time.Duration) {
	s.mu.Lock()
	s.d = d
	s.mu.Unlock()
}

// Switched is how long the target took, from the start of Inject, to name
// the new primary (0 before Inject, or when it failed).
func (s *switchTime) Switched() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.d
}

// Failover moves the primary of a replicated target to a replica (SENTINEL
// FAILOVER): the old primary is demoted, a replica promoted, and clients
// must find the new one. Inject returns once the sentinels name it and the
// other nodes replicate from it; there is nothing to undo.
type Failover struct{ switchTime }

// Name is "failover".
func (*Failover) Name() string { return "failover" }

// Available needs an owned replicated target (sentinel).
func (*Failover) Available(env Env) error {
	_, err := ability[target.Failoverer](env, "fail over (it has no replicas and no sentinels)")
	return err
}

// Inject fails over and records how long the switch took.
func (f *Failover) Inject(ctx context.Context, env Env) error {
	t, err := ability[target.Failoverer](env, "fail over (it has no replicas and no sentinels)")
	if err != nil {
		return err
	}
	d, err := t.Failover(ctx)
	f.set(d)
	return err
}

// Undo does nothing: the new primary stays.
func (*Failover) Undo(context.Context, Env) error { return nil }

// PrimaryKill kills the primary of a replicated target with SIGKILL: after
// the sentinels' down-after time a replica is promoted, and what the old
// primary acknowledged but had not yet replicated is lost (replication is
// asynchronous). Inject returns once the new primary is named; Undo starts
// the killed node again as a replica of it.
type PrimaryKill struct{ switchTime }

// Name is "primary_kill".
func (*PrimaryKill) Name() string { return "primary_kill" }

// Available needs an owned replicated target (sentinel).
func (*PrimaryKill) Available(env Env) error {
	_, err := ability[target.PrimaryKiller](env, "kill its primary and promote a replica (it has no replicas and no sentinels)")
	return err
}

// Inject kills the primary and waits for the promotion.
func (f *PrimaryKill) Inject(ctx context.Context, env Env) error {
	t, err := ability[target.PrimaryKiller](env, "kill its primary and promote a replica (it has no replicas and no sentinels)")
	if err != nil {
		return err
	}
	d, err := t.KillPrimary(ctx)
	f.set(d)
	return err
}

// Undo restarts the killed node as a replica.
func (*PrimaryKill) Undo(ctx context.Context, env Env) error {
	t, err := ability[target.PrimaryKiller](env, "restart its killed primary")
	if err != nil {
		return err
	}
	return t.RestartKilled(ctx)
}

// PrimaryPause freezes the primary of a replicated target (SIGSTOP) for
// the step's window: clients connected to it hang, the sentinels promote a
// replica, and on Undo the old primary thaws believing it is still the
// primary, until it is demoted. What it took in that split-brain window
// is lost.
type PrimaryPause struct {
	mu     sync.Mutex
	resume func(context.Context) error
}

// Name is "primary_pause".
func (*PrimaryPause) Name() string { return "primary_pause" }

// Available needs an owned replicated target (sentinel).
func (*PrimaryPause) Available(env Env) error {
	_, err := ability[target.PrimaryPauser](env, "pause its primary (it has no replicas and no sentinels)")
	return err
}

// Inject freezes the primary.
func (f *PrimaryPause) Inject(ctx context.Context, env Env) error {
	t, err := ability[target.PrimaryPauser](env, "pause its primary (it has no replicas and no sentinels)")
	if err != nil {
		return err
	}
	resume, err := t.PausePrimary(ctx)
	f.mu.Lock()
	f.resume = resume
	f.mu.Unlock()
	return err
}

// Undo thaws the node Inject froze, and it rejoins as a replica.
func (f *PrimaryPause) Undo(ctx context.Context, _ Env) error {
	f.mu.Lock()
	resume := f.resume
	f.resume = nil
	f.mu.Unlock()
	if resume == nil {
		return nil
	}
	return resume(ctx)
}

// ReplicaLag holds replication back for the step's window by cutting the
// replicas off from the primary (REPLICAOF to a closed port; not
// Toxiproxy: the replicas dial the primary directly): the primary keeps
// acknowledging writes no replica has. Kill the primary inside the window
// (primary_kill) and those writes are lost by asynchronous replication
// unless the layer waited for a replica.
type ReplicaLag struct{}

// Name is "replica_lag".
func (ReplicaLag) Name() string { return "replica_lag" }

// Available needs an owned replicated target (sentinel).
func (ReplicaLag) Available(env Env) error {
	_, err := ability[target.ReplicaLagger](env, "hold its replicas back (it has none)")
	return err
}

// Inject cuts the replicas off.
func (ReplicaLag) Inject(ctx context.Context, env Env) error {
	t, err := ability[target.ReplicaLagger](env, "hold its replicas back (it has none)")
	if err != nil {
		return err
	}
	return t.LagReplicas(ctx)
}

// Undo reconnects them to the current primary.
func (ReplicaLag) Undo(ctx context.Context, env Env) error {
	t, err := ability[target.ReplicaLagger](env, "hold its replicas back")
	if err != nil {
		return err
	}
	return t.CatchUpReplicas(ctx)
}

// PartitionPrimary cuts the primary of a replicated target off from the
// sentinels and the replicas while the clients still reach it: the
// sentinels promote a replica after their down-after time, and until the
// clients learn of the switch they keep writing to the old primary, which
// believes it is still one (the split-brain window). Inject returns once
// the new primary is named; Undo heals the partition, and the old primary
// becomes a replica of the new one, losing what it took in between. The
// cut is made at the primary (the sentinels' ACL user turned off, the
// replicas pointed away), not by Toxiproxy: the sentinels, the replicas
// and the clients all dial the data nodes directly, at the addresses the
// sentinels announce.
type PartitionPrimary struct{ switchTime }

// Name is "partition_primary".
func (*PartitionPrimary) Name() string { return "partition_primary" }

const partitionWhat = "cut its primary off from sentinels and replicas (it has no replicas and no sentinels)"

// Available needs an owned replicated target (sentinel).
func (*PartitionPrimary) Available(env Env) error {
	_, err := ability[target.PrimaryPartitioner](env, partitionWhat)
	return err
}

// Inject cuts the primary off and waits for the promotion.
func (f *PartitionPrimary) Inject(ctx context.Context, env Env) error {
	t, err := ability[target.PrimaryPartitioner](env, partitionWhat)
	if err != nil {
		return err
	}
	d, err := t.PartitionPrimary(ctx)
	f.set(d)
	return err
}

// Undo heals the partition.
func (*PartitionPrimary) Undo(ctx context.Context, env Env) error {
	t, err := ability[target.PrimaryPartitioner](env, partitionWhat)
	if err != nil {
		return err
	}
	return t.HealPartition(ctx)
}

// SlotMigration moves the hash slot of the hash tag Tag ("flow:flow-0",
// the tag of a flow's keys: {flow:<id>}; "sse", the registry's) from its
// primary to another one of a cluster, under load: Inject marks the slot
// IMPORTING on the destination and MIGRATING on the source and MIGRATEs
// its keys one at a time, Pace apart, so that clients meet ASK redirects
// (and TRYAGAIN, for a script whose keys are split); the slot stays split
// for the step's window. Undo moves what is left and hands the slot to the
// destination (CLUSTER SETSLOT NODE), after which clients meet MOVED.
type SlotMigration struct {
	Tag  string
	Pace time.Duration

	mu sync.Mutex
	m  *target.SlotMigration
}

// Name is "slot_migration".
func (*SlotMigration) Name() string { return "slot_migration" }

const slotWhat = "move a hash slot between primaries (it is not a cluster)"

// Available needs an owned cluster.
func (*SlotMigration) Available(env Env) error {
	_, err := ability[target.SlotMigrator](env, slotWhat)
	return err
}

// Inject splits the slot and moves its keys.
func (f *SlotMigration) Inject(ctx context.Context, env Env) error {
	t, err := ability[target.SlotMigrator](env, slotWhat)
	if err != nil {
		return err
	}
	m, err := t.MigrateSlot(ctx, "{"+f.Tag+"}", f.Pace)
	f.mu.Lock()
	f.m = m
	f.mu.Unlock()
	return err
}

// Undo hands the slot over to the destination.
func (f *SlotMigration) Undo(ctx context.Context, _ Env) error {
	f.mu.Lock()
	m := f.m
	f.m = nil
	f.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Finish(ctx)
}
