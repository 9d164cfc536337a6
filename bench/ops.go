package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/redis/go-redis/v9"
)

// Raw Redis baselines: one command, one round trip each.
const (
	OpPing = "ping"
	OpSet  = "set"
	OpGet  = "get"
	OpXAdd = "xadd"
	// OpXAddEvent stores what a publish must store, and nothing else: a
	// bench event's JSON as one field, to a stream per worker (a flow),
	// MAXLEN ~ 10000, the same bytes each call (encoded once). The
	// publish rows are compared with it too: xadd says what publishing
	// costs over the smallest XADD, xadd_event what the layer adds over
	// storing the event.
	OpXAddEvent = "xadd_event"
)

// Operations of the layer under test, named as the history kinds.
const (
	OpPublish         = "publish"
	OpHistory         = "history"
	OpRegRegister     = "reg_register"
	OpRegHeartbeat    = "reg_heartbeat"
	OpRegLookup       = "reg_lookup"
	OpCacheGet        = "cache_get"
	OpCacheSet        = "cache_set"
	OpCacheInvalidate = "cache_invalidate"
	// OpSSE publishes on one service instance and measures until each of
	// the SSE clients of another instance receives the event; its rows are
	// "sse" (publish → receive, per client) and "sse_publish".
	OpSSE = "sse"
	// OpSSEPublish is the publish half of OpSSE (HTTP POST to the service).
	OpSSEPublish = "sse_publish"
)

// RawOps are the raw baselines, LayerOps the layer's operations (run once
// per profile), in table order.
var (
	RawOps   = []string{OpPing, OpSet, OpGet, OpXAdd, OpXAddEvent}
	LayerOps = []string{OpPublish, OpHistory, OpRegRegister, OpRegHeartbeat, OpRegLookup,
		OpCacheGet, OpCacheSet, OpCacheInvalidate, OpSSE}
)

// baselineOf is the raw op each layer op is compared with: the command it
// is built on, else PING (one round trip, the floor).
var baselineOf = map[string]string{
	OpPublish: OpXAdd, OpCacheGet: OpGet, OpCacheSet: OpSet,
	OpHistory: OpPing, OpRegRegister: OpPing, OpRegHeartbeat: OpPing, OpRegLookup: OpPing,
	OpCacheInvalidate: OpPing, OpSSE: OpPing, OpSSEPublish: OpPing,
}

// storageOf is the raw op that stores what a layer op must store.
var storageOf = map[string]string{OpPublish: OpXAddEvent}

