package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/impl/httplayer"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/redact"
	"github.com/gonogo/harness/scenarios"
	"github.com/gonogo/harness/target"
)

// serviceOptions are the flags of `harness run --service`: an
// implementation that runs elsewhere, reached over HTTP (docs/http.md),
// put under the scenarios.
type serviceOptions struct {
	urls           listFlag
	toxiproxy      string // Toxiproxy API
	proxy          string // the proxy the services' Redis traffic goes through
	redisContainer string
	instanceCmd    string // command line that starts one instance (instance_mode process)
	token          string // HARNESS_CONTROL_TOKEN, sent to the services' control API
}

// addServiceFlags defines the service flags on fs; the control token comes
// from HARNESS_CONTROL_TOKEN in getenv.
func addServiceFlags(fs *flag.FlagSet, getenv func(string) string) *serviceOptions {
	o := &serviceOptions{token: getenv("HARNESS_CONTROL_TOKEN")}
	fs.Var(&o.urls, "service", "base `URL` of a service under test (docs/http.md), instead of an in-process profile; repeatable or comma list: instance i of a scenario is the i-th; the services' control API token comes from HARNESS_CONTROL_TOKEN")
	fs.StringVar(&o.toxiproxy, "toxiproxy", "", "with --service: Toxiproxy API `URL` (http://toxiproxy:8474) whose proxy the services reach Redis through; network faults act on it (not given: network faults are unavailable)")
	fs.StringVar(&o.proxy, "toxiproxy-proxy", "redis", "with --toxiproxy: `name` of that proxy")
	fs.StringVar(&o.redisContainer, "redis-container", "", "with --service: Docker container `name` of the services' Redis; kill, pause and restart act on it through the Docker API")
	fs.StringVar(&o.instanceCmd, "instance-cmd", "", "with --service: the `command` line that starts one instance of your service, split on spaces (no shell), run for the instance scenarios (instance_mode: process) so that the harness can stop, kill, pause and restart it: it gets HARNESS_ADDR (127.0.0.1:port to serve on), REDIS_URL, SERVER_ID, HARNESS_CONTROL_TOKEN and OUTBOX_JOURNAL_DIR in its environment (docs/http.md); not given: those scenarios are INCONCLUSIVE")
	return o
}

// external is the result of opening --service: the engine's constructors,
// the profile the services run and how to show them.
type external struct {
	deps    *scenarios.Deps
	profile string
	shown   []string // the services' URLs, passwords masked
}

