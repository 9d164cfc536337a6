package seed

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/redis/go-redis/v9"
)

// subBuffer is the channel buffer of one subscriber.
const subBuffer = 256

// bus is RedisFlowEventBus (TASK-005) with a local fan-out for subscribers
// in memory mode.
type bus struct {
	m *manager

	mu     sync.Mutex
	memory map[string][]impl.Event // flow -> events, oldest first
	seq    int64                   // memory cursor
	subs   map[string]map[chan impl.Event]struct{}
}

func newBus(m *manager) *bus {
	return &bus{m: m, memory: map[string][]impl.Event{}, subs: map[string]map[chan impl.Event]struct{}{}}
}

var _ impl.Streams = (*bus)(nil)

// StreamKey is the flow's stream (the tracker's flow:events:<id>); each
// entry carries the event ID in its field "id".
func (b *bus) StreamKey(flowID string) string { return b.m.key(streamPrefix, flowID) }

// Publish is publish(): XADD, EXPIRE, PUBLISH, or memory on any error.
func (b *bus) Publish(ctx context.Context, e impl.Event) error {
	if e.Timestamp.IsZero() {
		e.Timestamp = time.Now().UTC()
	}
	rdb := b.m.redis(b.m.cfg.EventBus)
	if rdb == nil {
		b.publishMemory(e)
		return nil
	}
	if err := b.publishRedis(counter.WithOp(ctx, "publish"), rdb, e); err != nil {
		// flaw (guarantee 2): acknowledged from memory, never replayed to Redis, so lost from history after recovery.
		b.publishMemory(e)
	}
	return nil
}

func (b *bus) publishRedis(ctx context.Context, rdb redis.UniversalClient, e impl.Event) error {
	key := b.m.key(streamPrefix, e.FlowID)
	payload := string(e.Payload)
	if payload == "" {
		payload = "{}"
	}
	source := e.Source
	if source == "" {
		source = "system"
	}
	// flaw (guarantee 9): three sequential round trips (XADD, EXPIRE, PUBLISH) per publish.
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: key,
		MaxLen: b.m.cfg.StreamMaxLen,
		Approx: true,
		Values: []any{
			"event_type", e.Type,
			"payload", payload,
			"timestamp", e.Timestamp.UTC().Format(time.RFC3339Nano),
			"source", source,
			"correlation_id", e.CorrelationID,
			"id", e.ID,
		},
	}).Result()
	if err != nil {
		return fmt.Errorf("seed: xadd: %w", err)
	}
	// flaw (guarantee 9): the 24 h TTL is re-sent with every event (a billed command).
	if err := rdb.Expire(ctx, key, b.m.cfg.StreamTTL).Err(); err != nil {
		return fmt.Errorf("seed: expire: %w", err)
	}
	e.Cursor = id
	msg, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("seed: encode event: %w", err)
	}
	if err := rdb.Publish(ctx, b.m.key(channelPrefix, e.FlowID), msg).Err(); err != nil {
		return fmt.Errorf("seed: publish: %w", err)
	}
	return nil
}

// publishMemory is _publish_to_memory, plus delivery to local subscribers.
func (b *bus) publishMemory(e impl.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e.Cursor = "m-" + strconv.FormatInt(b.seq, 10)
	evs := append(b.memory[e.FlowID], e)
	if n := b.m.cfg.MemoryEvents; len(evs) > n {
		// flaw (guarantee 2): events past the memory cap are dropped silently, not counted.
		evs = append([]impl.Event(nil), evs[len(evs)-n:]...)
	}
	b.memory[e.FlowID] = evs
	for ch := range b.subs[e.FlowID] {
		select {
		case ch <- e:
		default: // flaw (guarantee 4): a slow local subscriber misses events.
		}
	}
}

