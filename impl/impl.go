// Package impl declares the real-time layer the harness puts under test: the
// event bus, the SSE connection registry, the flow-state cache and the
// connection manager of the tracker's TASK-003 to TASK-012, and a registry of
// profiles (named constructors) so any implementation of these interfaces can
// be run through the same scenarios.
package impl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Event is one flow event (the tracker's FlowEvent).
type Event struct {
	// ID is unique per event and set by the publisher; implementations use
	// it to drop duplicates (e.g. on outbox replay).
	ID            string          `json:"id"`
	FlowID        string          `json:"flow_id"`
	Type          string          `json:"event_type"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	Timestamp     time.Time       `json:"timestamp"`
	Source        string          `json:"source,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	// Cursor is the event's position in its flow's history (a Redis stream
	// ID, or a memory sequence). Set on events read back or delivered; it
	// is what an SSE client sends back as Last-Event-ID.
	Cursor string `json:"cursor,omitempty"`
}

// Bus is the flow event bus (TASK-005).
type Bus interface {
	// Publish stores and broadcasts e. A nil error is an acknowledgement:
	// the event must then be readable from History (after any outage).
	Publish(ctx context.Context, e Event) error
	// History returns up to count of the flow's most recent events with
	// Timestamp >= since (zero since: no bound), oldest first.
	History(ctx context.Context, flowID string, count int, since time.Time) ([]Event, error)
	// Subscribe delivers the flow's events as they are published. With a
	// non-empty after cursor it first delivers the stored events that
	// follow it. The channel is closed when ctx ends.
	Subscribe(ctx context.Context, flowID, after string) (<-chan Event, error)
}

// Positioner is a Bus that can name where a flow's events stand now: a
// cursor after which a subscription delivers every event published from
// now on. The service sends it as the id: of a stream's first frame, so
// that a client that moves before it got any event resumes without a gap
// (as a browser's EventSource does with any id: it was sent).
type Positioner interface {
	Position(ctx context.Context, flowID string) (string, error)
	// Resumable reports whether a subscription can resume after cursor
	// (one the bus issued); after any other it starts from now.
	Resumable(cursor string) bool
}

// SubscribeAt is b.Subscribe that also returns the cursor the subscription
// starts after: after itself when the bus can resume after it (or cannot
// say); else, when b is a Positioner, where the flow stands now (and the
// subscription resumes after it); else "" (a client then has no cursor
// until its first event).
func SubscribeAt(ctx context.Context, b Bus, flowID, after string) (<-chan Event, string, error) {
	if p, ok := b.(Positioner); ok && (after == "" || !p.Resumable(after)) {
		pos, err := p.Position(ctx, flowID)
		if err != nil {
			return nil, "", err
		}
		after = pos
	}
	ch, err := b.Subscribe(ctx, flowID, after)
	if err != nil {
		return nil, "", err
	}
	return ch, after, nil
}

// Streams is a Bus whose flow histories live in Redis streams that anyone
// with access to the Redis can read: the harness reads them itself, with
// its own client, to judge what Redis holds rather than what the layer
// says (the layer could answer from memory). Each entry of a flow's stream
// is one event and names its event ID either in a field "id" or in a field
// "event" holding the event's JSON (docs/http.md, "Redis layout").
type Streams interface {
	// StreamKey is the key of the flow's stream, prefix included.
	StreamKey(flowID string) string
}

// Conn is one SSE connection (TASK-006).
type Conn struct {
	ID         string            `json:"connection_id"`
	FlowID     string            `json:"flow_id"`
	UserID     string            `json:"user_id"`
	ClientInfo map[string]string `json:"client_info,omitempty"`
}

// Registry tracks SSE connections across service instances (TASK-006).
type Registry interface {
	Register(ctx context.Context, c Conn) error
	Heartbeat(ctx context.Context, connID string) error
	Unregister(ctx context.Context, connID string) error
	// Lookup returns the IDs of the flow's live connections, on any instance.
	Lookup(ctx context.Context, flowID string) ([]string, error)
	// Cleanup removes connections whose heartbeats stopped; it returns how
	// many it removed.
	Cleanup(ctx context.Context) (int, error)
	// Count is the number of live connections across instances.
	Count(ctx context.Context) (int, error)
}

// Entry is what a cache read returns.
type Entry struct {
	State map[string]any
	Hit   bool
	// Lease, on a miss, is a token to pass to Set so that the fill is
	// refused if the flow was invalidated in between. Implementations
	// that do not guard fills return "".
	Lease string
}

// CacheMetrics are the TASK-007 access metrics of one flow.
type CacheMetrics struct {
	Access  int64   `json:"access_count"`
	Hits    int64   `json:"hits"`
	Misses  int64   `json:"misses"`
	HitRate float64 `json:"hit_rate"` // percent
}

// Cache is the flow-state cache (TASK-007).
type Cache interface {
	Get(ctx context.Context, flowID string) (Entry, error)
	// Set caches state with a TTL chosen by status. lease is the token a
	// missing Get returned, or "" for an unconditional write.
	Set(ctx context.Context, flowID string, state map[string]any, status, lease string) error
	Invalidate(ctx context.Context, flowID string) error
	Metrics(ctx context.Context, flowID string) (CacheMetrics, error)
}

// The modes a layer serves in (Manager.Mode, Health.Mode, and what the
// harness records of each call in history.Op.Mode).
const (
	// ModeRedis: calls are served from Redis.
	ModeRedis = "redis"
	// ModeMemory: Redis is off or unreachable; calls are served from the
	// in-memory fallback.
	ModeMemory = "memory"
)

// ModeNote is where one call says the mode it was answered in, when a
// layer knows better than its manager's mode: a publish it acknowledged
// from memory (its outbox: the publish missed its budget, or no replica
// confirmed the write) while the manager still says redis (explore seed
// 18181, reordered-fa5c52d7: such a write, taken for one acknowledged from
// Redis, bound the publisher's next events on another instance). The
// service sends it as the reply's X-Layer-Mode; the harness records it as
// the op's mode, and its HTTP client notes the reply's header in it.
type ModeNote struct {
	mu   sync.Mutex
	mode string
}

type modeNoteKey struct{}

// WithModeNote returns ctx carrying a new note, and the note.
func WithModeNote(ctx context.Context) (context.Context, *ModeNote) {
	n := &ModeNote{}
	return context.WithValue(ctx, modeNoteKey{}, n), n
}

// NoteMode records mode in ctx's note, if it carries one.
func NoteMode(ctx context.Context, mode string) {
	if n, ok := ctx.Value(modeNoteKey{}).(*ModeNote); ok && mode != "" {
		n.mu.Lock()
		n.mode = mode
		n.mu.Unlock()
	}
}

// Or is the mode noted, or fallback when none was.
func (n *ModeNote) Or(fallback string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mode == "" {
		return fallback
	}
	return n.mode
}

// Health is the Redis part of GET /health (TASK-004).
type Health struct {
	// Status is "healthy", "unhealthy", "unavailable" or "disabled".
	Status    string  `json:"status"`
	LatencyMS float64 `json:"latency_ms,omitempty"`
	Error     string  `json:"error,omitempty"`
	// Mode is where the layer serves from now: ModeRedis or ModeMemory.
	Mode string `json:"mode"`
}

// Manager is the connection manager and monitor (TASK-003, TASK-004, TASK-012).
type Manager interface {
	// Mode is ModeRedis or ModeMemory.
	Mode() string
	Health(ctx context.Context) Health
	// Info returns the TASK-012 INFO fields, or {"status": "unavailable"}.
	Info(ctx context.Context) map[string]any
}

// Layer is one instance of an implementation: what one service process runs.
type Layer struct {
	Profile  string
	Manager  Manager
	Bus      Bus
	Registry Registry
	Cache    Cache
	// Close stops background work and closes connections.
	Close func() error
}

// Constructor builds a Layer from a Config.
type Constructor func(ctx context.Context, cfg Config) (*Layer, error)

// Profiles is a set of named constructors.
type Profiles struct {
	mu sync.RWMutex
	m  map[string]Constructor
}

// Register adds (or replaces) a profile.
func (p *Profiles) Register(name string, c Constructor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]Constructor{}
	}
	p.m[name] = c
}

