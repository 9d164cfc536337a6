package bench

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/target"
	"github.com/redis/go-redis/v9"
)

// startRedis spawns a redis-server for the test.
func startRedis(t *testing.T) *target.Process {
	t.Helper()
	p, err := target.StartProcess(context.Background(), target.ProcessOptions{})
	if err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// client returns a counted client of p, optionally guarded.
func client(t *testing.T, p *target.Process, hooks ...redis.Hook) *redis.Client {
	t.Helper()
	rdb, err := impl.NewClient(impl.Config{URL: p.URL(), Hooks: hooks, PoolSize: 10}, func(o *redis.Options) { o.MaxRetries = -1 })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestClosedLoopCountsEveryOpOnce(t *testing.T) {
	p := startRedis(t)
	hook := counter.New()
	rdb := client(t, p, hook)
	op, err := rawOp(context.Background(), OpPing, rdb, "", 4)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Drive(context.Background(), op, Load{Workers: 4, Ops: 500, WarmupOps: 100, Interval: 20 * time.Millisecond}, hook, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Ops != 500 || st.Errors != 0 {
		t.Errorf("ops %d errors %d; want 500, 0", st.Ops, st.Errors)
	}
	if got := st.Latency[OpPing].Count; got != 500 {
		t.Errorf("latency samples %d; want 500 (warm-up excluded)", got)
	}
	// The warm-up's 100 pings are outside the measured counts.
	if c := st.Counts[OpPing]; c.Commands != 500 || c.RoundTrips != 500 {
		t.Errorf("measured ping traffic %+v; want 500 commands in 500 round trips", c)
	}
	if all := hook.Snapshot()[OpPing].Commands; all != 600 {
		t.Errorf("all ping commands %d; want 600 (100 warm-up + 500)", all)
	}
	if st.Model != "closed" || st.Workers != 4 {
		t.Errorf("model %s workers %d; want closed 4", st.Model, st.Workers)
	}
	var sum int64
	for _, w := range st.Timeline {
		sum += w.Ops
	}
	if sum != 500 {
		t.Errorf("timeline ops sum %d; want 500", sum)
	}
	lat := st.Latency[OpPing]
	if !(lat.P50 <= lat.P90 && lat.P90 <= lat.P99 && lat.P99 <= lat.P999 && lat.P999 <= lat.Max) || lat.P50 <= 0 {
		t.Errorf("percentiles not ordered or empty: %+v", lat)
	}
}

func TestOpenLoopUnderCapacityRunsEveryOffer(t *testing.T) {
	p := startRedis(t)
	rdb := client(t, p)
	op, _ := rawOp(context.Background(), OpPing, rdb, "", 8)
	st, err := Drive(context.Background(), op, Load{Workers: 8, Rate: 500, Duration: time.Second, MaxMissed: -1, Interval: 100 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Offered != 500 {
		t.Errorf("offered %d; want 500 (1s at 500/s)", st.Offered)
	}
	if st.Ops+st.Dropped != st.Offered {
		t.Errorf("ops %d + dropped %d != offered %d", st.Ops, st.Dropped, st.Offered)
	}
	if st.OfferedRate != 500 || st.Model != "open" {
		t.Errorf("offered rate %g model %s; want 500 open", st.OfferedRate, st.Model)
	}
}

// The last call of a slow open loop, handed straight to an idle worker,
// runs: it was once counted dropped (the end of the phase raced the
// worker's start), 1 of 20 calls at 2/s, which made every slow SSE step
// inconclusive.
func TestOpenLoopRunsItsLastCall(t *testing.T) {
	noop := Op{Name: "noop", Do: func(context.Context, Call) error { return nil }}
	st, err := Drive(context.Background(), noop, Load{Workers: 2, Rate: 40, Ops: 8}, nil, nil)
	if err != nil || st.Dropped != 0 || st.Ops != 8 {
		t.Errorf("ops %d, dropped %d, err %v; want 8 ops, none dropped", st.Ops, st.Dropped, err)
	}
}

// sleeper is an op with a fixed service time: capacity 1/d per worker.
func sleeper(d time.Duration) Op {
	return Op{Name: "sleep", Do: func(ctx context.Context, c Call) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
}

func TestOpenLoopAboveCapacityShowsQueueing(t *testing.T) {
	// One worker serving in 2ms has a capacity of at most 500/s; 2000/s is
	// at least 4× over it. With a queue that never fills, every call waits
	// behind the earlier ones, so latency grows through the run.
	l := Load{Workers: 1, Rate: 2000, Duration: time.Second, Queue: 100000, Interval: 100 * time.Millisecond}
	st, err := Drive(context.Background(), sleeper(2*time.Millisecond), l, nil, nil)
	if !errors.Is(err, ErrMissedRate) {
		t.Fatalf("err = %v; want ErrMissedRate", err)
	}
	if st.Late == 0 {
		t.Errorf("late = 0; want calls starting late")
	}
	if st.Ops+st.Dropped != st.Offered || st.Offered != 2000 {
		t.Errorf("ops %d + dropped %d vs offered %d; want sum = offered = 2000", st.Ops, st.Dropped, st.Offered)
	}
	if st.AchievedRate >= st.OfferedRate {
		t.Errorf("achieved %.0f/s >= offered %.0f/s above capacity", st.AchievedRate, st.OfferedRate)
	}
	tl := st.Timeline
	if len(tl) < 4 {
		t.Fatalf("timeline has %d windows; want >= 4", len(tl))
	}
	half := len(tl) / 2
	var first, second time.Duration
	for i, w := range tl {
		if i < half {
			first += w.P50
		} else {
			second += w.P50
		}
	}
	first /= time.Duration(half)
	second /= time.Duration(len(tl) - half)
	if second <= 2*first {
		t.Errorf("mean window p50: first half %s, second half %s; want queueing latency to grow", first, second)
	}
	if last := tl[len(tl)-1].P50; last <= tl[0].P50 {
		t.Errorf("last window p50 %s <= first %s; want growth", last, tl[0].P50)
	}
	// Latency is measured from the intended start: far above the 2ms
	// service time.
	if st.Latency["sleep"].Max < 100*time.Millisecond {
		t.Errorf("max latency %s; want queueing (≥ 100ms) included", st.Latency["sleep"].Max)
	}
}

func TestOpenLoopDropsAtQueueBound(t *testing.T) {
	l := Load{Workers: 1, Rate: 2000, Duration: 500 * time.Millisecond, Queue: 20, Interval: 100 * time.Millisecond}
	st, err := Drive(context.Background(), sleeper(2*time.Millisecond), l, nil, nil)
	if !errors.Is(err, ErrMissedRate) {
		t.Fatalf("err = %v; want ErrMissedRate", err)
	}
	if st.Dropped == 0 {
		t.Errorf("dropped = 0; want calls dropped at the queue bound")
	}
	if st.Ops+st.Dropped != st.Offered {
		t.Errorf("ops %d + dropped %d != offered %d", st.Ops, st.Dropped, st.Offered)
	}
}

func TestDriveStopsPromptlyOnCancel(t *testing.T) {
	for _, l := range []Load{
		{Workers: 4, Duration: time.Hour},
		{Workers: 4, Rate: 1000, Duration: time.Hour},
		{Workers: 4, Duration: time.Hour, Warmup: time.Hour},
	} {
		t.Run(l.Model(), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var calls atomic.Int64
			op := Op{Name: "block", Do: func(ctx context.Context, c Call) error {
				calls.Add(1)
				<-ctx.Done()
				return ctx.Err()
			}}
			go func() {
				for calls.Load() == 0 {
					time.Sleep(time.Millisecond)
				}
				cancel()
			}()
			done := make(chan error, 1)
			go func() { _, err := Drive(ctx, op, l, nil, nil); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("err = %v; want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Drive did not return within 10s of cancellation")
			}
		})
	}
}

func TestLoadValidate(t *testing.T) {
	cases := []struct {
		name string
		l    Load
		ok   bool
	}{
		{"closed default", Load{}, true},
		{"open", Load{Rate: 10}, true},
		{"negative rate", Load{Rate: -1}, false},
		{"negative duration", Load{Duration: -time.Second}, false},
		{"negative warm-up", Load{Warmup: -time.Second}, false},
		{"negative ops", Load{Ops: -1}, false},
		{"negative workers", Load{Workers: -1}, false},
	}
	for _, c := range cases {
		if err := c.l.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: Validate() = %v; want ok=%v", c.name, err, c.ok)
		}
	}
}

// startRedisB spawns a redis-server for a benchmark and returns its URL.
func startRedisB(b *testing.B) string {
	b.Helper()
	p, err := target.StartProcess(context.Background(), target.ProcessOptions{})
	if err != nil {
		b.Fatalf("start redis-server: %v", err)
	}
	b.Cleanup(func() { p.Close() })
	return p.URL()
}

// benchEvent's hand-built payload is the JSON of a benchPayload.
func TestBenchEventPayload(t *testing.T) {
	e := benchEvent("r", "f", Call{Worker: 3, Seq: 42})
	var p benchPayload
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		t.Fatalf("payload %s: %v", e.Payload, err)
	}
	if p.Sent != e.Timestamp.UnixNano() || !p.Measured || p.Worker != 3 || p.Seq != 42 {
		t.Fatalf("payload %s decodes to %+v; want sent %d, measured, worker 3, seq 42", e.Payload, p, e.Timestamp.UnixNano())
	}
	if w := benchEvent("r", "f", Call{Warmup: true}); json.Unmarshal(w.Payload, &p) != nil || p.Measured {
		t.Fatalf("warm-up payload %s: want measured false", w.Payload)
	}
}

// xadd_event writes each worker's event JSON to that worker's stream, one
// XADD per call.
func TestXAddEventOp(t *testing.T) {
	p := startRedis(t)
	hook := counter.New()
	rdb := client(t, p, hook)
	ctx := context.Background()
	op, err := rawOp(ctx, OpXAddEvent, rdb, "t:", 3)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Drive(ctx, op, Load{Workers: 3, Ops: 300}, hook, nil)
	if err != nil || st.Errors != 0 {
		t.Fatalf("drive: %v, %d errors (%s)", err, st.Errors, st.FirstErr)
	}
	var total int64
	for w := range 3 {
		xs, err := rdb.XRange(ctx, "t:bench:raw:events:"+strconv.Itoa(w), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		total += int64(len(xs))
		var e impl.Event
		if len(xs) == 0 || json.Unmarshal([]byte(xs[0].Values["event"].(string)), &e) != nil || e.FlowID != "raw-flow-"+strconv.Itoa(w) {
			t.Fatalf("worker %d stream: %d entries, first %v; want the worker's event JSON", w, len(xs), xs)
		}
	}
	if c := st.Counts[OpXAddEvent]; total != 300 || c.Commands != 300 || c.RoundTrips != 300 {
		t.Errorf("%d entries, %d commands in %d round trips; want 300 of each", total, c.Commands, c.RoundTrips)
	}
}
