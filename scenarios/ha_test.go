package scenarios

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/scenarios/check"
)

// failoverSpec is sentinel_failover made short for make test: a SENTINEL
// FAILOVER 1.5 s into 4 s of publishes with SSE subscribers.
const failoverSpec = `name: failover_short
description: sentinel_failover, shorter
target: {kind: sentinel}
config:
  probe_interval: 100ms
  health_interval: 200ms
workload:
  duration: 4s
  publish: {rate: 100, flows: 2, publishers: 2}
  sse: {clients: 1}
faults:
  - {at: 1500ms, fault: failover}
checks:
  - name: lost
  - name: duplicated
  - name: reordered
  - name: delivery
`

// stalePrimary is hardened connected to the primary the sentinels named
// at start-up, by its address, rather than through them: after a
// failover it keeps writing to the demoted primary (what a layer that
// resolves the primary once, or caches its address, does).
func stalePrimary(ctx context.Context, cfg impl.Config) (*impl.Layer, error) {
	fo, err := redis.ParseFailoverURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: fo.SentinelAddrs[0], Password: fo.SentinelPassword})
	defer sc.Close()
	hp, err := sc.GetMasterAddrByName(ctx, fo.MasterName).Result()
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "redis", Host: net.JoinHostPort(hp[0], hp[1]), Path: "/0"}
	if fo.Password != "" {
		u.User = url.UserPassword(fo.Username, fo.Password)
	}
	cfg.URL = u.String()
	return hardened.New(ctx, cfg)
}

// TestFailover: through a failover hardened keeps every guarantee the
// checks judge (durable acknowledgement, on by default on a sentinel
// target), and a mutant that keeps publishing to the stale primary loses
// acknowledged events, named lost by asynchronous replication.
func TestFailover(t *testing.T) {
	needRedis(t)
	t.Parallel()
	reg := profiles.Default()
	reg.Register("stale-primary", stalePrimary)
	spec, err := Parse("failover_short.yaml", []byte(failoverSpec), DefaultKnown(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("hardened", func(t *testing.T) {
		t.Parallel()
		o := runSpec(t, spec, "hardened", reg, 1)
		for _, r := range o.Results {
			if r.Verdict != verdict.Pass {
				t.Errorf("check %s: got %s (%s); want PASS", r.Check, r.Verdict, r.Error)
			}
		}
	})
	t.Run("stale primary", func(t *testing.T) {
		t.Parallel()
		o := runSpec(t, spec, "stale-primary", reg, 1)
		r, _ := result(o, "lost")
		if r.Verdict != verdict.Fail || !errors.Is(r.Err, check.ErrLost) {
			t.Fatalf("check lost: got %s (%v); want FAIL: %v", r.Verdict, r.Err, check.ErrLost)
		}
		if r.Metrics["lost_async_replication"] < 1 {
			t.Errorf("lost_async_replication = %v; want the stale primary's writes counted", r.Metrics["lost_async_replication"])
		}
	})
}

// TestFailoverHA runs the production-ha scenarios in full against
// hardened, with and without durable acknowledgement, and seed; it logs
// their numbers. It takes about three minutes: make test-ha (GONOGO_HA=1).
func TestFailoverHA(t *testing.T) {
	needRedis(t)
	if os.Getenv("GONOGO_HA") == "" {
		t.Skip("set GONOGO_HA=1 (make test-ha) to run the sentinel scenarios in full")
	}
	reg := profiles.Default()
	for _, name := range []string{"sentinel_failover", "sentinel_primary_kill", "sentinel_primary_pause",
		"sentinel_fanout_failover", "sentinel_double_failover", "sentinel_kill_aof", "sentinel_replica_lag",
		"sentinel_partition_primary"} {
		spec, err := Load(name, DefaultKnown(reg))
		if err != nil {
			t.Fatal(err)
		}
		noAck := spec
		noAck.Config.AckReplicas = -1
		for _, c := range []struct {
			label, profile string
			spec           Spec
			pass           bool
		}{
			{"hardened", "hardened", spec, true},
			{"hardened without durable ack", "hardened", noAck, false},
			{"seed", "seed", spec, false},
		} {
			t.Run(name+"/"+c.label, func(t *testing.T) {
				o := runSpec(t, c.spec, c.profile, reg, 1)
				lost, _ := result(o, "lost")
				lat, _ := result(o, "latency")
				rec, _ := result(o, "recover_time")
				t.Logf("%s %s: %s; lost %v (by asynchronous replication %v) of %v; publish p99 before/during/after %v/%v/%v ms; recover %v ms; notes %q",
					name, c.label, o.Verdict, lost.Metrics["lost"], lost.Metrics["lost_async_replication"], lost.Metrics["acknowledged"],
					lat.Metrics["publish_p99_ms_before"], lat.Metrics["publish_p99_ms_during"], lat.Metrics["publish_p99_ms_after"],
					rec.Metrics["recover_ms"], o.Notes)
				if c.pass && o.Verdict != verdict.Pass {
					t.Errorf("%s: got %s; want PASS", c.label, o.Verdict)
				}
			})
		}
	}
}

// TestClusterHA runs the cluster scenarios in full against hardened (every
// check PASS) and seed (its verdict and the checks it fails, logged), with
// the time CLUSTER FAILOVER took to promote the replica in the notes:
// make test-ha (GONOGO_HA=1).
func TestClusterHA(t *testing.T) {
	needRedis(t)
	if os.Getenv("GONOGO_HA") == "" {
		t.Skip("set GONOGO_HA=1 (make test-ha) to run the cluster scenarios")
	}
	reg := profiles.Default()
	for _, name := range []string{"cluster_basic", "cluster_failover", "cluster_slot_migration"} {
		spec, err := Load(name, DefaultKnown(reg))
		if err != nil {
			t.Fatal(err)
		}
		for _, profile := range []string{"hardened", "seed"} {
			t.Run(name+"/"+profile, func(t *testing.T) {
				o := runSpec(t, spec, profile, reg, 1)
				var failed []string
				for _, r := range o.Results {
					if r.Verdict != verdict.Pass {
						failed = append(failed, r.Check+" "+string(r.Verdict))
					}
				}
				t.Logf("%s %s: %s; not passing %v; notes %q", name, profile, o.Verdict, failed, o.Notes)
				if profile == "hardened" && len(failed) > 0 {
					t.Errorf("hardened on %s: %v; want every check PASS", name, failed)
				}
				if name == "cluster_slot_migration" && profile == "hardened" && !slices.ContainsFunc(o.Notes, func(n string) bool {
					return strings.Contains(n, "cluster replies") && !strings.Contains(n, "ASK 0,") && !strings.Contains(n, "MOVED 0,")
				}) {
					t.Errorf("notes %q: want the migrations to have sent clients ASK and MOVED", o.Notes)
				}
			})
		}
	}
}
