package hardened

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/target"
)

// BenchmarkPublishJournal measures what the outbox journal costs a publish
// against a real redis-server: in redis mode (the journal is not touched)
// and in memory mode (Redis stopped: every publish waits for its line's
// fsync), journal off and on, one publisher and 32 concurrent ones (which
// share syncs). The journal lives in the test's temporary directory: the
// cost is that file system's fsync.
//
//	go test -run '^$' -bench PublishJournal -benchtime 2000x ./impl/hardened/
func BenchmarkPublishJournal(b *testing.B) {
	p := conformance.StartRedis(b, target.ProcessOptions{})
	for _, mode := range []string{"redis", "memory"} {
		if mode == "memory" {
			if err := p.Stop(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		for _, on := range []bool{false, true} {
			for _, par := range []bool{false, true} {
				name := fmt.Sprintf("%s/journal=%v/parallel=%v", mode, on, par)
				b.Run(name, func(b *testing.B) { benchPublish(b, p, mode, on, par) })
			}
		}
	}
}

func benchPublish(b *testing.B, p *target.Process, mode string, journalOn, parallel bool) {
	cfg := conformance.Config(p, "bench")
	cfg.PublishBudget, cfg.ConnectTimeout = 10*time.Second, 200*time.Millisecond
	if journalOn {
		cfg.JournalDir = b.TempDir()
	}
	l, err := New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if got := l.Manager.Mode(); got != mode {
		b.Fatalf("mode: got %s; want %s", got, mode)
	}
	bus := l.Bus.(*Bus)
	ctx := context.Background()
	var n atomic.Int64
	publish := func() {
		i := n.Add(1)
		e := conformance.Event("f", fmt.Sprintf("e%d", i), int(i), time.Now().UTC())
		if err := bus.Publish(ctx, e); err != nil {
			b.Error(err)
		}
		if i%10000 == 0 {
			// Keep the outbox (which nothing replays here) from growing
			// with b.N.
			bus.mu.Lock()
			bus.outbox, bus.pending = nil, map[string]int{}
			bus.queued.Store(0)
			bus.mu.Unlock()
		}
	}
	b.ResetTimer()
	if parallel {
		b.SetParallelism(16) // 32 publishers on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				publish()
			}
		})
		return
	}
	for range b.N {
		publish()
	}
}
