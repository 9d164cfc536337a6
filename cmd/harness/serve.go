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
)

// runServe serves one layer of a profile over HTTP until interrupted. Redis
// settings come from the tracker's environment variables (REDIS_ENABLED,
// REDIS_URL, REDIS_EVENT_BUS, REDIS_CACHE, REDIS_SSE, SERVER_ID). The
// control API needs HARNESS_CONTROL_TOKEN and, unless --control-any-addr,
// a loopback --addr.
func runServe(ctx context.Context, args []string, e env) (int, error) {
	fs := newFlags("serve", "serve [-profile hardened|seed] [-addr 127.0.0.1:8080]", e)
	reg := profiles.Default()
	profile := fs.String("profile", "hardened", fmt.Sprintf("implementation to serve %v", reg.Names()))
	addr := fs.String("addr", "127.0.0.1:8080", "listen address (host:port)")
	heartbeat := fs.Duration("heartbeat", 15*time.Second, "SSE heartbeat interval")
	journal := fs.String("journal", "", "outbox journal directory (also OUTBOX_JOURNAL_DIR): events acknowledged while Redis is down survive a stop or crash of this instance (docs/http.md); one instance per directory")
	control := fs.Bool("control", false, "serve the harness control API under /_harness/ (docs/http.md) so that `harness run --service` can reset the layer per scenario and drive the registry; also HARNESS_CONTROL=true. Needs HARNESS_CONTROL_TOKEN (at least 16 characters), which every control request must send as Authorization: Bearer. Test stacks only: never in production")
	corsList := fs.String("cors-origins", "", "origins whose pages may use the service from a browser, comma-separated scheme://host[:port] or * (also CORS_ORIGINS; docs/http.md, \"Browsers\")")
	unnamed := fs.Bool("sse-unnamed", false, "send SSE events without an event: field, so that a browser's EventSource.onmessage gets them all (default: named by event_type)")
	anyAddr := fs.Bool("control-any-addr", false, "with --control: allow an --addr that is not loopback (127.0.0.0/8, ::1, localhost), e.g. :8080 in a compose network")
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
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return 0, exitcode.Configf("-addr %q: %v", *addr, err)
	}
	token := e.getenv("HARNESS_CONTROL_TOKEN")
	if *control {
		if err := checkControl(host, token, *anyAddr); err != nil {
			return 0, err
		}
	}
	if *corsList == "" {
		*corsList = e.getenv("CORS_ORIGINS")
	}
	origins, err := service.ParseOrigins(*corsList)
	if err != nil {
		return 0, exitcode.Config(err)
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
	err = service.Serve(ctx, service.Served{
		Profiles: reg, Profile: *profile, Addr: *addr, Config: cfg, Control: *control, Token: token,
		Options: service.Options{HeartbeatInterval: *heartbeat, Counter: hook, Logger: slog.New(slog.NewTextHandler(e.stderr, nil)),
			CORS: service.CORS{Origins: origins}, Stream: service.StreamOptions{Unnamed: *unnamed}},
		Out: e.stdout, Err: e.stderr,
	})
	return exitcode.Of(err), err
}

// checkControl refuses the control API without a token of at least
// service.MinTokenLength characters, and on an address that is not
// loopback unless anyAddr.
func checkControl(host, token string, anyAddr bool) error {
	if len(token) < service.MinTokenLength {
		return exitcode.Configf("--control needs HARNESS_CONTROL_TOKEN of at least %d characters (it has %d), sent by `harness run --service` from its own HARNESS_CONTROL_TOKEN", service.MinTokenLength, len(token))
	}
	if ip := net.ParseIP(host); !anyAddr && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return exitcode.Configf("--control on --addr host %q: the control API listens only on loopback (127.0.0.1, ::1, localhost) unless --control-any-addr is given", host)
	}
	return nil
}
