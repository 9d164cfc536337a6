// Package history is the record a scenario run leaves behind: every operation
// with its call and return time as offsets from one base time, and every fault
// with its window. Workloads only append to it; checkers only read it.
package history

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/gonogo/harness/internal/inputfile"
)

// Kinds of operation a workload records.
const (
	Publish      = "publish"          // EventID, Seq, Flow; Value = instance; OK means acknowledged
	Read         = "history"          // Flow; Values = event IDs read, in stream order
	Deliver      = "deliver"          // Client is the subscriber; EventID; Return = receive time; Value = cursor; Seq = its connection
	Subscribe    = "subscribe"        // Client subscribed (Call) / unsubscribed (Return); Seq numbers the client's connections, Value = instance, Values[0] = Last-Event-ID sent
	CacheGet     = "cache_get"        // Flow; Version read (0 = miss)
	CacheSet     = "cache_set"        // Flow; Version offered; Value FillRefused when the layer refused it
	CacheInval   = "cache_invalidate" // Flow; Version now authoritative; Value Deferred when the layer deferred it
	DBWrite      = "db_write"         // Flow; Version now authoritative
	RegRegister  = "reg_register"     // Value = connection id
	RegHeartbeat = "reg_heartbeat"    // Value = connection id
	RegUnreg     = "reg_unregister"
	RegLookup    = "reg_lookup" // Flow; Values = connection ids seen
	RegCount     = "reg_count"  // Value = instance read on; Count = live connections it reported
	Health       = "health"     // Value = reported redis state ("healthy", "unavailable", ...)
	RedisState   = "redis_state"
	ServerRead   = "server_read" // the harness's own read of a flow's Redis stream: Flow; Values = event IDs stored, in stream order; Stored = when Redis stored each
	StreamInfo   = "stream_info" // the harness's own look at a flow's stream: Flow; Count = XLEN; Value = PTTL in ms (-1 none, -2 no key)
	// StreamSeen is the harness's own look, during the traffic, at the
	// entries new in a flow's Redis stream (runs with a fault that wipes
	// Redis, whose final read cannot see what the wipe took): Flow;
	// Values = event IDs, in stream order; Stored = when Redis stored each.
	StreamSeen = "stream_seen"
	// InstanceExit is an instance process that ended (instance faults):
	// Instance names it, Value the fault ("stop", "kill"), Err its exit
	// status, OK an exit status 0, Values the last lines it logged.
	InstanceExit = "instance_exit"
	// RSS is a sample of an instance process's resident memory: Instance
	// names it, Count is in bytes.
	RSS = "rss"
)

// FillRefused is the Value of a cache_set the layer refused because the
// flow was invalidated after its lease was issued (impl.ErrFillRefused):
// a correct answer, recorded OK.
const FillRefused = "refused"

// Deferred is the Value of a cache_invalidate the layer deferred
// (impl.ErrInvalidateDeferred): recorded OK, and counted as completed only
// for reads on the instance that deferred it (Op.Instance).
const Deferred = "deferred"

// Op is one operation as a client saw it.
type Op struct {
	Client  string        `json:"client"`
	Kind    string        `json:"kind"`
	Flow    string        `json:"flow,omitempty"`
	EventID string        `json:"event_id,omitempty"`
	Seq     int64         `json:"seq,omitempty"`
	Version int64         `json:"version,omitempty"`
	Value   string        `json:"value,omitempty"`
	Values  []string      `json:"values,omitempty"`
	Count   int64         `json:"count,omitempty"`
	Call    time.Duration `json:"call"`
	Return  time.Duration `json:"return"`
	OK      bool          `json:"ok"`
	Err     string        `json:"err,omitempty"`
	// Mode is what the implementation said it served from ("redis",
	// "memory"), when it says.
	Mode string `json:"mode,omitempty"`
	// Instance is the SERVER_ID of the instance an op is about: the
	// process of an instance_exit or rss record, the instance a cache
	// read or invalidation went to.
	Instance string `json:"instance,omitempty"`
	// Stored is, for a server_read, the earliest time (on the run's
	// clock) at which Redis can have stored each entry of Values: the
	// entry ID's milliseconds, less the measured offset of Redis's clock
	// and its uncertainty.
	Stored []time.Duration `json:"stored,omitempty"`
}

