package impl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
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
// read/write timeouts). A URL with a master_name parameter names sentinels
// (go-redis's ParseFailoverURL: the host and each addr= a sentinel, user
// info the sentinels' credentials, password= the data nodes'): the client
// is then go-redis's failover client, which asks the sentinels for the
// primary and follows it through a failover. A URL that does not parse is
// a config error (exit 3) whose text never shows the password.
func NewClient(cfg Config, tune ...func(*redis.Options)) (*redis.Client, error) {
	var opt *redis.Options
	var fo *redis.FailoverOptions
	var err error
	if IsFailoverURL(cfg.URL) {
		if fo, err = redis.ParseFailoverURL(cfg.URL); err == nil {
			opt = &redis.Options{Username: fo.Username, Password: fo.Password, DB: fo.DB, TLSConfig: fo.TLSConfig}
		}
	} else if IsClusterURL(cfg.URL) {
		err = errors.New("a cluster URL (addr=) needs a cluster client")
	} else {
		opt, err = redis.ParseURL(cfg.URL)
	}
	if err != nil {
		return nil, exitcode.Configf("REDIS_URL %s: %s", redact.URL(cfg.URL), redact.Text(err.Error(), redact.Password(cfg.URL)))
	}
	configure(cfg, opt, tune)
	var rdb *redis.Client
	if fo != nil {
		rdb = redis.NewFailoverClient(failoverOptions(fo, opt))
	} else {
		rdb = redis.NewClient(opt)
	}
	for _, h := range cfg.Hooks {
		rdb.AddHook(h)
	}
	return rdb, nil
}

// configure applies cfg's client settings to opt: cfg.TLS over the URL's
// (keeping its server name), PoolSize, ConnectTimeout as the dial timeout,
// ContextTimeoutEnabled, ClientName; then tune.
func configure(cfg Config, opt *redis.Options, tune []func(*redis.Options)) {
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
}

// IsFailoverURL reports whether u names sentinels rather than a server:
// it has a master_name query parameter.
func IsFailoverURL(u string) bool {
	pu, err := url.Parse(u)
	return err == nil && pu.Query().Has("master_name")
}

// failoverOptions are fo (sentinels, master name) with the client settings
// of opt.
func failoverOptions(fo *redis.FailoverOptions, opt *redis.Options) *redis.FailoverOptions {
	fo.Username, fo.Password, fo.DB, fo.Protocol = opt.Username, opt.Password, opt.DB, opt.Protocol
	fo.ClientName, fo.TLSConfig = opt.ClientName, opt.TLSConfig
	fo.MaxRetries, fo.MinRetryBackoff, fo.MaxRetryBackoff = opt.MaxRetries, opt.MinRetryBackoff, opt.MaxRetryBackoff
	fo.DialTimeout, fo.DialerRetries = opt.DialTimeout, opt.DialerRetries
	fo.ReadTimeout, fo.WriteTimeout, fo.ContextTimeoutEnabled = opt.ReadTimeout, opt.WriteTimeout, opt.ContextTimeoutEnabled
	fo.PoolSize, fo.PoolTimeout, fo.MinIdleConns, fo.MaxIdleConns, fo.MaxActiveConns = opt.PoolSize, opt.PoolTimeout, opt.MinIdleConns, opt.MaxIdleConns, opt.MaxActiveConns
	fo.ConnMaxIdleTime, fo.ConnMaxLifetime = opt.ConnMaxIdleTime, opt.ConnMaxLifetime
	fo.DisableIdentity, fo.UnstableResp3 = opt.DisableIdentity, opt.UnstableResp3
	return fo
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

// NewUniversalClient is NewClient for any URL the layers take, a cluster
// URL included (IsClusterURL): go-redis's cluster client then, which
// learns the slots from the nodes, follows MOVED and ASK redirects, and
// has every node client built with the settings tune gave (PoolSize, like
// the pool, is per node).
func NewUniversalClient(cfg Config, tune ...func(*redis.Options)) (redis.UniversalClient, error) {
	if !IsClusterURL(cfg.URL) {
		return NewClient(cfg, tune...)
	}
	co, err := redis.ParseClusterURL(cfg.URL)
	if err != nil {
		return nil, exitcode.Configf("REDIS_URL %s: %s", redact.URL(cfg.URL), redact.Text(err.Error(), redact.Password(cfg.URL)))
	}
	opt := &redis.Options{Username: co.Username, Password: co.Password, TLSConfig: co.TLSConfig}
	configure(cfg, opt, tune)
	rdb := redis.NewClusterClient(clusterOptions(co, opt))
	for _, h := range cfg.Hooks {
		rdb.AddHook(h)
	}
	return rdb, nil
}

// IsClusterURL reports whether u names the nodes of a Redis Cluster
// (go-redis's ParseClusterURL): one or more addr= query parameters and no
// master_name.
func IsClusterURL(u string) bool {
	pu, err := url.Parse(u)
	return err == nil && pu.Query().Has("addr") && !pu.Query().Has("master_name")
}

// clusterOptions are co (the seed nodes) with the client settings of opt.
func clusterOptions(co *redis.ClusterOptions, opt *redis.Options) *redis.ClusterOptions {
	co.Username, co.Password, co.Protocol = opt.Username, opt.Password, opt.Protocol
	co.ClientName, co.TLSConfig = opt.ClientName, opt.TLSConfig
	co.MaxRetries, co.MinRetryBackoff, co.MaxRetryBackoff = opt.MaxRetries, opt.MinRetryBackoff, opt.MaxRetryBackoff
	co.DialTimeout, co.DialerRetries = opt.DialTimeout, opt.DialerRetries
	co.ReadTimeout, co.WriteTimeout, co.ContextTimeoutEnabled = opt.ReadTimeout, opt.WriteTimeout, opt.ContextTimeoutEnabled
	co.PoolSize, co.PoolTimeout, co.MinIdleConns, co.MaxIdleConns, co.MaxActiveConns = opt.PoolSize, opt.PoolTimeout, opt.MinIdleConns, opt.MaxIdleConns, opt.MaxActiveConns
	co.ConnMaxIdleTime, co.ConnMaxLifetime = opt.ConnMaxIdleTime, opt.ConnMaxLifetime
	co.DisableIdentity, co.UnstableResp3 = opt.DisableIdentity, opt.UnstableResp3
	co.MaintNotificationsConfig = opt.MaintNotificationsConfig
	return co
}
