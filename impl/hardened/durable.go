package hardened

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// Durable acknowledgement (impl.Config.AckReplicas): a write path that
// acknowledges from Redis ends its pipeline with WAIT, in the same round
// trip, and a write the replicas did not confirm is not acknowledged from
// Redis: the publish keeps it in the outbox, whose replay writes it again
// (finding it first if it is there) on whichever primary is current. What
// this closes is the loss of asynchronous replication: a primary that
// acknowledged a write and died (or was demoted by a failover while
// clients still wrote to it) before a replica had it.

// errNotReplicated is what a write gets when WAIT reported fewer replicas
// than asked within the ack timeout. It counts as an outage.
var errNotReplicated = errors.New("hardened: the replicas did not confirm the write within the ack timeout (WAIT)")

// waitAcks queues WAIT on pl when durable acknowledgement is on, and
// returns its command (nil when off).
func (m *manager) waitAcks(ctx context.Context, pl redis.Pipeliner) *redis.Cmd {
	n := m.cfg.Acks()
	if n == 0 {
		return nil
	}
	// Pipeliner has no Wait method: Do sends the same command.
	return pl.Do(ctx, "WAIT", n, max(1, m.cfg.AckTimeout.Milliseconds()))
}

// replicated is nil when w is nil (off) or confirmed enough replicas; an
// error from WAIT itself, or too few replicas, is errNotReplicated.
func (m *manager) replicated(w *redis.Cmd) error {
	if w == nil {
		return nil
	}
	if n, err := w.Int64(); err != nil || n < int64(m.cfg.Acks()) {
		return errNotReplicated
	}
	return nil
}

// ackMark queues, before WAIT, a PUBLISH to the layer's own ack channel
// (no subscriber): it is replicated, so it moves the connection's
// replication offset past everything the server holds, and the WAIT after
// it confirms entries a replay found in a stream rather than wrote (WAIT
// waits for the offset of the connection's last write, which a found entry
// is not).
func (m *manager) ackMark(ctx context.Context, pl redis.Pipeliner, channel string) {
	if m.cfg.Acks() > 0 {
		pl.Publish(ctx, channel, "")
	}
}
