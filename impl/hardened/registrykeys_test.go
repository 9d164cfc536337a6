package hardened

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/target"
	"github.com/redis/go-redis/v9"
)

// The cleanup reads the expired connections and their flows, then
// removes them: a connection heartbeated in between is kept, and one
// whose flow changed in between is left alone and reported.
func TestRemoveRechecks(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	rdb := conformance.Client(t, p)
	ctx := context.Background()
	k := keys{prefix: "t:"}
	past := strconv.FormatInt(time.Now().Add(-time.Minute).UnixMilli(), 10)
	for _, c := range []struct{ id, flow string }{{"kept", "f"}, {"gone", "f"}, {"moved", "f"}} {
		if err := registerScript.Run(ctx, rdb, []string{k.live(), k.connFlow(), k.conns(c.flow), k.connInfo(c.flow)},
			c.id, c.flow, past, "{}", 60000).Err(); err != nil {
			t.Fatal(err)
		}
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	read, err := expiredScript.Run(ctx, rdb, []string{k.live(), k.connFlow()}, now, 1000).StringSlice()
	if err != nil || len(read) != 6 {
		t.Fatalf("expired: %v, %v; want 3 connections and their flows", read, err)
	}
	// Between the read and the removal: "kept" heartbeats, "moved" is
	// registered again on flow g.
	rdb.ZAdd(ctx, k.live(), redis.Z{Score: float64(time.Now().Add(time.Minute).UnixMilli()), Member: "kept"})
	rdb.HSet(ctx, k.connFlow(), "moved", "g")
	res, err := removeScript.Run(ctx, rdb, []string{k.live(), k.connFlow(), k.conns("f"), k.connInfo("f")},
		now, "kept", "f", 3, "gone", "f", 3, "moved", "f", 3).Slice()
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0] != int64(1) || res[1] != "moved" {
		t.Errorf("remove returned %v; want 1 removed (gone), moved reported", res)
	}
	members, _ := rdb.ZRange(ctx, k.conns("f"), 0, -1).Result()
	if len(members) != 2 || members[0] == "gone" || members[1] == "gone" {
		t.Errorf("flow f holds %v; want kept and moved, not gone", members)
	}
}

// A heartbeat of a connection this instance registered executes 3
// commands (EVALSHA, two ZADD), its flow keys' TTL refreshed once a third
// of it; a connection Redis lost is registered again in full.
func TestBeat(t *testing.T) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	rdb := conformance.Client(t, p)
	ctx := context.Background()
	l, err := New(ctx, impl.Config{URL: p.URL(), Enabled: true, SSE: true, KeyPrefix: "b:", RegistryTTL: 3 * time.Second,
		CleanupInterval: 300 * time.Millisecond, CallBudget: time.Second, PublishBudget: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	k := keys{prefix: "b:"}
	if err := l.Registry.Register(ctx, impl.Conn{ID: "c", FlowID: "f"}); err != nil {
		t.Fatal(err)
	}
	calls := func() map[string]int64 { return conformance.Calls(t, rdb) }
	before := calls()
	if err := l.Registry.Heartbeat(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	after := calls()
	if d := after["zadd"] - before["zadd"]; d != 2 || after["hset"] != before["hset"] || after["pexpire"] != before["pexpire"] {
		t.Errorf("heartbeat right after register: zadd %d, hset %d, pexpire %d more; want 2, 0, 0",
			d, after["hset"]-before["hset"], after["pexpire"]-before["pexpire"])
	}
	time.Sleep(time.Duration(l.Registry.(*Registry).keyTTL())*time.Millisecond/3 + 50*time.Millisecond)
	before = calls()
	if err := l.Registry.Heartbeat(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if d := calls()["pexpire"] - before["pexpire"]; d != 2 {
		t.Errorf("heartbeat a third of the key TTL later: %d PEXPIRE; want 2", d)
	}
	// Redis loses the connection: the next heartbeat registers it again.
	rdb.Del(ctx, k.conns("f"), k.connInfo("f"))
	rdb.HDel(ctx, k.connFlow(), "c")
	if err := l.Registry.Heartbeat(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	ids, err := l.Registry.Lookup(ctx, "f")
	flow, _ := rdb.HGet(ctx, k.connFlow(), "c").Result()
	info, _ := rdb.HGet(ctx, k.connInfo("f"), "c").Result()
	if err != nil || len(ids) != 1 || flow != "f" || info == "" {
		t.Errorf("after Redis lost it: lookup %v (%v), connflow %q, conninfo %q; want it registered again", ids, err, flow, info)
	}
}
