package impl

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
)

// TestProfiles: the zero registry is ready, names come back sorted, a
// second Register of a name replaces it, New passes the configuration with
// its defaults applied and an unknown name is an error naming the known.
func TestProfiles(t *testing.T) {
	var p Profiles
	if got := p.Names(); len(got) != 0 {
		t.Errorf("empty registry: names %v", got)
	}
	var got Config
	mk := func(name string) Constructor {
		return func(_ context.Context, cfg Config) (*Layer, error) {
			got = cfg
			return &Layer{Profile: name}, nil
		}
	}
	p.Register("zeta", mk("zeta"))
	p.Register("alpha", mk("alpha"))
	p.Register("zeta", mk("zeta-2"))
	if names := strings.Join(p.Names(), " "); names != "alpha zeta" {
		t.Errorf("names: got %q; want \"alpha zeta\"", names)
	}
	l, err := p.New(context.Background(), "zeta", Config{PoolSize: 7})
	if err != nil || l.Profile != "zeta-2" {
		t.Fatalf("New(zeta): %+v, %v; want the replacing constructor's layer", l, err)
	}
	if got.PoolSize != 7 || got.PublishBudget != 50*time.Millisecond || got.URL == "" {
		t.Errorf("constructor got %+v; want PoolSize 7 kept and the defaults filled", got)
	}
	if _, err := p.New(context.Background(), "nope", Config{}); err == nil || !strings.Contains(err.Error(), `unknown profile "nope" (known: [alpha zeta])`) {
		t.Errorf("New(nope): %v; want an error naming the known profiles", err)
	}
	boom := errors.New("boom")
	p.Register("broken", func(context.Context, Config) (*Layer, error) { return nil, boom })
	if _, err := p.New(context.Background(), "broken", Config{}); !errors.Is(err, boom) {
		t.Errorf("New(broken): %v; want the constructor's error", err)
	}
}

// TestProfilesConcurrent: registering while others look up is safe (run
// with -race).
func TestProfilesConcurrent(t *testing.T) {
	var p Profiles
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			p.Register(string(rune('a'+i)), func(context.Context, Config) (*Layer, error) { return &Layer{}, nil })
		}()
		go func() {
			defer wg.Done()
			_ = p.Names()
			_, _ = p.New(context.Background(), "a", Config{})
		}()
	}
	wg.Wait()
	if n := len(p.Names()); n != 8 {
		t.Errorf("got %d profiles; want 8", n)
	}
}

// TestConfigDefaults: every zero field gets the default its comment states;
// a field that is set is kept.
func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"URL", c.URL, "redis://localhost:6379/0"},
		{"PoolSize", c.PoolSize, 50},
		{"ConnectTimeout", c.ConnectTimeout, 5 * time.Second},
		{"PublishBudget", c.PublishBudget, 50 * time.Millisecond},
		{"CallBudget", c.CallBudget, 50 * time.Millisecond},
		{"ProbeInterval", c.ProbeInterval, 250 * time.Millisecond},
		{"HealthInterval", c.HealthInterval, 30 * time.Second},
		{"StreamMaxLen", c.StreamMaxLen, int64(10000)},
		{"StreamTTL", c.StreamTTL, 24 * time.Hour},
		{"MemoryEvents", c.MemoryEvents, 1000},
		{"OutboxCap", c.OutboxCap, 100000},
		{"SubscriberQueue", c.SubscriberQueue, 10000},
		{"SubscriberQueueBytes", c.SubscriberQueueBytes, int64(16 << 20)},
		{"RegistryTTL", c.RegistryTTL, 300 * time.Second},
		{"CleanupInterval", c.CleanupInterval, 60 * time.Second},
		{"CacheTTLActive", c.CacheTTLActive, 300 * time.Second},
		{"CacheTTLCompleted", c.CacheTTLCompleted, 3600 * time.Second},
		{"CacheTTLFailed", c.CacheTTLFailed, 1800 * time.Second},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: got %v (%T); want %v (%T)", tt.name, tt.got, tt.got, tt.want, tt.want)
		}
	}
	if !strings.HasPrefix(c.ServerID, "srv-") {
		t.Errorf("ServerID %q; want a generated srv-…", c.ServerID)
	}
	set := Config{URL: "redis://h:1/2", ServerID: "me", PoolSize: 3, PublishBudget: time.Second}.withDefaults()
	if set.URL != "redis://h:1/2" || set.ServerID != "me" || set.PoolSize != 3 || set.PublishBudget != time.Second {
		t.Errorf("set fields changed: %+v", set)
	}
}