// Latency is the time the call took.
func (o Op) Latency() time.Duration { return o.Return - o.Call }

// Fault is a window during which a fault was injected.
type Fault struct {
	Name   string            `json:"name"`
	Params map[string]string `json:"params,omitempty"`
	Start  time.Duration     `json:"start"`
	End    time.Duration     `json:"end"`
}

// Contains reports whether t falls in the fault window.
func (f Fault) Contains(t time.Duration) bool { return t >= f.Start && t < f.End }

// Stall is a window during which the harness process itself did not run
// (GC, scheduler or CPU starvation on a loaded machine): no call could
// return in it, whatever the layer did.
type Stall struct {
	Start time.Duration `json:"start"`
	End   time.Duration `json:"end"`
}

// History is one run's record.
type History struct {
	Base   time.Time         `json:"base"`
	End    time.Duration     `json:"end"`
	Ops    []Op              `json:"ops"`
	Faults []Fault           `json:"faults"`
	Stalls []Stall           `json:"stalls,omitempty"`
	Meta   map[string]string `json:"meta,omitempty"`
}

// Recorder appends to a History from many goroutines.
type Recorder struct {
	mu   sync.Mutex
	base time.Time
	h    History
}

// NewRecorder starts a history whose base time is now.
func NewRecorder() *Recorder {
	now := time.Now()
	return &Recorder{base: now, h: History{Base: now, Meta: map[string]string{}}}
}

// Since is the offset of t from the base time.
func (r *Recorder) Since(t time.Time) time.Duration { return t.Sub(r.base) }

// Now is the current offset from the base time.
func (r *Recorder) Now() time.Duration { return time.Since(r.base) }

// Add records an operation.
func (r *Recorder) Add(op Op) {
	r.mu.Lock()
	r.h.Ops = append(r.h.Ops, op)
	r.mu.Unlock()
}

// AddFault records a fault window.
func (r *Recorder) AddFault(f Fault) {
	r.mu.Lock()
	r.h.Faults = append(r.h.Faults, f)
	r.mu.Unlock()
}

// AddStall records a harness stall.
func (r *Recorder) AddStall(s Stall) {
	r.mu.Lock()
	r.h.Stalls = append(r.h.Stalls, s)
	r.mu.Unlock()
}

// SetMeta records a key/value about the run.
func (r *Recorder) SetMeta(k, v string) {
	r.mu.Lock()
	r.h.Meta[k] = v
	r.mu.Unlock()
}

// History returns a copy of what was recorded, ops sorted by call time.
func (r *Recorder) History() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.h
	h.End = time.Since(r.base)
	h.Ops = append([]Op(nil), r.h.Ops...)
	h.Faults = append([]Fault(nil), r.h.Faults...)
	h.Stalls = append([]Stall(nil), r.h.Stalls...)
	h.Meta = make(map[string]string, len(r.h.Meta))
	for k, v := range r.h.Meta {
		h.Meta[k] = v
	}
	sort.SliceStable(h.Ops, func(i, j int) bool { return h.Ops[i].Call < h.Ops[j].Call })
	return h
}

// Save writes h as JSON to path atomically (temp file, then rename).
func Save(path string, h History) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, b)
}

// Load reads a history saved by Save.
func Load(path string) (History, error) {
	var h History
	b, err := inputfile.Read(path, inputfile.MaxHistory)
	if err != nil {
		return h, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("%s: not a saved history: %w", path, err)
	}
	return h, nil
}

// WriteFileAtomic writes data to a temp file beside path and renames it into
// place, so a reader never sees a half-written file.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