// History is get_events(): XREVRANGE COUNT with a start-time cut, or memory
// on any error. Events come back oldest first.
func (b *bus) History(ctx context.Context, flowID string, count int, since time.Time) ([]impl.Event, error) {
	if count <= 0 {
		count = 100
	}
	rdb := b.m.redis(b.m.cfg.EventBus)
	if rdb == nil {
		return b.historyMemory(flowID, count, since), nil
	}
	msgs, err := rdb.XRevRangeN(counter.WithOp(ctx, "history"), b.m.key(streamPrefix, flowID), "+", "-", int64(count)).Result()
	if err != nil {
		// flaw (guarantee 2): a failed read answers from this instance's memory, silently partial.
		return b.historyMemory(flowID, count, since), nil
	}
	out := make([]impl.Event, 0, len(msgs))
	for _, msg := range msgs {
		e, err := decodeStream(flowID, msg)
		if err != nil {
			continue // the tracker logs and skips unparsable entries
		}
		if !since.IsZero() && e.Timestamp.Before(since) {
			break
		}
		out = append(out, e)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

func decodeStream(flowID string, msg redis.XMessage) (impl.Event, error) {
	str := func(k string) string { s, _ := msg.Values[k].(string); return s }
	ts, err := time.Parse(time.RFC3339Nano, str("timestamp"))
	if err != nil {
		return impl.Event{}, fmt.Errorf("seed: event %s timestamp: %w", msg.ID, err)
	}
	payload := json.RawMessage(str("payload"))
	if !json.Valid(payload) {
		return impl.Event{}, fmt.Errorf("seed: event %s payload is not JSON", msg.ID)
	}
	return impl.Event{
		ID:            str("id"),
		FlowID:        flowID,
		Type:          str("event_type"),
		Payload:       payload,
		Timestamp:     ts,
		Source:        str("source"),
		CorrelationID: str("correlation_id"),
		Cursor:        msg.ID,
	}, nil
}

func (b *bus) historyMemory(flowID string, count int, since time.Time) []impl.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []impl.Event
	for _, e := range b.memory[flowID] {
		if since.IsZero() || !e.Timestamp.Before(since) {
			out = append(out, e)
		}
	}
	if len(out) > count {
		out = out[len(out)-count:]
	}
	return append([]impl.Event{}, out...)
}

// Subscribe listens on the flow's Pub/Sub channel when Redis is available,
// else on the local fan-out.
func (b *bus) Subscribe(ctx context.Context, flowID, after string) (<-chan impl.Event, error) {
	// flaw (guarantee 4): after is ignored, so a resuming client gets no catch-up from the stream.
	_ = after
	rdb := b.m.redis(b.m.cfg.EventBus)
	if rdb == nil {
		return b.subscribeLocal(ctx, flowID), nil
	}
	ctx = counter.WithOp(ctx, "subscribe")
	ps := rdb.Subscribe(ctx, b.m.key(channelPrefix, flowID))
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, fmt.Errorf("seed: subscribe %s: %w", flowID, err)
	}
	// flaw (guarantee 4): while Redis is down, events that fall back to memory never reach these subscribers.
	out := make(chan impl.Event, subBuffer)
	msgs := ps.Channel()
	b.m.wg.Add(1)
	go func() {
		defer b.m.wg.Done()
		defer close(out)
		defer ps.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case <-b.m.stop:
				return
			case msg, ok := <-msgs:
				if !ok {
					return
				}
				var e impl.Event
				if json.Unmarshal([]byte(msg.Payload), &e) != nil {
					continue
				}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				case <-b.m.stop:
					return
				}
			}
		}
	}()
	return out, nil
}

func (b *bus) subscribeLocal(ctx context.Context, flowID string) <-chan impl.Event {
	ch := make(chan impl.Event, subBuffer)
	b.mu.Lock()
	if b.subs[flowID] == nil {
		b.subs[flowID] = map[chan impl.Event]struct{}{}
	}
	b.subs[flowID][ch] = struct{}{}
	b.mu.Unlock()
	b.m.wg.Add(1)
	go func() {
		defer b.m.wg.Done()
		select {
		case <-ctx.Done():
		case <-b.m.stop:
		}
		b.mu.Lock()
		delete(b.subs[flowID], ch)
		if len(b.subs[flowID]) == 0 {
			delete(b.subs, flowID)
		}
		b.mu.Unlock()
		close(ch)
	}()
	return ch
}
