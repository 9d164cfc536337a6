package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/impl/service"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/redact"
)

// runServe serves one layer of a profile over HTTP until interrupted. Redis
// settings come from the tracker's environment variables (REDIS_ENABLED,
// REDIS_URL, REDIS_EVENT_BUS, REDIS_CACHE, REDIS_SSE, SERVER_ID).
func runServe(ctx context.Context, args []string, e env) (code int, err error) {
	fs := newFlags("serve", "serve [-profile hardened|seed] [-addr 127.0.0.1:8080]", e)
	reg := profiles.Default()
	profile := fs.String("profile", "hardened", fmt.Sprintf("implementation to serve %v", reg.Names()))
	addr := fs.String("addr", "127.0.0.1:8080", "listen address (host:port)")
	heartbeat := fs.Duration("heartbeat", 15*time.Second, "SSE heartbeat interval")
	journal := fs.String("journal", "", "outbox journal directory (also OUTBOX_JOURNAL_DIR): events acknowledged while Redis is down survive a stop or crash of this instance (docs/http.md); one instance per directory")
	control := fs.Bool("control", false, "serve the harness control API under /_harness/ (docs/http.md) so that `harness run --service` can reset the layer per scenario and drive the registry; also HARNESS_CONTROL=true. Test stacks only: never in production")
	if err := parse(fs, args); err != nil {
		return 0, err
	}
	if v := e.getenv("HARNESS_CONTROL"); v != "" && !*control {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return 0, exitcode.Configf("HARNESS_CONTROL=%q: want true or false", v)
		}
		*control = on
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return 0, exitcode.Configf("-addr %q: %v", *addr, err)
	}
	if *heartbeat <= 0 {
		return 0, exitcode.Configf("-heartbeat must be positive, got %s", *heartbeat)
	}
	cfg, err := impl.ConfigFromEnv(e.getenv)
	if err != nil {
		return 0, exitcode.Config(err)
	}
	if *journal != "" {
		cfg.JournalDir = *journal
	}
	hook := counter.New()
	cfg.Hooks = append(cfg.Hooks, hook)
	layer, err := reg.New(ctx, *profile, cfg)
	if err != nil {
		return 0, exitcode.Config(err)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	opts := service.Options{HeartbeatInterval: *heartbeat, Counter: hook, Logger: log}
	if *control {
		base := cfg
		base.JournalDir = "" // the journal stays with the first layer (one layer per directory)
		opts.Control = &service.Control{Base: base, New: func(ctx context.Context, c impl.Config) (*impl.Layer, error) {
			return reg.New(ctx, *profile, c)
		}}
	}
	svc := service.New(layer, opts)
	defer func() { code, err = closeServed(svc.Layer(), log, code, err) }()
	url, err := svc.Start(ctx, *addr)
	if err != nil {
		return 0, exitcode.Config(err)
	}
	if *control {
		fmt.Fprintln(e.stderr, "WARNING: harness control API on (/_harness/): any client can reset the layer and touch the registry; for test stacks only")
	}
	fmt.Fprintf(e.stdout, "serving profile %s on %s (redis %s, mode %s)\n", *profile, url,
		redact.URL(cfg.URL), layer.Manager.Mode())
	<-ctx.Done()
	shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Shutdown(shut); err != nil {
		return 0, exitcode.Harness(err)
	}
	fmt.Fprintln(e.stdout, "stopped: SSE connections unregistered")
	return exitcode.Go, nil
}
