package chaos

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/gonogo/harness/target"
)

func quotaReply(limit, usage int) string { return "-" + QuotaError(limit, usage) + "\r\n" }

func TestQuotaCountsPipelinedCommands(t *testing.T) {
	_, p, env := setup(t, target.ProcessOptions{})
	c := dialRaw(t, p.Listen())
	c.send(t, "PING") // before the quota: not counted
	c.replies(t, 1)
	f := Quota{Limit: 3}
	inject(t, env, f)
	c.send(t, "SET a 1", "PING", "GET a", "PING", "GET a")
	got := c.replies(t, 5)
	want := []string{"+OK\r\n", "+PONG\r\n", "$1\r\n1\r\n", quotaReply(3, 3), quotaReply(3, 3)}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reply %d: got %q; want %q (all: %q)", i+1, got[i], want[i], got)
		}
	}
	// Inline commands count too, and a second connection shares the quota.
	c2 := dialRaw(t, p.Listen())
	c2.Write([]byte("PING\r\n"))
	if got := c2.replies(t, 1)[0]; got != quotaReply(3, 3) {
		t.Fatalf("inline PING on another connection: got %q; want %q", got, quotaReply(3, 3))
	}
	undo(t, env, f)
	c.send(t, "PING")
	if got := c.replies(t, 1)[0]; got != "+PONG\r\n" {
		t.Fatalf("PING after undo: got %q; want +PONG", got)
	}
}

func TestQuotaKeepsOrderBehindSlowReplies(t *testing.T) {
	_, p, env := setup(t, target.ProcessOptions{})
	inject(t, env, Quota{Limit: 1})
	c := dialRaw(t, p.Listen())
	var got []string
	d := timed(func() {
		c.send(t, "BLPOP nothing 0.2", "PING")
		got = c.replies(t, 2)
	})
	if got[0] != "*-1\r\n" || got[1] != quotaReply(1, 1) || d < 200*time.Millisecond {
		t.Fatalf("replies %q after %s; want the null of the 200ms BLPOP first, then the quota error", got, d)
	}
}

func TestQuotaWithGoRedis(t *testing.T) {
	ctx := context.Background()
	_, p, env := setup(t, target.ProcessOptions{})
	// Connect (HELLO, CLIENT SETINFO: commands too) for both calls and
	// pipelines before the quota, so the quota sees only what follows.
	rdb := rclient(t, p.Listen(), nil)
	rdb.Ping(ctx)
	rdb.Pipelined(ctx, func(pp redis.Pipeliner) error { return pp.Ping(ctx).Err() })
	inject(t, env, Quota{Limit: 2})
	cmds, _ := rdb.Pipelined(ctx, func(pp redis.Pipeliner) error {
		for i := 0; i < 4; i++ {
			pp.Incr(ctx, "n")
		}
		return nil
	})
	want := QuotaError(2, 2)
	for i, c := range cmds {
		err := c.Err()
		if i < 2 && err != nil {
			t.Errorf("command %d: %v; want success", i+1, err)
		}
		if i >= 2 && (err == nil || err.Error() != want) {
			t.Errorf("command %d: got %v; want %q", i+1, err, want)
		}
	}
	if err := rdb.Get(ctx, "n").Err(); err == nil || err.Error() != want {
		t.Fatalf("GET past the quota: got %v; want %q", err, want)
	}
}

func TestQuotaOnSubscribedRESP2Connection(t *testing.T) {
	_, p, env := setup(t, target.ProcessOptions{})
	inject(t, env, Quota{Limit: 3})
	c := dialRaw(t, p.Listen())
	// SUBSCRIBE answers twice (two channels), PING once; the fourth
	// command is past the quota and its error must come last.
	c.send(t, "SUBSCRIBE a b", "PING", "PING", "PING")
	got := c.replies(t, 5)
	for i, prefix := range []string{"*3\r\n$9\r\nsubscribe\r\n$1\r\na", "*3\r\n$9\r\nsubscribe\r\n$1\r\nb", "*2\r\n$4\r\npong", "*2\r\n$4\r\npong"} {
		if !strings.HasPrefix(got[i], prefix) {
			t.Fatalf("reply %d: got %q; want %q... (all: %q)", i+1, got[i], prefix, got)
		}
	}
	if got[4] != quotaReply(3, 3) {
		t.Fatalf("reply 5: got %q; want %q", got[4], quotaReply(3, 3))
	}
}