// open checks the service flags against the target flags, dials every
// service, attaches to the Toxiproxy proxy and to the services' Redis once
// (so that a bad URL or name is bad input, exit 3, before any scenario
// runs) and returns the engine's constructors. w receives one line per
// service, the proxy and the Redis.
func (o *serviceOptions) open(ctx context.Context, w io.Writer, t *targetOptions, profileSet bool) (external, error) {
	set := map[string]bool{}
	t.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range []string{"target", "image", "rtt"} {
		if set[name] {
			return external{}, exitcode.Configf("--%s chooses where an in-process profile's Redis comes from; with --service the services have their own (--url, --redis-container)", name)
		}
	}
	switch {
	case profileSet:
		return external{}, exitcode.Configf("--profile picks an in-process profile; with --service the services run their own (GET /health says which)")
	case set["toxiproxy-proxy"] && o.toxiproxy == "":
		return external{}, exitcode.Configf("--toxiproxy-proxy needs --toxiproxy")
	}
	var instanceCmd []string
	if set["instance-cmd"] {
		var err error
		if instanceCmd, err = scenarios.ParseInstanceCmd(o.instanceCmd); err != nil {
			return external{}, exitcode.Configf("--instance-cmd: %v", err)
		}
	}
	if set["url"] || set["url-env"] || o.toxiproxy == "" {
		if ok, err := t.resolveURL(set); err != nil {
			return external{}, err
		} else if !ok {
			return external{}, exitcode.Configf("--service needs the services' Redis for the harness's own checks: --url redis://…, --url-env NAME, $%s, or --toxiproxy (its proxy's upstream)", redisURLEnv)
		}
	}
	var ext external
	var services []*httplayer.Service
	for _, u := range o.urls {
		s, err := httplayer.Dial(ctx, u, o.token)
		if err != nil {
			return ext, exitcode.Configf("--service: %s", redact.Text(err.Error(), append(redact.Secrets(u), o.token)...))
		}
		if p := s.Profile(); p != "" && !scenarios.ValidName(p) {
			// It names the run's directories (<scenario>-<profile>).
			return ext, exitcode.Configf("--service: service %s: GET /health names profile %q: want %s", redact.URL(s.Base()), p, scenarios.NamePattern)
		}
		services = append(services, s)
		ext.shown = append(ext.shown, redact.URL(s.Base()))
		abilities := "no control API: scenarios that need it are INCONCLUSIVE"
		if s.Has(httplayer.Reset) || s.Has(httplayer.Registry) {
			abilities = "control API"
		}
		fmt.Fprintf(w, "service: %s (profile %s; %s)\n", redact.URL(s.Base()), orUnknown(s.Profile()), abilities)
		if ext.profile == "" {
			ext.profile = s.Profile()
		} else if s.Profile() != ext.profile {
			return ext, exitcode.Configf("--service: the services run different profiles (%s, %s): put one implementation under test at a time", ext.profile, s.Profile())
		}
	}
	ext.profile = orUnknown(ext.profile)
	so := scenarios.ServiceOptions{Services: services, AllowDestructive: t.allowDestructive, InstanceCmd: instanceCmd}
	redisURL, via := t.url, ""
	if o.toxiproxy != "" {
		api, err := chaos.NewExternal(o.toxiproxy)
		if err != nil {
			return ext, err
		}
		p, err := api.Proxy(o.proxy)
		if err != nil {
			return ext, err
		}
		so.Proxy = p
		if via, err = proxyAddr(o.toxiproxy, p.Listen()); err != nil {
			return ext, err
		}
		so.ProxyAddr = via
		if redisURL == "" {
			redisURL = "redis://" + p.Upstream() + "/0"
		}
		fmt.Fprintf(w, "toxiproxy: proxy %s at %s (%s → %s): network faults act on it\n", o.proxy, o.toxiproxy, p.Listen(), p.Upstream())
	} else {
		fmt.Fprintln(w, "toxiproxy: none (--toxiproxy): network faults are unavailable")
	}
	uopts := target.URLOptions{CAFile: t.caFile, CertFile: t.certFile, KeyFile: t.keyFile, Insecure: t.insecure}
	so.Redis = func(ctx context.Context) (target.Target, error) {
		if o.redisContainer != "" {
			return target.AttachContainer(ctx, o.redisContainer, redisURL, via, uopts)
		}
		return target.OpenURL(ctx, redisURL, uopts)
	}
	tg, err := so.Redis(ctx)
	if err != nil {
		return ext, err
	}
	if r, ok := tg.(interface{ Warnings() []string }); ok {
		for _, warn := range r.Warnings() {
			fmt.Fprintf(w, "WARNING: %s\n", warn)
		}
	}
	if err := tg.Close(); err != nil {
		return ext, exitcode.Harnessf("the services' Redis: %s", redact.Text(err.Error(), redact.Secrets(redisURL)...))
	}
	desc := "not owned: process faults refused"
	if o.redisContainer != "" {
		desc = "container " + o.redisContainer + ": kill, pause, restart through the Docker API"
	}
	fmt.Fprintf(w, "redis: %s (%s; keys namespaced per scenario and deleted after)\n", redact.URL(redisURL), desc)
	if instanceCmd != nil {
		fmt.Fprintf(w, "instances: %s (started, stopped, killed and paused by the instance scenarios)\n", redact.Text(strings.Join(instanceCmd, " "), o.token))
	} else {
		fmt.Fprintln(w, "instances: none (--instance-cmd): the instance scenarios are INCONCLUSIVE")
	}
	ext.deps = scenarios.ServiceDeps(so)
	return ext, nil
}

// proxyAddr is where the harness reaches a proxy of the Toxiproxy at api
// that listens on listen ("[::]:26379"): the API's host, the proxy's port.
func proxyAddr(api, listen string) (string, error) {
	if !strings.Contains(api, "://") {
		api = "http://" + api
	}
	u, err := url.Parse(api)
	if err != nil {
		return "", exitcode.Configf("--toxiproxy %s: %v", api, err)
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", exitcode.Harnessf("toxiproxy proxy listens on %q: %v", listen, err)
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.TrimSpace(s)
}
