package hardened

import (
	"context"
	"errors"
	"time"

	"github.com/gonogo/harness/impl"
)

// ErrOutboxLost is what Close returns (in an *impl.UnsavedError that
// counts them) when the outbox still held acknowledged events it could not
// write to Redis: they are lost with the layer.
var ErrOutboxLost = errors.New("hardened: closed with acknowledged events not written to Redis")

// drain writes the outbox to Redis before the layer closes (a restart,
// such as the tracker's rollback to REDIS_ENABLED=false, must not drop
// events it acknowledged): with the breaker open it first tries one
// connection, and it gives up after ConnectTimeout (plus one replay round
// trip). Close runs it once the replayer stopped, so it is the only
// writer. What it could not write is lost, or, with the outbox journal,
// kept there for the next layer started on it; the error says how many.
func (b *Bus) drain() error {
	if !b.redis {
		return nil
	}
	if b.Outbox().Pending > 0 {
		deadline := time.Now().Add(b.m.cfg.ConnectTimeout)
		if rdb, _ := b.m.client(); rdb == nil {
			b.m.probe(context.Background(), b.m.cfg.ConnectTimeout)
		}
		for b.replayOnce() && time.Now().Before(deadline) {
		}
	}
	n := b.Outbox().Pending
	if b.jr == nil {
		if n > 0 {
			return &impl.UnsavedError{Lost: n, Err: ErrOutboxLost}
		}
		return nil
	}
	var err error
	if n == 0 {
		err = b.jr.truncate()
	}
	err = errors.Join(err, b.jr.close())
	if n > 0 {
		return errors.Join(&impl.UnsavedError{Kept: n}, err)
	}
	return err
}