func isRaw(op string) bool { return contains(RawOps, op) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// StateBytes is the size of the cache state the cache ops write (TASK-011:
// 1 KB) and of the raw SET value.
const StateBytes = 1024

// cacheState is a flow state of about StateBytes bytes of JSON.
func cacheState() map[string]any {
	return map[string]any{"status": "testing", "data": map[string]any{"large": strings.Repeat("x", StateBytes-40)}}
}

// lookupConns is how many connections reg_lookup's flow has.
const lookupConns = 10

// historyEvents is how many events history's flow holds; history reads
// half of them.
const historyEvents = 100

// rawOp builds a raw baseline. Keys carry prefix. The returned op tags its
// traffic with the op name.
func rawOp(ctx context.Context, name string, rdb redis.UniversalClient, prefix string, workers int) (Op, error) {
	key := func(w int) string { return prefix + "bench:raw:" + strconv.Itoa(w) }
	value := strings.Repeat("v", StateBytes)
	var do func(ctx context.Context, c Call) error
	switch name {
	case OpPing:
		do = func(ctx context.Context, c Call) error { return rdb.Ping(ctx).Err() }
	case OpSet:
		do = func(ctx context.Context, c Call) error { return rdb.Set(ctx, key(c.Worker), value, 0).Err() }
	case OpGet:
		sctx := counter.WithOp(ctx, "setup")
		for w := 0; w < workers; w++ {
			if err := rdb.Set(sctx, key(w), value, 0).Err(); err != nil {
				return Op{}, fmt.Errorf("get setup: %w", err)
			}
		}
		do = func(ctx context.Context, c Call) error { return rdb.Get(ctx, key(c.Worker)).Err() }
	case OpXAdd:
		// XADD <stream> * k v: the command redis-benchmark is given.
		stream := prefix + "bench:raw:stream"
		args := &redis.XAddArgs{Stream: stream, Values: []string{"k", "v"}}
		do = func(ctx context.Context, c Call) error { return rdb.XAdd(ctx, args).Err() }
	case OpXAddEvent:
		adds := make([]*redis.XAddArgs, workers)
		for w := range adds {
			js, err := json.Marshal(benchEvent(prefix+"raw", "raw-flow-"+strconv.Itoa(w), Call{Worker: w}))
			if err != nil {
				return Op{}, fmt.Errorf("xadd_event setup: %w", err)
			}
			adds[w] = &redis.XAddArgs{Stream: prefix + "bench:raw:events:" + strconv.Itoa(w), MaxLen: 10000, Approx: true,
				Values: []any{"event", js}}
		}
		do = func(ctx context.Context, c Call) error { return rdb.XAdd(ctx, adds[c.Worker]).Err() }
	default:
		return Op{}, fmt.Errorf("unknown raw op %q", name)
	}
	return Op{Name: name, Do: func(ctx context.Context, c Call) error {
		return do(counter.WithOp(ctx, name), c)
	}}, nil
}

// layerOp builds an operation of the layer l. Setup traffic (events,
// connections, cache entries the op needs) is tagged "setup". run makes
// IDs unique across runs on a shared server.
//
// k sizes the op: the flows publishes spread over, the members of the
// looked-up flow, the size of the published events.
func layerOp(ctx context.Context, name string, l *impl.Layer, run string, workers int, k knobs) (Op, error) {
	sctx := counter.WithOp(ctx, "setup")
	flow := func(w int) string { return run + "-flow-" + strconv.Itoa(w) }
	state := cacheState()
	var do func(ctx context.Context, c Call) error
	switch name {
	case OpPublish:
		pad := padding(k.eventBytes)
		pubFlow := func(c Call) string { return flow(c.Worker) }
		if k.flows > 0 {
			pubFlow = func(c Call) string { return flow(flowIndex(c, workers, k.flows)) }
		}
		do = func(ctx context.Context, c Call) error {
			return l.Bus.Publish(ctx, paddedEvent(run, pubFlow(c), c, pad))
		}
	case OpHistory:
		f := run + "-history"
		for i := 0; i < historyEvents; i++ {
			if err := l.Bus.Publish(sctx, benchEvent(run, f, Call{Seq: int64(i), Warmup: true})); err != nil {
				return Op{}, fmt.Errorf("history setup: %w", err)
			}
		}
		do = func(ctx context.Context, c Call) error {
			evs, err := l.Bus.History(ctx, f, historyEvents/2, time.Time{})
			if err == nil && len(evs) != historyEvents/2 {
				err = fmt.Errorf("history returned %d events; want %d", len(evs), historyEvents/2)
			}
			return err
		}
	case OpRegRegister:
		do = func(ctx context.Context, c Call) error {
			return l.Registry.Register(ctx, impl.Conn{ID: connID(run, c), FlowID: flow(c.Worker), UserID: "bench"})
		}
	case OpRegHeartbeat:
		for w := 0; w < workers; w++ {
			if err := l.Registry.Register(sctx, impl.Conn{ID: run + "-hb-" + strconv.Itoa(w), FlowID: flow(w), UserID: "bench"}); err != nil {
				return Op{}, fmt.Errorf("heartbeat setup: %w", err)
			}
		}
		do = func(ctx context.Context, c Call) error {
			return l.Registry.Heartbeat(ctx, run+"-hb-"+strconv.Itoa(c.Worker))
		}
	case OpRegLookup:
		f := run + "-lookup"
		members := k.members
		for i := 0; i < members; i++ {
			if err := l.Registry.Register(sctx, impl.Conn{ID: run + "-lk-" + strconv.Itoa(i), FlowID: f, UserID: "bench"}); err != nil {
				return Op{}, fmt.Errorf("lookup setup: %w", err)
			}
		}
		do = func(ctx context.Context, c Call) error {
			ids, err := l.Registry.Lookup(ctx, f)
			if err == nil && len(ids) != members {
				err = fmt.Errorf("lookup found %d connections; want %d", len(ids), members)
			}
			return err
		}
	case OpCacheGet:
		for w := 0; w < workers; w++ {
			if err := l.Cache.Set(sctx, flow(w), state, "active", ""); err != nil {
				return Op{}, fmt.Errorf("cache_get setup: %w", err)
			}
		}
		do = func(ctx context.Context, c Call) error {
			e, err := l.Cache.Get(ctx, flow(c.Worker))
			if err == nil && !e.Hit {
				err = errors.New("cache miss on a cached flow")
			}
			return err
		}
	case OpCacheSet:
		do = func(ctx context.Context, c Call) error {
			return l.Cache.Set(ctx, flow(c.Worker), state, "active", "")
		}
	case OpCacheInvalidate:
		do = func(ctx context.Context, c Call) error { return l.Cache.Invalidate(ctx, flow(c.Worker)) }
	default:
		return Op{}, fmt.Errorf("unknown op %q", name)
	}
	return Op{Name: name, Do: func(ctx context.Context, c Call) error {
		return do(counter.WithOp(ctx, name), c)
	}}, nil
}

// flowIndex spreads calls over flows round robin: worker w's i-th call is
// call i*workers+w of the run.
func flowIndex(c Call, workers, flows int) int {
	return int((c.Seq*int64(workers) + int64(c.Worker)) % int64(flows))
}

func connID(run string, c Call) string {
	return run + "-c-" + strconv.Itoa(c.Worker) + "-" + strconv.FormatInt(c.Seq, 10) + warmSuffix(c)
}

func warmSuffix(c Call) string {
	if c.Warmup {
		return "w"
	}
	return ""
}

// benchPayload is what a bench event carries: its send time, so a receiver
// in the same process measures publish → receive, and whether it belongs
// to the measured phase.
type benchPayload struct {
	Sent     int64 `json:"sent"`
	Measured bool  `json:"measured"`
	Worker   int   `json:"worker"`
	Seq      int64 `json:"seq"`
}

func benchEvent(run, flow string, c Call) impl.Event { return paddedEvent(run, flow, c, "") }

// eventBase is about the size of a bench event's payload without padding.
const eventBase = 80

// padding is the filler that makes a bench event's payload about size
// bytes ("" for 0 or a size below the payload's own).
func padding(size int) string {
	if size <= eventBase {
		return ""
	}
	return strings.Repeat("x", size-eventBase)
}

// paddedEvent is a bench event whose payload carries pad (a run of x) as
// its "pad" field.
func paddedEvent(run, flow string, c Call, pad string) impl.Event {
	now := time.Now()
	// Built by hand, not json.Marshal: this is the harness's cost per
	// publish, and it is counted against the layer's throughput.
	p := make([]byte, 0, 96+len(pad))
	p = strconv.AppendInt(append(p, `{"sent":`...), now.UnixNano(), 10)
	p = strconv.AppendBool(append(p, `,"measured":`...), !c.Warmup)
	p = strconv.AppendInt(append(p, `,"worker":`...), int64(c.Worker), 10)
	p = strconv.AppendInt(append(p, `,"seq":`...), c.Seq, 10)
	if pad != "" {
		p = append(append(append(p, `,"pad":"`...), pad...), '"')
	}
	p = append(p, '}')
	return impl.Event{
		ID:        run + "-e-" + strconv.Itoa(c.Worker) + "-" + strconv.FormatInt(c.Seq, 10) + warmSuffix(c),
		FlowID:    flow,
		Type:      "BENCH",
		Payload:   p,
		Timestamp: now.UTC(),
		Source:    "bench",
	}
}
