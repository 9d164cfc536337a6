package scenarios

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/redact"
)

// serverReader reads flows' streams straight from Redis with a client of
// the harness's own, so the lost, duplicated and reordered checks judge
// what Redis holds rather than what the layer answers (a layer could
// answer from memory). It needs a layer that names its streams
// (impl.Streams) and the event bus on Redis; otherwise the final reads go
// through the layer, and the lost check says so.
type serverReader struct {
	rdb     redis.UniversalClient
	streams impl.Streams
	secrets []string // the target's, masked in errors
	// skew is Redis's clock less this process's, and its uncertainty,
	// measured once (clocked is set then): the final reads repeat until a
	// flow is complete, one TIME per run is enough.
	skew, half time.Duration
	clocked    bool
}

// newServerReader connects to the target directly (not through the proxy:
// faults are over, and the read must not depend on the layer's path). It
// returns nil when the run cannot read the streams itself.
func (r *run) newServerReader() *serverReader {
	if r.target == nil || len(r.layers) == 0 || !r.cfg.Enabled || !r.cfg.EventBus {
		return nil
	}
	st, ok := r.layers[0].Bus.(impl.Streams)
	if !ok {
		return nil
	}
	rdb, err := impl.NewUniversalClient(impl.Config{URL: r.target.URL(), TLS: r.target.TLS(), PoolSize: 1, ClientName: "gonogo-harness"},
		func(o *redis.Options) { o.MaxRetries = -1 })
	if err != nil {
		r.notes.add("final reads through the layer: %s", err)
		return nil
	}
	return &serverReader{rdb: rdb, streams: st, secrets: redact.Secrets(r.target.URL())}
}

func (s *serverReader) Close() { s.rdb.Close() }

// read records the flow's stream as Redis holds it: its newest n entries,
// in stream order, each entry's event ID (field "id", or field "event"
// holding the event's JSON; an entry with neither shows as "?<entry id>").
func (s *serverReader) read(ctx context.Context, r *run, flow string, n int) (history.Op, []string) {
	op := history.Op{Client: "harness", Kind: history.ServerRead, Flow: flow, Call: r.rec.Now()}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	msgs, err := s.rdb.XRevRangeN(cctx, s.streams.StreamKey(flow), "+", "-", int64(n)).Result()
	cancel()
	op.Return = r.rec.Now()
	op.OK = err == nil
	if err != nil {
		op.Err = redact.Text(err.Error(), s.secrets...)
	}
	slices.Reverse(msgs)
	for _, m := range msgs {
		op.Values = append(op.Values, entryEventID(m))
	}
	if err == nil {
		op.Stored = s.stored(ctx, r, msgs)
	}
	return op, op.Values
}

// stored maps the entries' IDs (Redis's clock, ms) to the earliest time on
// the run's clock each can have been stored at, with Redis's clock offset
// measured by TIME; nil when it cannot be measured.
func (s *serverReader) stored(ctx context.Context, r *run, msgs []redis.XMessage) []time.Duration {
	if !s.clocked {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		t0 := time.Now()
		now, err := s.rdb.Time(cctx).Result()
		t1 := time.Now()
		cancel()
		if err != nil {
			return nil
		}
		s.half = t1.Sub(t0) / 2
		s.skew, s.clocked = now.Sub(t0.Add(s.half)), true
	}
	offset, half := s.skew, s.half
	out := make([]time.Duration, 0, len(msgs))
	for _, m := range msgs {
		ms, _, _ := strings.Cut(m.ID, "-")
		v, err := strconv.ParseInt(ms, 10, 64)
		if err != nil {
			return nil
		}
		out = append(out, r.rec.Since(time.UnixMilli(v).Add(-offset-half)))
	}
	return out
}

// watchEvery is how often watch reads the entries new in each flow's
// stream.
const watchEvery = 100 * time.Millisecond

// watch records, every watchEvery until ctx ends, the entries new in each
// flow's stream since its last look (history.StreamSeen), when some fault
// of the run wipes Redis: the final read cannot see what a wipe took, and
// so cannot tell an event the layer acknowledged before Redis stored it
// (from memory, whatever the instance's mode said) from one Redis stored
// first (explore seed 11111, reordered-cf57635a: events an instance had
// acknowledged from its outbox while a reset's fences ran out, replayed,
// then wiped, were judged as acknowledged from Redis). A look that fails
// (the fault's own outage) is tried again at the next tick.
func (r *run) watch(ctx context.Context) {
	wipes := false
	for _, st := range r.spec.Faults {
		wipes = wipes || st.Wipes
	}
	if !wipes {
		return
	}
	s := r.newServerReader()
	if s == nil {
		return
	}
	defer s.Close()
	last := map[string]string{}
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		for _, flow := range r.flows() {
			if id, ok := s.seen(ctx, r, flow, last[flow]); ok {
				last[flow] = id
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// seen records the entries of flow's stream after entry ID after ("" from
// the start), at most a page; it returns the last one's ID, ok false when
// there was none or the look failed.
func (s *serverReader) seen(ctx context.Context, r *run, flow, after string) (string, bool) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	op := history.Op{Client: "harness", Kind: history.StreamSeen, Flow: flow, Call: r.rec.Now()}
	cctx, cancel := context.WithTimeout(ctx, watchEvery)
	msgs, err := s.rdb.XRangeN(cctx, s.streams.StreamKey(flow), start, "+", 1000).Result()
	cancel()
	if err != nil || len(msgs) == 0 {
		return "", false
	}
	if op.Stored = s.stored(ctx, r, msgs); op.Stored == nil {
		return "", false
	}
	op.Return, op.OK = r.rec.Now(), true
	for _, m := range msgs {
		op.Values = append(op.Values, entryEventID(m))
	}
	r.rec.Add(op)
	return msgs[len(msgs)-1].ID, true
}

// entryEventID is the event ID a stream entry carries.
func entryEventID(m redis.XMessage) string {
	if id, ok := m.Values["id"].(string); ok && id != "" {
		return id
	}
	if js, ok := m.Values["event"].(string); ok {
		var e struct {
			ID string `json:"id"`
		}
		if json.Unmarshal([]byte(js), &e) == nil && e.ID != "" {
			return e.ID
		}
	}
	return "?" + m.ID
}

// info records the flow's stream length and TTL as Redis reports them, for
// the stream_bounds check.
func (s *serverReader) info(ctx context.Context, r *run, flow string) {
	op := history.Op{Client: "harness", Kind: history.StreamInfo, Flow: flow, Call: r.rec.Now()}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	var n *redis.IntCmd
	var ttl *redis.DurationCmd
	_, err := s.rdb.Pipelined(cctx, func(p redis.Pipeliner) error {
		key := s.streams.StreamKey(flow)
		n, ttl = p.XLen(cctx, key), p.PTTL(cctx, key)
		return nil
	})
	cancel()
	op.Return = r.rec.Now()
	op.OK = err == nil
	if err != nil {
		op.Err = redact.Text(err.Error(), s.secrets...)
	} else {
		op.Count = n.Val()
		op.Value = strconv.FormatInt(pttlMillis(ttl.Val()), 10)
	}
	r.rec.Add(op)
}

// pttlMillis is PTTL's answer in milliseconds: go-redis returns -1 and -2
// (no TTL, no key) as those many nanoseconds.
func pttlMillis(d time.Duration) int64 {
	if d < 0 {
		return int64(d)
	}
	return d.Milliseconds()
}
