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
	closesClean(t, c.Nodes(), c.Close)
}