func TestPubSubThroughTheGate(t *testing.T) {
	ctx := context.Background()
	_, p, _ := setup(t, target.ProcessOptions{})
	rdb := rclient(t, p.Listen(), nil)
	sub := rdb.Subscribe(ctx, "ch")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Publish(ctx, "ch", "hello").Err(); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || msg.Payload != "hello" {
		t.Fatalf("message %v, %v; want hello", msg, err)
	}
}

func TestConnLimit(t *testing.T) {
	_, p, env := setup(t, target.ProcessOptions{})
	f := ConnLimit{Limit: 2}
	inject(t, env, f)
	a, b := dialRaw(t, p.Listen()), dialRaw(t, p.Listen())
	for _, c := range []*rawConn{a, b} {
		c.send(t, "PING")
		if got := c.replies(t, 1)[0]; got != "+PONG\r\n" {
			t.Fatalf("PING within the limit: got %q; want +PONG", got)
		}
	}
	c := dialRaw(t, p.Listen())
	c.send(t, "PING", "PING")
	for _, got := range c.replies(t, 2) {
		if got != "-"+ConnLimitError+"\r\n" {
			t.Fatalf("PING on the third connection: got %q; want -%s", got, ConnLimitError)
		}
	}
	if err := pingErr(t, p.Listen(), nil); err == nil || !strings.Contains(err.Error(), ConnLimitError) {
		t.Fatalf("go-redis PING past the limit: got %v; want %q", err, ConnLimitError)
	}
	a.Close()
	eventually(t, 3*time.Second, "a slot freed by a closed connection", func() bool {
		c := dialRaw(t, p.Listen())
		c.send(t, "PING")
		return c.replies(t, 1)[0] == "+PONG\r\n"
	})
	undo(t, env, f)
	for i := 0; i < 3; i++ {
		c := dialRaw(t, p.Listen())
		c.send(t, "PING")
		if got := c.replies(t, 1)[0]; got != "+PONG\r\n" {
			t.Fatalf("PING after undo: got %q; want +PONG", got)
		}
	}
	// The refusal lasts until Undo: the connection refused above is
	// served now (explore seed 5050, lost-6cdcb167: a connection a client
	// kept in its pool was refused for good, and the layer never wrote to
	// Redis again).
	c.send(t, "PING", "ECHO x")
	if got := c.replies(t, 2); got[0] != "+PONG\r\n" || got[1] != "$1\r\nx\r\n" {
		t.Fatalf("PING, ECHO x after undo on a connection refused before: got %q; want +PONG, x", got)
	}
}

func TestHandshakeStall(t *testing.T) {
	ctx := context.Background()
	r, p, env := setup(t, target.ProcessOptions{TLS: true})
	held := rclient(t, p.Listen(), r.TLS())
	if err := held.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	f := &TLSFault{Kind: TLSHandshakeStall}
	inject(t, env, f)
	c := redis.NewClient(&redis.Options{Addr: p.Listen(), TLSConfig: r.TLS(), MaxRetries: -1, DialerRetries: 1, DialTimeout: 300 * time.Millisecond})
	defer c.Close()
	err := c.Ping(ctx).Err()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("PING of a new TLS client: got %v; want a handshake timeout", err)
	}
	if err := held.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING on a connection open before the stall: %v", err)
	}
	undo(t, env, f)
	if err := pingErr(t, p.Listen(), r.TLS()); err != nil {
		t.Fatalf("PING after undo: %v", err)
	}
}

func TestEmbeddedCloseLeavesNoGoroutines(t *testing.T) {
	ctx := context.Background()
	r := startRedis(t, target.ProcessOptions{})
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := NewEmbedded(ctx)
	p, err := e.NewProxy("redis", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	p.SetHandshakeStall(true)
	held := dialRaw(t, p.Listen()) // held at the gate
	p.SetHandshakeStall(false)
	rdb := redis.NewClient(&redis.Options{Addr: p.Listen(), MaxRetries: -1})
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := (Latency{Latency: time.Millisecond}).Inject(ctx, Env{Proxy: p}); err != nil {
		t.Fatal(err)
	}
	rdb.Close()
	held.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
