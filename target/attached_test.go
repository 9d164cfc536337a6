package target

import (
	"context"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
)

// TestAttachedContainer attaches to a running Redis container by id, as
// `harness run --service … --redis-container` does, writes under its key
// prefix, kills, restarts (AOF keeps the data), pauses and resumes it, and
// leaves it running with its keys deleted.
func TestAttachedContainer(t *testing.T) {
	needContainers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startContainer(t, ContainerOptions{AOF: true})
	a, err := AttachContainer(ctx, c.ID(), c.URL(), c.Addr(), URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Kind() != "container" || !a.Owned() || a.KeyPrefix() == "" {
		t.Fatalf("kind %q, owned %v, prefix %q; want container, owned, a fresh prefix", a.Kind(), a.Owned(), a.KeyPrefix())
	}
	key := a.KeyPrefix() + "k"
	if err := a.rdb.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := a.ConfigGet(ctx, "appendonly"); err != nil || v != "yes" {
		t.Fatalf("CONFIG GET appendonly = %q, %v; want yes", v, err)
	}
	if err := a.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Pid() != 0 {
		t.Fatal("container still running after Kill")
	}
	if err := a.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := a.rdb.Get(ctx, key).Result(); err != nil || v != "v" {
		t.Fatalf("GET after kill and restart with AOF = %q, %v; want v", v, err)
	}
	if err := a.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	if err := a.rdb.Ping(pctx).Err(); err == nil {
		t.Error("PING answered while the container was paused")
	}
	pcancel()
	if err := a.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Pid() == 0 {
		t.Error("Close stopped the attached container; want it running")
	}
	if n, err := c.adminDo(ctx, "EXISTS", key); err != nil || n != int64(0) {
		t.Errorf("EXISTS %s after Close = %v, %v; want 0 (keys under the prefix deleted)", key, n, err)
	}
	_, err = AttachContainer(ctx, "gonogo-no-such-container", c.URL(), "", URLOptions{})
	if exitcode.Of(err) != exitcode.BadInput {
		t.Errorf("attaching a missing container: got %v (exit %d); want exit %d", err, exitcode.Of(err), exitcode.BadInput)
	}
}
