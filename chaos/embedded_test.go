package chaos

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gonogo/harness/target"
)

// TestStuckToxiproxy: a client that asked for more than its socket holds
// and stopped reading backs its proxy link up to Redis; Toxiproxy then
// holds a toxic change on that proxy for as long as the client does not
// read (for good once it closes: explore seed 6060 hung so). The change
// is abandoned at stuckAfter with ErrStuck, calls fail at once while it
// is outstanding, and the proxy works again, and closes cleanly, once the
// client read what was owed.
func TestStuckToxiproxy(t *testing.T) {
	defer func(d time.Duration) { stuckAfter = d }(stuckAfter)
	stuckAfter = time.Second
	ctx := context.Background()
	r := startRedis(t, target.ProcessOptions{})
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := NewEmbedded(ctx)
	defer e.Close()
	p, err := e.NewProxy("redis", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	direct := rclient(t, r.Addr(), nil)
	if err := direct.Set(ctx, "big", strings.Repeat("x", 1<<20), 0).Err(); err != nil {
		t.Fatal(err)
	}
	// slow_close holds no buffer of its own: it forwards each chunk with
	// a plain channel send, which is what blocks.
	lat := Toxic{Name: "lat", Type: "slow_close", Attributes: map[string]any{"delay": 1}}
	if err := p.AddToxic(ctx, lat); err != nil {
		t.Fatal(err)
	}
	// 64 MB asked for, none read: the socket, the link and the gate fill,
	// and the rest waits in Redis's output buffer for this client.
	c := dialRaw(t, p.Listen())
	c.SetDeadline(time.Time{})
	cmds := make([]string, 64)
	for i := range cmds {
		cmds[i] = "GET big"
	}
	c.send(t, cmds...)
	// Backed up: Redis holds output for the client and none of it moved
	// over 20 polls (eventually polls every 10 ms).
	last, still := 0, 0
	eventually(t, 10*time.Second, "Redis holding output the proxy does not take", func() bool {
		list, err := direct.ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		n := maxOmem(list)
		if n > 1<<20 && n == last {
			still++
		} else {
			still = 0
		}
		last = n
		return still >= 20
	})

	removed := make(chan error, 1)
	go func() { removed <- p.RemoveToxic(ctx, "lat") }()
	select {
	case err = <-removed:
	case <-time.After(20 * stuckAfter):
		t.Fatal("RemoveToxic did not return: the call is unbounded")
	}
	if !errors.Is(err, ErrStuck) {
		t.Fatalf("RemoveToxic behind a link that does not drain: %v; want ErrStuck", err)
	}
	t.Logf("RemoveToxic: %v", err)
	start := time.Now()
	if err := p.AddToxic(ctx, Toxic{Name: "lat2", Type: "latency"}); !errors.Is(err, ErrStuck) {
		t.Fatalf("AddToxic while the removal is outstanding: %v; want ErrStuck", err)
	}
	if d := time.Since(start); d >= stuckAfter {
		t.Fatalf("AddToxic while stuck took %s; want an immediate refusal", d)
	}

	// The client reads what it was owed: the removal completes and the
	// proxy takes changes again.
	owed := int64(len(cmds)) * int64(len("$1048576\r\n")+1<<20+2)
	read := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, c.Conn, owed)
		read <- err
	}()
	eventually(t, 20*time.Second, "the abandoned removal to return", func() bool {
		sc := p.stuck.Load()
		if sc == nil {
			return true
		}
		select {
		case <-sc.done:
			return true
		default:
			return false
		}
	})
	if err := p.AddToxic(ctx, lat); err != nil {
		t.Fatalf("AddToxic after the link drained: %v", err)
	}
	// All read before the close: a client closing with data in flight
	// leaves Toxiproxy goroutines blocked for good (the same defect).
	if err := <-read; err != nil {
		t.Fatalf("reading the replies: %v", err)
	}
	c.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

// maxOmem is the largest omem (output buffer bytes) of a CLIENT LIST reply.
func maxOmem(list string) int {
	most := 0
	for _, line := range strings.Split(list, "\n") {
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "omem="); ok {
				if n, err := strconv.Atoi(v); err == nil {
					most = max(most, n)
				}
			}
		}
	}
	return most
}
