package chaos

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/target"
)

// TestRemoteSim checks the stand-in for Upstash against a real redis-server:
// TLS verified against the generated CA, every round trip at least the RTT,
// the process abilities still there, and nothing left after Close.
func TestRemoteSim(t *testing.T) {
	ctx := context.Background()
	const rtt = 40 * time.Millisecond
	r, err := StartRemoteSim(ctx, rtt, target.ProcessOptions{Password: "s3cret-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if got := r.Kind(); got != "remote-sim" {
		t.Errorf("Kind: got %q; want remote-sim", got)
	}
	if !strings.HasPrefix(r.URL(), "rediss://") || !strings.Contains(r.URL(), r.Addr()) {
		t.Errorf("URL: got %q; want rediss:// to the proxy %s", r.Redacted(), r.Addr())
	}
	if strings.Contains(r.Redacted(), "s3cret-pw") {
		t.Errorf("Redacted shows the password: %q", r.Redacted())
	}
	if r.TLS() == nil || r.TLS().InsecureSkipVerify {
		t.Fatalf("TLS: got %v; want a verifying client configuration", r.TLS())
	}
	opt, err := redis.ParseURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.TLSConfig = r.TLS()
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING over TLS through the proxy: %v", err)
	}
	// A warm connection: each PING is one round trip through both toxics.
	for i := 0; i < 3; i++ {
		start := time.Now()
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < rtt-2*time.Millisecond {
			t.Errorf("PING %d: took %s; want at least the RTT %s", i, d, rtt)
		}
	}
	if got := r.RTT(); got != rtt {
		t.Errorf("RTT: got %s; want %s", got, rtt)
	}
	var _ target.Killer = r // faults find the process's abilities
	pid := r.Pid()
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if pid == 0 || r.Pid() != 0 {
		t.Errorf("server pid before/after Close: %d/%d; want running, then gone", pid, r.Pid())
	}
}

func TestRemoteSimDefaultRTT(t *testing.T) {
	r, err := StartRemoteSim(context.Background(), 0, target.ProcessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.RTT() != DefaultRTT {
		t.Errorf("RTT: got %s; want %s", r.RTT(), DefaultRTT)
	}
	if _, err := StartRemoteSim(context.Background(), -time.Millisecond, target.ProcessOptions{}); err == nil {
		t.Error("negative RTT: got no error; want one")
	}
}
