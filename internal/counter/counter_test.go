package counter_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/target"
)

func TestCountsRoundTripsAndCommands(t *testing.T) {
	ctx := context.Background()
	p, err := target.StartProcess(ctx, target.ProcessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	h := counter.New()
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1, PoolSize: 2})
	rdb.AddHook(h)
	defer rdb.Close()

	pub := counter.WithOp(ctx, "publish")
	if _, err := rdb.Pipelined(pub, func(pl redis.Pipeliner) error {
		pl.XAdd(pub, &redis.XAddArgs{Stream: "s", Values: []string{"k", "v"}})
		pl.Publish(pub, "c", "m")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	get := counter.WithOp(ctx, "cache_get")
	rdb.Get(get, "missing") // redis.Nil is not an error for counting
	rdb.Set(get, "k", "v", 0)

	snap := h.Snapshot()
	if got := snap["publish"]; got.RoundTrips != 1 || got.Commands != 2 || got.ByCommand["xadd"] != 1 {
		t.Errorf("publish = %+v; want 1 round trip, 2 commands, 1 xadd", got)
	}
	if got := snap["cache_get"]; got.RoundTrips != 2 || got.Commands != 2 || got.Errors != 0 {
		t.Errorf("cache_get = %+v; want 2 round trips, 2 commands, 0 errors", got)
	}
	if h.Dials() < 1 {
		t.Errorf("Dials() = %d; want >= 1", h.Dials())
	}
	if got := counter.Op(ctx); got != "other" {
		t.Errorf("Op(untagged) = %q; want other", got)
	}
	h.Reset()
	if len(h.Ops()) != 0 || h.Dials() != 0 {
		t.Errorf("Reset left %v, %d dials", h.Ops(), h.Dials())
	}
}

func TestAddMergesCountsMadeElsewhere(t *testing.T) {
	h := counter.New()
	h.Add("publish", counter.Counts{RoundTrips: 2, Commands: 6, Errors: 1, ByCommand: map[string]int64{"xadd": 2}})
	h.Add("publish", counter.Counts{RoundTrips: 1, Commands: 3, ByCommand: map[string]int64{"xadd": 1, "expire": 1}})
	h.AddDials(4)
	got := h.Snapshot()["publish"]
	if got.RoundTrips != 3 || got.Commands != 9 || got.Errors != 1 || got.ByCommand["xadd"] != 3 || got.ByCommand["expire"] != 1 {
		t.Errorf("publish = %+v; want 3 round trips, 9 commands, 1 error, 3 xadd, 1 expire", got)
	}
	if h.Dials() != 4 {
		t.Errorf("Dials() = %d; want 4", h.Dials())
	}
}

// TestCountsBytes: the bytes of a command and its reply, exactly as RESP
// puts them on the wire (inside TLS on a TLS connection); and the wrapped
// connections still pass go-redis's pool health check, which finds a
// connection the server closed and dials a new one instead of failing.
func TestCountsBytes(t *testing.T) {
	for _, tls := range []bool{false, true} {
		ctx := context.Background()
		p, err := target.StartProcess(ctx, target.ProcessOptions{TLS: tls})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		h := counter.New()
		rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), TLSConfig: p.TLS(), MaxRetries: -1, PoolSize: 1})
		rdb.AddHook(h)
		defer rdb.Close()
		if err := rdb.Ping(ctx).Err(); err != nil { // dial and HELLO
			t.Fatal(err)
		}
		out, in := h.Bytes()
		if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		o, i := h.Bytes()
		// *3 $3 set $1 k $1 v (27 bytes), +OK (5 bytes)
		if o-out != 27 || i-in != 5 {
			t.Errorf("tls %v: SET k v counted %d bytes out, %d in; want 27 and 5", tls, o-out, i-in)
		}

		// The server drops the idle connection; the next command gets a
		// new one (TLS: the check cannot see inside TLS, so only on TCP).
		if !tls {
			admin := redis.NewClient(&redis.Options{Addr: p.Addr()})
			if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
				t.Fatal(err)
			}
			admin.Close()
			dials := h.Dials()
			if err := rdb.Get(ctx, "k").Err(); err != nil {
				t.Errorf("GET after the server closed the pooled connection: %v (the health check did not see through the wrapper)", err)
			}
			if h.Dials() != dials+1 {
				t.Errorf("%d dials after the server closed the connection; want %d", h.Dials(), dials+1)
			}
		}
		h.Reset()
		if o, i := h.Bytes(); o != 0 || i != 0 {
			t.Errorf("Reset left %d/%d bytes", o, i)
		}
	}
}