// Names lists the registered profiles, sorted.
func (p *Profiles) Names() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	names := make([]string, 0, len(p.m))
	for n := range p.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New builds a layer with the named profile.
func (p *Profiles) New(ctx context.Context, name string, cfg Config) (*Layer, error) {
	p.mu.RLock()
	c, ok := p.m[name]
	p.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown profile %q (known: %v)", name, p.Names())
	}
	return c(ctx, cfg.withDefaults())
}

// ErrFillRefused is what Cache.Set returns (wrapped) when its lease is
// stale: the flow was invalidated after the Get that issued the lease.
// Callers check it with errors.Is (the HTTP service answers 409).
var ErrFillRefused = errors.New("cache fill refused: flow invalidated after the lease was issued")

// ErrInvalidateDeferred is what Cache.Invalidate returns (wrapped) when it
// could not make the invalidation hold yet: Redis is unreachable, so other
// instances sharing the cache may still serve the state it drops.
// The layer keeps it and applies it when Redis is back; the caller knows
// the invalidation is not done (the HTTP service answers 202). A layer
// that acknowledges instead (nil) promises no read anywhere returns the
// old state.
var ErrInvalidateDeferred = errors.New("cache invalidation deferred: Redis is unreachable")

// UnsavedError is what a Layer's Close returns when events it acknowledged
// were not in Redis when it closed. Lost are gone with the process; Kept
// wait in the layer's outbox journal (Config.JournalDir), and the next
// layer started on that journal writes them. Callers find it with
// errors.As (harness serve logs the counts and exits non-zero on a loss).
type UnsavedError struct {
	Lost, Kept int
	// Err says why (for instance that Redis stayed unreachable).
	Err error
}

func (e *UnsavedError) Error() string {
	msg := fmt.Sprintf("%d acknowledged events lost", e.Lost)
	if e.Kept > 0 {
		msg = fmt.Sprintf("%d acknowledged events kept in the outbox journal for the next start, %d lost", e.Kept, e.Lost)
	}
	if e.Err != nil {
		msg = e.Err.Error() + ": " + msg
	}
	return msg
}

func (e *UnsavedError) Unwrap() error { return e.Err }
