package impl

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/redact"
	"github.com/redis/go-redis/v9"
)

// WithDefaults returns cfg with every zero field set to its default, for
// constructors called directly rather than through Profiles.New.
func (c Config) WithDefaults() Config { return c.withDefaults() }

// NewClient returns a go-redis client for cfg: URL (redis:// or rediss://),
// cfg.TLS overriding the URL's TLS settings, PoolSize, ConnectTimeout as the
// dial timeout, ContextTimeoutEnabled (a caller's deadline bounds each call),
// ClientName, and cfg.Hooks. tune, if given, adjusts the options last (e.g. MaxRetries,
// read/write timeouts). A URL that does not parse is a config error (exit 3)
// whose text never shows the password.
func NewClient(cfg Config, tune ...func(*redis.Options)) (*redis.Client, error) {
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, exitcode.Configf("REDIS_URL %s: %s", redact.URL(cfg.URL), redact.Text(err.Error(), redact.Password(cfg.URL)))
	}
	if cfg.TLS != nil {
		t := cfg.TLS.Clone()
		if t.ServerName == "" && opt.TLSConfig != nil {
			t.ServerName = opt.TLSConfig.ServerName
		}
		opt.TLSConfig = t
	}
	if cfg.PoolSize > 0 {
		opt.PoolSize = cfg.PoolSize
	}
	if cfg.ConnectTimeout > 0 {
		opt.DialTimeout = cfg.ConnectTimeout
	}
	opt.ContextTimeoutEnabled = true
	if cfg.ClientName != "" {
		opt.ClientName = cfg.ClientName
	}
	for _, f := range tune {
		f(opt)
	}
	rdb := redis.NewClient(opt)
	for _, h := range cfg.Hooks {
		rdb.AddHook(h)
	}
	return rdb, nil
}

// RedisInfo returns the TASK-012 monitor fields from INFO: status "healthy",
// version, connected_clients, used_memory_human, used_memory_peak_human,
// total_commands_processed, instantaneous_ops_per_sec and keyspace (the
// line of the database the client uses, db0 unless its URL names another,
// as a map of integers). On error it returns status "error" and the error
// text.
func RedisInfo(ctx context.Context, rdb redis.UniversalClient) map[string]any {
	text, err := rdb.Info(ctx).Result()
	if err != nil {
		return map[string]any{"status": "error", "error": err.Error()}
	}
	f := ParseInfo(text)
	out := map[string]any{"status": "healthy", "keyspace": map[string]any{}}
	for _, k := range []string{"redis_version", "connected_clients", "used_memory_human",
		"used_memory_peak_human", "total_commands_processed", "instantaneous_ops_per_sec"} {
		name := k
		if k == "redis_version" {
			name = "version"
		}
		if v, ok := f[k]; ok {
			out[name] = infoValue(v)
		} else {
			out[name] = nil
		}
	}
	n := 0
	if c, ok := rdb.(*redis.Client); ok {
		n = c.Options().DB
	}
	if db, ok := f[fmt.Sprintf("db%d", n)]; ok {
		ks := map[string]any{}
		for _, kv := range strings.Split(db, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				ks[k] = infoValue(v)
			}
		}
		out["keyspace"] = ks
	}
	return out
}

// ParseInfo splits the text of INFO into its key:value fields.
func ParseInfo(text string) map[string]string {
	f := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			f[k] = v
		}
	}
	return f
}

// infoValue returns v as an int64 when it is one (as redis-py does), else as
// the string.
func infoValue(v string) any {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	return v
}
