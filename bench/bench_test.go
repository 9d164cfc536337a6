package bench

import (
	"context"
	"strconv"
	"testing"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/counter"
	"github.com/redis/go-redis/v9"
)

// The hot paths as go test benchmarks, one op per b.N iteration, so
// benchstat can compare commits:
//
//	go test -run '^$' -bench . -count 10 ./bench/ > new.txt; benchstat old.txt new.txt
//
// Each reports round trips and commands per op from the counting hook.

func benchOp(b *testing.B, op Op, hook *counter.Hook) {
	b.Helper()
	ctx := context.Background()
	for i := 0; i < 100; i++ { // warm the pool
		if err := op.Do(ctx, Call{Seq: int64(i), Warmup: true}); err != nil {
			b.Fatal(err)
		}
	}
	before := hook.Snapshot()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var seq int64
		for pb.Next() {
			if err := op.Do(ctx, Call{Seq: seq}); err != nil {
				b.Error(err)
				return
			}
			seq++
		}
	})
	b.StopTimer()
	var rt, cmds int64
	for k, c := range diffCounts(hook.Snapshot(), before) {
		if k != counter.ConnInit {
			rt, cmds = rt+c.RoundTrips, cmds+c.Commands
		}
	}
	b.ReportMetric(float64(rt)/float64(b.N), "rtt/op")
	b.ReportMetric(float64(cmds)/float64(b.N), "cmds/op")
}

func BenchmarkRawXAdd(b *testing.B) {
	p := startRedisB(b)
	hook := counter.New()
	rdb, err := impl.NewClient(impl.Config{URL: p, Hooks: []redis.Hook{hook}}, func(o *redis.Options) { o.MaxRetries = -1 })
	if err != nil {
		b.Fatal(err)
	}
	defer rdb.Close()
	op, err := rawOp(context.Background(), OpXAdd, rdb, "", 1)
	if err != nil {
		b.Fatal(err)
	}
	benchOp(b, op, hook)
}

func BenchmarkPublish(b *testing.B) {
	for _, prof := range profiles.Default().Names() {
		b.Run(prof, func(b *testing.B) { benchLayerOp(b, prof, OpPublish) })
	}
}

func BenchmarkCacheGet(b *testing.B) {
	for _, prof := range profiles.Default().Names() {
		b.Run(prof, func(b *testing.B) { benchLayerOp(b, prof, OpCacheGet) })
	}
}

func benchLayerOp(b *testing.B, profile, name string) {
	url := startRedisB(b)
	hook := counter.New()
	ctx := context.Background()
	l, err := profiles.Default().New(ctx, profile, impl.Config{URL: url, Enabled: true, EventBus: true, Cache: true, SSE: true,
		Hooks: []redis.Hook{hook}})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	// Every parallel goroutine uses worker 0's flow: one flow, like the
	// per-flow hot path.
	op, err := layerOp(ctx, name, l, "bench"+strconv.Itoa(b.N), 1, knobs{members: lookupConns})
	if err != nil {
		b.Fatal(err)
	}
	benchOp(b, op, hook)
	if m := l.Manager.Mode(); m != "redis" {
		b.Fatalf("layer mode %s after the benchmark; want redis", m)
	}
}
