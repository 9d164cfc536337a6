package hardened

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/target"
)

// BenchmarkReplayAttempted replays an outbox of 300 events of one flow
// whose earlier attempts may have reached Redis (each is looked up in the
// stream) onto a stream of 700 entries. Before the replay read the stream
// once per flow and batch, a read per event took 435 ms per 300 events.
func BenchmarkReplayAttempted(b *testing.B) {
	p := conformance.StartRedis(b, target.ProcessOptions{})
	ctx := context.Background()
	b.StopTimer()
	for n := range b.N {
		cfg := conformance.Config(p, "A")
		cfg.ProbeInterval = time.Hour
		l, err := New(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		bus := l.Bus.(*Bus)
		for i := range 700 {
			if err := bus.Publish(ctx, conformance.Event("f", fmt.Sprintf("s%d", i), i, time.Now().UTC())); err != nil {
				b.Fatal(err)
			}
		}
		bus.mu.Lock()
		for i := range 300 {
			bus.queue(pending{memEvent: memEvent{e: conformance.Event("f", fmt.Sprintf("m%d-%d", n, i), i, time.Now().UTC())}, attempted: time.Now().UnixMilli()})
		}
		bus.mu.Unlock()
		b.StartTimer()
		bus.kick()
		for bus.Outbox().Pending > 0 {
			time.Sleep(100 * time.Microsecond)
		}
		b.StopTimer()
		l.Close()
	}
}
