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
// events it acknowledged): for up to DrainTimeout (plus one replay round
// trip) it connects again whenever the breaker is open, every
// ProbeInterval, and replays while events remain. (It used to try one
// connection, then to wait ConnectTimeout: an instance stopped during a
// failover gave up before the new primary was named, and kept 36 events
// in its journal until it started again, after its clients had gone:
// explore seed 12121, session_chain-f38021e2.) Close runs it once the
// replayer stopped, so it is the only writer. What it could not write is lost, or, with the
// outbox journal, kept there for the next layer started on it; the error
// says how many.
func (b *Bus) drain() error {
	if !b.redis {
		return nil
	}
	deadline := time.Now().Add(b.m.cfg.DrainTimeout)
	for b.Outbox().Pending > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		if rdb, _ := b.m.client(); rdb == nil {
			b.m.probe(context.Background(), left)
		}
		if !b.replayOnce() {
			time.Sleep(min(b.m.cfg.ProbeInterval, time.Until(deadline)))
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
