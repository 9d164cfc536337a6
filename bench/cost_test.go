package bench

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/gonogo/harness/impl/seed"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/redis/go-redis/v9"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// The projection's arithmetic, by hand: 1 event/s at 3 commands, 10
// connections heartbeating every 2 s at 1, 2 reads/s at 1 with half
// missing (a fill at 2), 1 invalidate/s at 1, 2 instances idle at 0.5/s:
// 3 + 5 + 2 + 2 + 1 + 1 = 14 commands/s.
func TestProjectTrafficCost(t *testing.T) {
	tr := Traffic{EventsPerSec: 1, SSEConnections: 10, HeartbeatEvery: 2 * time.Second, CacheReadsPerSec: 2,
		CacheWritesPerSec: 1, HitRate: 0.5, Instances: 2}
	idle, conns := 0.5, 7
	c := ProfileCost{Profile: "x",
		Client:           map[string]float64{OpPublish: 1, OpRegHeartbeat: 1, OpCacheGet: 1, OpCacheSet: 1, OpCacheInvalidate: 1},
		Server:           map[string]float64{OpPublish: 3, OpRegHeartbeat: 1, OpCacheGet: 1, OpCacheSet: 2, OpCacheInvalidate: 1},
		IdleClientPerSec: 0.25, IdleServerPerSec: &idle, IdleConnections: &conns}
	month := float64(daysPerMonth * 86400)

	payg := ProjectCost(tr, c, Plan{Name: "payg", PricePer100K: 0.2, CommandsPerSec: 10, ScriptCommands: ScriptUnknown, Connections: 10})
	if payg.Basis != "server" || !near(payg.PerSec, 14, 1e-9) || !near(payg.PerMonth, 14*month, 1e-3) {
		t.Fatalf("payg: basis %s, %g/s, %g/month; want server, 14/s", payg.Basis, payg.PerSec, payg.PerMonth)
	}
	if !near(payg.IdlePerMonth, month, 1e-3) || payg.CostMonth == nil || !near(*payg.CostMonth, 0.2*14*month/1e5, 1e-6) ||
		!near(*payg.IdleCostMonth, 0.2*month/1e5, 1e-6) {
		t.Errorf("payg cost %v, idle %v / %g; want %g, %g", payg.CostMonth, payg.IdleCostMonth, payg.IdlePerMonth, 0.2*14*month/1e5, 0.2*month/1e5)
	}
	if !payg.OverRate || payg.Quota != quantityNone || payg.DaysToQuota != nil || *payg.Connections != 14 || payg.ConnectionCap != 10 {
		t.Errorf("payg: over rate %v, quota %q %v, connections %v cap %d; want over, none, 14 of 10", payg.OverRate, payg.Quota, payg.DaysToQuota, *payg.Connections, payg.ConnectionCap)
	}

	// A plan known not to bill script commands is projected with the
	// client's counts: 1 + 5 + 2 + 1 + 1 + 0.5 = 10.5.
	free := ProjectCost(tr, c, Plan{Name: "m", CommandsPerMonth: 10.5 * 86400 * 15, ScriptCommands: ScriptFree})
	if free.Basis != "client" || !near(free.PerSec, 10.5, 1e-9) || free.DaysToQuota == nil || !near(*free.DaysToQuota, 15, 1e-9) ||
		!strings.Contains(free.Quota, "15.0 days") {
		t.Errorf("monthly quota: basis %s, %g/s, days %v %q; want client, 10.5/s, 15 days", free.Basis, free.PerSec, free.DaysToQuota, free.Quota)
	}
	day := ProjectCost(tr, c, Plan{Name: "d", CommandsPerDay: 14 * 3600 * 6})
	if day.DaysToQuota == nil || !near(*day.DaysToQuota, 0.25, 1e-9) || !strings.Contains(day.Quota, "6.0 h each day") {
		t.Errorf("daily quota: days %v %q; want 0.25 (6 h)", day.DaysToQuota, day.Quota)
	}
	first := ProjectCost(tr, c, Plan{Name: "small", CommandsPerMonth: 14 * 3600 * 6})
	if first.DaysToQuota == nil || !near(*first.DaysToQuota, 0.25, 1e-9) || first.Quota != "runs out after 6.0 h" {
		t.Errorf("small monthly quota: days %v %q; want 0.25 (after 6 h, once)", first.DaysToQuota, first.Quota)
	}
	lasts := ProjectCost(tr, c, Plan{Name: "big", CommandsPerMonth: 1e12})
	if lasts.Quota != "lasts the month" || lasts.DaysToQuota == nil || *lasts.DaysToQuota < daysPerMonth {
		t.Errorf("a large quota: %q %v; want it to last the month", lasts.Quota, lasts.DaysToQuota)
	}
	unknown := ProjectCost(tr, c, Plan{Name: "u", Unknown: []string{"commands_month", "price_month_usd"}})
	if unknown.Quota != ScriptUnknown || unknown.CostMonth != nil {
		t.Errorf("unknown quota and price: %q, cost %v; want unknown, nil", unknown.Quota, unknown.CostMonth)
	}
	// Without the server's counts every plan falls back to the client's.
	c.Server, c.IdleServerPerSec = nil, nil
	if p := ProjectCost(tr, c, Plan{Name: "payg", ScriptCommands: ScriptBilled}); p.Basis != "client" || !near(p.PerSec, 10.5, 1e-9) {
		t.Errorf("no commandstats: basis %s, %g/s; want client 10.5", p.Basis, p.PerSec)
	}
}

