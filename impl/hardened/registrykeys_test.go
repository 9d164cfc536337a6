package hardened

import (
	"context"
	"strconv"
	"testing"
	"time"

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