// TestConfigFromEnv: REDIS_ENABLED turns the component flags on unless
// each says otherwise; a value that is not a boolean is an error naming the
// variable.
func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := ConfigFromEnv(env(map[string]string{"REDIS_ENABLED": "true", "REDIS_CACHE": "off", "SERVER_ID": "a1", "REDIS_URL": "redis://x:1/0"}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Enabled || !c.EventBus || c.Cache || !c.SSE || c.ServerID != "a1" || c.URL != "redis://x:1/0" || c.PoolSize != 50 {
		t.Errorf("got %+v; want enabled, bus and SSE on, cache off, the ID and URL given, defaults filled", c)
	}
	c, err = ConfigFromEnv(env(nil))
	if err != nil || c.Enabled || c.EventBus || c.Cache || c.SSE {
		t.Errorf("empty environment: %+v, %v; want everything off", c, err)
	}
	if _, err := ConfigFromEnv(env(map[string]string{"REDIS_SSE": "maybe"})); err == nil || !strings.Contains(err.Error(), `REDIS_SSE="maybe"`) {
		t.Errorf("bad boolean: %v; want an error naming REDIS_SSE", err)
	}
	if c, err := ConfigFromEnv(env(map[string]string{"REDIS_ACK_REPLICAS": "-1"})); err != nil || c.AckReplicas != -1 {
		t.Errorf("REDIS_ACK_REPLICAS=-1: %d, %v; want -1", c.AckReplicas, err)
	}
	for _, bad := range []string{"x", "-2", "17"} {
		if _, err := ConfigFromEnv(env(map[string]string{"REDIS_ACK_REPLICAS": bad})); err == nil || !strings.Contains(err.Error(), "REDIS_ACK_REPLICAS") {
			t.Errorf("REDIS_ACK_REPLICAS=%s: %v; want an error naming it", bad, err)
		}
	}
	if c.DrainTimeout != 2*c.ConnectTimeout {
		t.Errorf("drain timeout %s by default; want twice the connect timeout %s", c.DrainTimeout, c.ConnectTimeout)
	}
	if c, err := ConfigFromEnv(env(map[string]string{"OUTBOX_DRAIN_TIMEOUT": "25s"})); err != nil || c.DrainTimeout != 25*time.Second {
		t.Errorf("OUTBOX_DRAIN_TIMEOUT=25s: %s, %v; want 25s", c.DrainTimeout, err)
	}
	for _, bad := range []string{"x", "-1s", "0", "11m", "25"} {
		if _, err := ConfigFromEnv(env(map[string]string{"OUTBOX_DRAIN_TIMEOUT": bad})); err == nil || !strings.Contains(err.Error(), "OUTBOX_DRAIN_TIMEOUT") {
			t.Errorf("OUTBOX_DRAIN_TIMEOUT=%s: %v; want an error naming it", bad, err)
		}
	}
}

// TestNewClientFailoverURL: a URL with master_name gives go-redis's
// failover client (it asks the sentinels named), and a bad one is a config
// error that does not show the password.
func TestNewClientFailoverURL(t *testing.T) {
	if !IsFailoverURL("redis://127.0.0.1:1/0?master_name=m&addr=127.0.0.1:2") || IsFailoverURL("redis://127.0.0.1:1/0") {
		t.Fatal("IsFailoverURL: want true only with master_name")
	}
	rdb, err := NewClient(Config{URL: "redis://127.0.0.1:1/0?master_name=m&addr=127.0.0.1:2&password=pw", PoolSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if got := rdb.Options().PoolSize; got != 3 {
		t.Errorf("pool size %d; want 3", got)
	}
	if got := rdb.Options().Password; got != "pw" {
		t.Errorf("data node password %q; want the URL's password=", got)
	}
	if got := rdb.String(); !strings.Contains(got, "FailoverClient") {
		t.Errorf("client %s; want a failover client", got)
	}
	_, err = NewClient(Config{URL: "redis://:hunter7@127.0.0.1:1/0?master_name=m&bogus=1"})
	if exitcode.Of(err) != exitcode.BadInput || strings.Contains(err.Error(), "hunter7") {
		t.Fatalf("err = %v; want a config error without the password", err)
	}
}