func TestTrafficValidate(t *testing.T) {
	if err := TrackerTraffic().Validate(); err != nil {
		t.Fatalf("the tracker's traffic: %v", err)
	}
	for name, mut := range map[string]func(*Traffic){
		"events-per-sec":  func(t *Traffic) { t.EventsPerSec = -1 },
		"nan":             func(t *Traffic) { t.CacheReadsPerSec = math.NaN() },
		"hit-rate":        func(t *Traffic) { t.HitRate = 1.5 },
		"instances":       func(t *Traffic) { t.Instances = 0 },
		"heartbeat":       func(t *Traffic) { t.HeartbeatEvery = time.Millisecond },
		"sse-connections": func(t *Traffic) { t.SSEConnections = 2e6 },
	} {
		tr := TrackerTraffic()
		mut(&tr)
		if err := tr.Validate(); exitcode.Of(err) != exitcode.BadInput {
			t.Errorf("%s: err %v; want bad input", name, err)
		}
	}
}

// chattyProfile is hardened with a background PING every 50 ms on a
// connection of its own, named like the layer's, and a publish that also
// runs a script of three commands: the idle rate and the script-internal
// commands that MeasureCosts must see.
func chattyProfile(ctx context.Context, cfg impl.Config) (*impl.Layer, error) {
	l, err := hardened.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rdb, err := impl.NewClient(impl.Config{URL: cfg.URL, TLS: cfg.TLS, Hooks: cfg.Hooks, PoolSize: 1, ClientName: cfg.ClientName})
	if err != nil {
		l.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				rdb.Ping(context.Background())
			case <-done:
				return
			}
		}
	}()
	extra := redis.NewScript(`redis.call('SET', KEYS[1], 'a'); redis.call('GET', KEYS[1]); redis.call('DEL', KEYS[1]); return 1`)
	l.Bus = chattyBus{Bus: l.Bus, rdb: rdb, s: extra, key: cfg.KeyPrefix + "chatty"}
	closeLayer := l.Close
	l.Close = func() error {
		close(done)
		rdb.Close()
		return closeLayer()
	}
	return l, nil
}

type chattyBus struct {
	impl.Bus
	rdb *redis.Client
	s   *redis.Script
	key string
}

func (b chattyBus) Publish(ctx context.Context, e impl.Event) error {
	if err := b.s.Run(ctx, b.rdb, []string{b.key}).Err(); err != nil {
		return err
	}
	return b.Bus.Publish(ctx, e)
}

