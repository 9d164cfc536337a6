package impl

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config configures one Layer. Zero values mean the default stated on each
// field; defaults are applied in one place (withDefaults).
type Config struct {
	// Enabled is REDIS_ENABLED; false means memory only (the rollback).
	Enabled bool
	// URL is REDIS_URL (redis:// or rediss://). Default redis://localhost:6379/0.
	URL string
	// EventBus, Cache, SSE are REDIS_EVENT_BUS, REDIS_CACHE, REDIS_SSE:
	// per-component flags; a false flag keeps that component in memory.
	EventBus, Cache, SSE bool
	// ServerID is SERVER_ID; default a random id.
	ServerID string
	// TLS overrides the TLS settings derived from a rediss:// URL (custom CA,
	// client certificate). Nil: system roots.
	TLS *tls.Config
	// Hooks are added to every Redis client the layer makes (counting).
	Hooks []redis.Hook
	// KeyPrefix is prepended to every key and channel (per-run namespace).
	KeyPrefix string
	// ClientName, when set, names every connection the layer opens (CLIENT
	// SETNAME), so the server's CLIENT LIST attributes them to it.
	ClientName string

	// PoolSize is the connection pool size. Default 50.
	PoolSize int
	// ConnectTimeout bounds dialling. Default 5s.
	ConnectTimeout time.Duration
	// DrainTimeout bounds how long a graceful stop waits for Redis to take
	// the events acknowledged from memory (hardened: it connects again
	// every ProbeInterval meanwhile). Default twice ConnectTimeout (10s):
	// long enough for a failover or a restart, well inside a platform's
	// grace period (30s on Kubernetes) with the SSE streams' close.
	DrainTimeout time.Duration
	// PublishBudget bounds one Publish (hardened). Default 50ms.
	PublishBudget time.Duration
	// CallBudget bounds one cache or registry call (hardened). Default 50ms.
	CallBudget time.Duration
	// ProbeInterval is how often a layer in memory mode probes Redis to
	// switch back (hardened). Default 250ms.
	ProbeInterval time.Duration
	// HealthInterval is the health check interval. Default 30s (TASK-003).
	HealthInterval time.Duration

	// StreamMaxLen is the approximate MAXLEN of a flow stream. Default 10000.
	StreamMaxLen int64
	// StreamTTL is the flow stream's TTL. Default 24h.
	StreamTTL time.Duration
	// MemoryEvents is the per-flow memory fallback size. Default 1000.
	MemoryEvents int
	// OutboxCap bounds events held for replay while Redis is down
	// (hardened). Default 100000; overflow is counted, never silent.
	OutboxCap int
	// JournalDir, when set, makes the hardened outbox durable on this
	// instance: an event acknowledged from memory is appended to a
	// journal in this directory (one fsync per batch of concurrent
	// publishes) before Publish returns, and a layer started on the
	// directory replays what it holds, so a stop or a kill during an
	// outage loses nothing. One instance per directory (locked); used only
	// with the Redis event bus on. OUTBOX_JOURNAL_DIR; default "": none.
	JournalDir string

	// AckReplicas is durable acknowledgement (hardened): a publish is
	// acknowledged from Redis only once this many replicas have it (WAIT
	// in the publish's own pipeline: no extra round trip); one that the
	// replicas did not confirm within AckTimeout is kept in the outbox
	// and written again, to whichever primary is current, like a publish
	// during an outage. Without it an event the primary acknowledged and
	// had not yet replicated is lost when the primary dies or is demoted
	// (replication is asynchronous). Default 0, auto: 1 when the URL
	// names sentinels (a replicated Redis by construction), none for a
	// single server, where WAIT could never succeed; -1 disables; n > 0
	// waits for n. REDIS_ACK_REPLICAS.
	AckReplicas int
	// AckTimeout is WAIT's timeout. Default half the PublishBudget.
	AckTimeout time.Duration

	// SubscriberQueue and SubscriberQueueBytes bound the events (and their
	// payload bytes) waiting for one Bus.Subscribe consumer (hardened);
	// past either the subscription's channel is closed, and the consumer
	// resumes with the last cursor it got. Defaults 10000 events and 16
	// MiB; -1 disables.
	SubscriberQueue      int
	SubscriberQueueBytes int64

	// RegistryTTL is a connection's TTL without heartbeat. Default 300s.
	RegistryTTL time.Duration
	// CleanupInterval is how often stale connections are swept. Default 60s.
	CleanupInterval time.Duration

	// CacheTTLActive, CacheTTLCompleted, CacheTTLFailed are the status TTLs.
	// Defaults 300s, 3600s, 1800s.
	CacheTTLActive, CacheTTLCompleted, CacheTTLFailed time.Duration
}

