package chaos

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/target"
)

func upstashClient(t *testing.T, u *UpstashSim) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(u.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.TLSConfig, opt.MaxRetries, opt.PoolSize, opt.Protocol = u.TLS(), -1, 1, 2
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// upstash-sim against a real redis-server: TLS only; the quota counts the
// commands the server executed, script-internal ones included, and
// answers with Upstash's text; a request past the size limit and a
// connection past the cap are refused with Upstash's texts; the
// commands/s cap holds commands back.
func TestUpstashSim(t *testing.T) {
	ctx := context.Background()
	u, err := StartUpstashSim(ctx, time.Millisecond, UpstashOptions{MaxRequest: 1000, Connections: 2}, target.ProcessOptions{Password: "s3cret-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	if u.Kind() != target.KindUpstashSim || !strings.HasPrefix(u.URL(), "rediss://") || strings.Contains(u.Redacted(), "s3cret-pw") {
		t.Errorf("kind %s, url %s", u.Kind(), u.Redacted())
	}
	rdb := upstashClient(t, u)
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	opt, _ := redis.ParseURL(strings.Replace(u.URL(), "rediss://", "redis://", 1))
	opt.MaxRetries, opt.DialTimeout, opt.ReadTimeout = -1, time.Second, time.Second
	plain := redis.NewClient(opt)
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Error("a plain client was served: want TLS only")
	}

	// Size: a 2 KB value is past the 1000-byte limit.
	if err := rdb.Set(ctx, "k", strings.Repeat("x", 2000), 0).Err(); err == nil || err.Error() != RequestSizeError {
		t.Errorf("large request: %v; want %q", err, RequestSizeError)
	}

	// Quota: 10 executed commands. A script of three calls executes four;
	// counted as the client sends them, 10 calls would pass.
	script := redis.NewScript(`redis.call('SET', KEYS[1], '1') redis.call('GET', KEYS[1]) redis.call('DEL', KEYS[1]) return 1`)
	if err := script.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	u.SetQuota(10)
	calls := 0
	var qerr error
	for ; calls < 10; calls++ {
		time.Sleep(3 * meterEvery) // the meter reads the server between calls
		if qerr = script.EvalSha(ctx, rdb, []string{"q"}).Err(); qerr != nil {
			break
		}
	}
	if calls != 3 || qerr == nil || !strings.HasPrefix(qerr.Error(), "ERR max requests limit exceeded") {
		t.Errorf("quota 10: %d script calls passed, then %v; want 3 (12 executed), then Upstash's quota error", calls, qerr)
	}
	u.SetQuota(0)
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Errorf("quota lifted: %v", err)
	}

	// Connections: 2 open, the third is refused.
	second := upstashClient(t, u)
	if err := second.Ping(ctx).Err(); err != nil {
		t.Errorf("second connection: %v", err)
	}
	third := upstashClient(t, u)
	if err := third.Ping(ctx).Err(); err == nil || err.Error() != ConnLimitError {
		t.Errorf("third connection: %v; want %q", err, ConnLimitError)
	}
	third.Close()

	// Rate: 150 PINGs at 50 executed commands a second take at least 2 s
	// (the meter's own INFOs are not counted against it).
	u.SetRate(50)
	start := time.Now()
	for i := 0; i < 150; i++ {
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatalf("ping %d under the rate cap: %v", i, err)
		}
	}
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Errorf("150 commands at 50/s took %s; want about 2 s or more", el)
	}
	u.SetRate(0)
}
