package target

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestClusterLifecycle starts a cluster target with a password (redis-cli
// --cluster create), writes keys of many slots through go-redis's cluster
// client, has a replica take over (CLUSTER FAILOVER), reads them back, and
// checks that Close leaves no process and no directory behind.
func TestClusterLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server and redis-cli")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const pw = "s3cret-cluster"
	c, err := StartCluster(ctx, ClusterOptions{Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if strings.Contains(c.Redacted(), pw) {
		t.Fatalf("Redacted %q shows the password", c.Redacted())
	}
	opt, err := redis.ParseClusterURL(c.URL())
	if err != nil {
		t.Fatalf("ParseClusterURL(%s): %v", c.Redacted(), err)
	}
	rdb := redis.NewClusterClient(opt)
	defer rdb.Close()
	for i := range 50 {
		if err := rdb.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatalf("SET k%d: %v", i, err)
		}
	}
	took, err := c.Failover(ctx)
	if err != nil {
		t.Fatalf("Failover: %v", err)
	}
	t.Logf("CLUSTER FAILOVER: replica a primary after %s", took.Round(time.Millisecond))
	for i := range 50 {
		var err error
		for range 100 {
			if err = rdb.Get(ctx, fmt.Sprintf("k%d", i)).Err(); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("GET k%d after the failover: %v", i, err)
		}
	}
	migrate(ctx, t, c, rdb, pw)
	killPrimary(ctx, t, c, rdb)
	closesClean(t, c.Nodes(), c.Close)
}

// killPrimary kills the primary of flow-0's slot (primary_kill on a
// cluster): its replica is promoted, the cluster client writes that slot
// again, and the restarted node rejoins as a replica; the cluster is back
// to three primaries with a replica each.
func killPrimary(ctx context.Context, t *testing.T, c *Cluster, rdb *redis.ClusterClient) {
	t.Helper()
	key := "{" + KillTag + "}:k"
	slot, err := c.keySlot(ctx, KillTag)
	if err != nil {
		t.Fatal(err)
	}
	before, err := c.liveOwner(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	took, err := c.KillPrimary(ctx)
	if err != nil {
		t.Fatalf("KillPrimary: %v", err)
	}
	t.Logf("primary %s killed: its replica a primary, cluster ok, after %s", before.Addr(), took.Round(time.Millisecond))
	if before.Pid() != 0 {
		t.Errorf("the killed primary %s still runs", before.Addr())
	}
	if after, err := c.liveOwner(ctx, slot); err != nil || after == before {
		t.Errorf("slot %d served by %v (%v) after the kill; want the promoted replica", slot, after, err)
	}
	// go-redis's cluster client keeps routing the slot to the dead node
	// (connection refused) until its periodic reload, 60 s by default
	// (redis/go-redis#3979): reload it, as hardened does on a dial error.
	rdb.ReloadState(ctx)
	t0 := time.Now()
	for time.Since(t0) < 10*time.Second {
		if err = rdb.Set(ctx, key, "v", 0).Err(); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("SET %s after the kill: %v", key, err)
	}
	t.Logf("the cluster client wrote the slot again %s after the promotion", time.Since(t0).Round(time.Millisecond))
	if err := c.RestartKilled(ctx); err != nil {
		t.Fatalf("RestartKilled: %v", err)
	}
	if r, err := role(ctx, before); err != nil || r != "slave" {
		t.Errorf("the restarted node is %q (%v); want a replica", r, err)
	}
}

// migrate moves the slot of {flow:m}, holding three keys, to another
// primary: while it is split the source answers ASK, once handed over
// MOVED, and the cluster client reads every key throughout.
func migrate(ctx context.Context, t *testing.T, c *Cluster, rdb *redis.ClusterClient, pw string) {
	t.Helper()
	keys := []string{"{flow:m}:a", "{flow:m}:b", "{flow:m}:c"}
	for _, k := range keys {
		if err := rdb.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	m, err := c.MigrateSlot(ctx, keys[0], time.Millisecond)
	if err != nil {
		t.Fatalf("MigrateSlot: %v", err)
	}
	if m.Moved != len(keys) {
		t.Errorf("moved %d keys; want %d", m.Moved, len(keys))
	}
	if _, err := c.MigrateSlot(ctx, keys[1], 0); err == nil || !strings.Contains(err.Error(), "already moving") {
		t.Errorf("a second migration of the slot: %v; want it refused", err)
	}
	src := redis.NewClient(&redis.Options{Addr: m.From(), Password: pw, MaxRetries: -1})
	defer src.Close()
	readAll := func(when string) {
		for _, k := range keys {
			if v, err := rdb.Get(ctx, k).Result(); err != nil || v != k {
				t.Errorf("%s: GET %s through the cluster client = %q, %v; want %q", when, k, v, err, k)
			}
		}
	}
	if err := src.Get(ctx, keys[0]).Err(); err == nil || !strings.HasPrefix(err.Error(), "ASK ") {
		t.Errorf("GET on the source while the slot is split: %v; want ASK", err)
	}
	readAll("split")
	if err := m.Finish(ctx); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if err := src.Get(ctx, keys[0]).Err(); err == nil || !strings.HasPrefix(err.Error(), "MOVED ") || !strings.HasSuffix(err.Error(), m.To()) {
		t.Errorf("GET on the source after the handover: %v; want MOVED to %s", err, m.To())
	}
	readAll("handed over")
}