// MaxAckReplicas bounds Config.AckReplicas.
const MaxAckReplicas = 16

// Acks is how many replicas a write must reach before it is acknowledged
// (Config.AckReplicas resolved): 0 means none.
func (c Config) Acks() int {
	switch {
	case c.AckReplicas < 0:
		return 0
	case c.AckReplicas == 0 && IsFailoverURL(c.URL):
		return 1
	}
	return c.AckReplicas
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.URL == "" {
		c.URL = "redis://localhost:6379/0"
	}
	if c.ServerID == "" {
		c.ServerID = "srv-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	}
	if c.PoolSize == 0 {
		c.PoolSize = 50
	}
	def(&c.ConnectTimeout, 5*time.Second)
	def(&c.DrainTimeout, 2*c.ConnectTimeout)
	def(&c.PublishBudget, 50*time.Millisecond)
	def(&c.CallBudget, 50*time.Millisecond)
	def(&c.AckTimeout, c.PublishBudget/2)
	def(&c.ProbeInterval, 250*time.Millisecond)
	def(&c.HealthInterval, 30*time.Second)
	if c.StreamMaxLen == 0 {
		c.StreamMaxLen = 10000
	}
	def(&c.StreamTTL, 24*time.Hour)
	if c.MemoryEvents == 0 {
		c.MemoryEvents = 1000
	}
	if c.OutboxCap == 0 {
		c.OutboxCap = 100000
	}
	if c.SubscriberQueue == 0 {
		c.SubscriberQueue = 10000
	}
	if c.SubscriberQueueBytes == 0 {
		c.SubscriberQueueBytes = 16 << 20
	}
	def(&c.RegistryTTL, 300*time.Second)
	def(&c.CleanupInterval, 60*time.Second)
	def(&c.CacheTTLActive, 300*time.Second)
	def(&c.CacheTTLCompleted, 3600*time.Second)
	def(&c.CacheTTLFailed, 1800*time.Second)
	return c
}

// MaxDrainTimeout bounds DrainTimeout: a stop that waits longer is a hang.
const MaxDrainTimeout = 10 * time.Minute

// ConfigFromEnv reads the tracker's variables (REDIS_ENABLED, REDIS_URL,
// REDIS_EVENT_BUS, REDIS_CACHE, REDIS_SSE, SERVER_ID), OUTBOX_JOURNAL_DIR
// and OUTBOX_DRAIN_TIMEOUT (a Go duration). The component flags
// default to true when REDIS_ENABLED is true (the tracker defaults them to
// false, which would make REDIS_ENABLED=true a no-op).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	var err error
	if c.Enabled, err = envBool(getenv, "REDIS_ENABLED", false); err != nil {
		return c, err
	}
	c.URL = getenv("REDIS_URL")
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"REDIS_EVENT_BUS", &c.EventBus}, {"REDIS_CACHE", &c.Cache}, {"REDIS_SSE", &c.SSE}} {
		if *f.dst, err = envBool(getenv, f.name, c.Enabled); err != nil {
			return c, err
		}
	}
	if v := strings.TrimSpace(getenv("REDIS_ACK_REPLICAS")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < -1 || n > MaxAckReplicas {
			return c, fmt.Errorf("REDIS_ACK_REPLICAS=%q: want -1 (off), 0 (auto) or 1 to %d", v, MaxAckReplicas)
		}
		c.AckReplicas = n
	}
	c.ServerID = getenv("SERVER_ID")
	c.JournalDir = getenv("OUTBOX_JOURNAL_DIR")
	if v := strings.TrimSpace(getenv("OUTBOX_DRAIN_TIMEOUT")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Millisecond || d > MaxDrainTimeout {
			return c, fmt.Errorf("OUTBOX_DRAIN_TIMEOUT=%q: want a duration from 1ms to %s, such as 25s", v, MaxDrainTimeout)
		}
		c.DrainTimeout = d
	}
	return c.withDefaults(), nil
}

func envBool(getenv func(string) string, name string, def bool) (bool, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%s=%q: want true or false", name, v)
}
