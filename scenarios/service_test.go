package scenarios

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/httplayer"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/impl/service"
	"github.com/gonogo/harness/impl/service/servicetest"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/target"
)

// serviceStack is a redis-server, an embedded Toxiproxy in front of it and
// reference services whose Redis traffic goes through the proxy: what
// docker-compose.test.yml runs, in-process.
type serviceStack struct {
	redis *target.Process
	proxy chaos.Proxy
}

func newServiceStack(t *testing.T) *serviceStack {
	t.Helper()
	p, err := target.StartProcess(context.Background(), target.ProcessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	px, err := newEmbeddedProxy(context.Background(), "redis", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	return &serviceStack{redis: p, proxy: px}
}

// controlToken guards the control API of the services these tests start.
const controlToken = "scenarios-test-token-0123"

// serve starts a reference service of profile whose Redis is reached
// through the stack's proxy, with the control API when control is set,
// and returns it dialled.
func (s *serviceStack) serve(t *testing.T, profile string, control bool) *httplayer.Service {
	t.Helper()
	ctx := context.Background()
	h := counter.New()
	cfg := impl.Config{Enabled: true, EventBus: true, Cache: true, SSE: true,
		URL: "redis://" + s.proxy.Listen() + "/0", Hooks: []redis.Hook{h}}
	reg := profiles.Default()
	l, err := reg.New(ctx, profile, cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := service.Options{Counter: h}
	if control {
		opts.Control = &service.Control{Base: cfg, Token: controlToken, New: func(ctx context.Context, c impl.Config) (*impl.Layer, error) {
			return reg.New(ctx, profile, c)
		}}
	}
	_, base := servicetest.Start(t, l, opts)
	d, err := httplayer.Dial(ctx, base, controlToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// deps are the engine's constructors for the services: the Redis opened
// by URL (a fresh key prefix per run), network faults on the shared proxy.
func (s *serviceStack) deps(services ...*httplayer.Service) *Deps {
	return ServiceDeps(s.options(services...))
}

// options are the service options deps uses.
func (s *serviceStack) options(services ...*httplayer.Service) ServiceOptions {
	return ServiceOptions{
		Services: services,
		Redis: func(ctx context.Context) (target.Target, error) {
			return started(target.OpenURL(ctx, s.redis.URL(), target.URLOptions{}))
		},
		Proxy: s.proxy,
	}
}

// TestServiceMode runs scenarios against reference services reached only
// over HTTP, with network faults on the proxy their Redis traffic goes
// through: hardened passes basic and proxy_down; the seed's three round
// trips per publish are caught, counted by the service; the proxy is left
// enabled, without toxics, and the run's keys are deleted.
func TestServiceMode(t *testing.T) {
	t.Parallel()
	needRedis(t)
	s := newServiceStack(t)
	for _, name := range []string{"basic", "proxy_down"} {
		t.Run("hardened/"+name, func(t *testing.T) {
			o := runOn(t, name, "hardened", s.deps(s.serve(t, "hardened", true)))
			if o.Verdict != verdict.Pass {
				t.Errorf("verdict: got %s; want PASS", o.Verdict)
			}
			if name == "basic" && o.Counts["publish"].RoundTrips == 0 {
				t.Errorf("publish round trips: got %+v; want the service's counts", o.Counts["publish"])
			}
		})
	}
	t.Run("seed/basic", func(t *testing.T) {
		o := runOn(t, "basic", "seed", s.deps(s.serve(t, "seed", true)))
		var rt *Result
		for i := range o.Results {
			if o.Results[i].Check == "round_trips" {
				rt = &o.Results[i]
			}
		}
		if o.Verdict != verdict.Fail || rt == nil || rt.Verdict != verdict.Fail || rt.Metrics["round_trips_publish"] < 2.5 {
			t.Errorf("got %s, round_trips %+v; want FAIL with about 3 round trips per publish", o.Verdict, rt)
		}
	})
	rdb := redis.NewClient(&redis.Options{Addr: s.redis.Addr()})
	defer rdb.Close()
	if keys := rdb.Keys(context.Background(), "*").Val(); len(keys) != 0 {
		t.Errorf("keys left after the runs: %q", keys)
	}
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	pc := redis.NewClient(&redis.Options{Addr: s.proxy.Listen(), MaxRetries: -1})
	defer pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := pc.Ping(ctx).Err(); err != nil {
		t.Errorf("PING through the shared proxy after the runs: %v; want it enabled, without toxics", err)
	}
}

// TestServiceModeUnavailable: a scenario the services cannot run is not
// run, INCONCLUSIVE with the reason, before any traffic.
func TestServiceModeUnavailable(t *testing.T) {
	needRedis(t)
	s := newServiceStack(t)
	bare := s.serve(t, "hardened", false)
	full := s.serve(t, "hardened", true)
	for _, tt := range []struct {
		name, scenario string
		deps           *Deps
		want           []string
	}{
		{"no control API", "basic", s.deps(bare), []string{
			"does not offer the harness control API's reset (POST /_harness/reset)",
			"does not offer the harness control API's registry"}},
		{"one instance for two", "fanout_2", s.deps(full), []string{"needs 2 service instances; --service gave 1"}},
		{"kill on a url", "kill_aof", s.deps(full), []string{"fault kill not available on target url"}},
		{"throttled reader", "slow_consumers", s.deps(full), []string{"workload.sse read_rate (a throttled socket) is not available with --service"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := runOn(t, tt.scenario, "hardened", tt.deps)
			if o.Verdict != verdict.Inconclusive {
				t.Errorf("verdict: got %s; want INCONCLUSIVE", o.Verdict)
			}
			for _, r := range o.Results {
				if !errors.Is(r.Err, ErrUnavailable) {
					t.Errorf("check %s: got %s (%v); want INCONCLUSIVE: %v", r.Check, r.Verdict, r.Err, ErrUnavailable)
				}
			}
			notes := strings.Join(o.Notes, "\n")
			for _, w := range tt.want {
				if !strings.Contains(notes, w) {
					t.Errorf("notes: got %q; want them to contain %q", notes, w)
				}
			}
		})
	}
}