// MeasureCosts against a real redis-server: seed's publish is three
// commands sent and executed (XADD, EXPIRE, PUBLISH); hardened's is one
// sent (EVALSHA) and at least three executed (EVALSHA, XADD, PUBLISH); the
// chatty mutant's publish executes four more (EVALSHA and its three) and
// its idle instance about 20 PINGs a second more.
func TestMeasureCosts(t *testing.T) {
	p := startRedis(t)
	reg := &impl.Profiles{}
	reg.Register(seed.Profile, seed.New)
	reg.Register(hardened.Profile, hardened.New)
	reg.Register("chatty", chattyProfile)
	costs, err := MeasureCosts(context.Background(), CostConfig{Target: p, Layers: reg, Profiles: []string{"seed", "hardened", "chatty"},
		Idle: time.Second, Ops: 20, CallBudget: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]ProfileCost{}
	for _, c := range costs {
		by[c.Profile] = c
		if c.Server == nil || c.IdleServerPerSec == nil || c.IdleConnections == nil || c.LoadConnections == nil {
			t.Fatalf("%s: server side missing: %+v", c.Profile, c)
		}
		t.Logf("%s: client %v server %v idle %.2f/s client, %.2f/s server %v, connections %d idle, %d after ops",
			c.Profile, c.Client, c.Server, c.IdleClientPerSec, *c.IdleServerPerSec, c.IdleByCommand, *c.IdleConnections, *c.LoadConnections)
	}
	s, h, m := by["seed"], by["hardened"], by["chatty"]
	if !near(s.Client[OpPublish], 3, 0.01) || !near(s.Server[OpPublish], 3, 0.3) {
		t.Errorf("seed publish: %g sent, %g executed; want 3 and 3", s.Client[OpPublish], s.Server[OpPublish])
	}
	if !near(h.Client[OpPublish], 1, 0.01) || h.Server[OpPublish] < 2.9 || h.Server[OpPublish] > 4.3 {
		t.Errorf("hardened publish: %g sent, %g executed; want 1 and 3 to 4", h.Client[OpPublish], h.Server[OpPublish])
	}
	if d := m.Server[OpPublish] - h.Server[OpPublish]; !near(d, 4, 0.5) || !near(m.Client[OpPublish]-h.Client[OpPublish], 1, 0.1) {
		t.Errorf("chatty publish: %g executed more than hardened (%g sent more); want 4 (1: its first call an EVALSHA and an EVAL)", d, m.Client[OpPublish]-h.Client[OpPublish])
	}
	if d := *m.IdleServerPerSec - *h.IdleServerPerSec; d < 12 || d > 24 {
		t.Errorf("chatty idle: %g commands/s more than hardened; want about 20 (a PING every 50 ms)", d)
	}
	// The production gate's bound (reports/gates.yaml connections_idle):
	// two idle instances within a 30-connection plan.
	for _, c := range []ProfileCost{s, h} {
		if *c.IdleConnections > 15 {
			t.Errorf("%s: an idle instance holds %d connections; want at most 15", c.Profile, *c.IdleConnections)
		}
	}
	// The report renders every profile and plan.
	plans := Plans()
	r := NewCostReport(TrackerTraffic(), "process", costs, []Plan{plans["upstash-free"], plans["upstash-payg"]})
	var b bytes.Buffer
	r.WriteTable(&b)
	if len(r.Projections) != 6 || !strings.Contains(b.String(), "upstash-payg") || !strings.Contains(b.String(), "hardened") {
		t.Errorf("report: %d projections; table:\n%s", len(r.Projections), b.String())
	}
}

func TestMeasureCostsBadInput(t *testing.T) {
	reg := seedOnly()
	for name, cfg := range map[string]CostConfig{
		"idle":    {Layers: reg, Profiles: []string{"seed"}, Idle: time.Millisecond},
		"ops":     {Layers: reg, Profiles: []string{"seed"}, Ops: -1},
		"profile": {Layers: reg, Profiles: []string{"nope"}},
		"none":    {Layers: reg},
	} {
		if _, err := MeasureCosts(context.Background(), cfg); exitcode.Of(err) != exitcode.BadInput {
			t.Errorf("%s: err %v; want bad input", name, err)
		}
	}
}
