package target

import (
	"context"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	docker "github.com/moby/moby/client"

	"github.com/gonogo/harness/internal/containertest"
	"github.com/gonogo/harness/internal/exitcode"
)

// needContainers skips the test, saying why, only when no Docker engine
// answers; otherwise it makes sure LocalImage exists, building it with the
// script `make images` runs, and returns a Docker client.
func needContainers(t *testing.T) *docker.Client {
	t.Helper()
	containertest.Need(t, LocalImage, "redis")
	cli, err := dockerClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli.Client
}

// startContainer starts a container target from LocalImage, closed at the
// end of the test.
func startContainer(t *testing.T, o ContainerOptions) *Container {
	t.Helper()
	o.Image = LocalImage
	c, err := StartContainer(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// leftovers lists the containers and networks labelled by testcontainers or
// the container target, by id.
func leftovers(t *testing.T, cli *docker.Client) map[string]string {
	t.Helper()
	ctx := context.Background()
	got := map[string]string{}
	for _, label := range []string{ContainerLabel, "org.testcontainers"} {
		cs, err := cli.ContainerList(ctx, docker.ContainerListOptions{All: true, Filters: docker.Filters{}.Add("label", label)})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs.Items {
			got[c.ID] = "container " + c.Image + " " + string(c.State)
		}
		ns, err := cli.NetworkList(ctx, docker.NetworkListOptions{Filters: docker.Filters{}.Add("label", label)})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns.Items {
			got[n.ID] = "network " + n.Name
		}
	}
	return got
}

// pingWithin PINGs through a fresh client that gives up after d.
func pingWithin(t *testing.T, tg Target, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	rdb := client(t, tg)
	rdb.Options().ReadTimeout = d
	return rdb.Ping(ctx).Err()
}

// TestContainerFaultsAndAOF drives one container through every ability:
// pause, kill, restart with AOF (data survives), stop, CONFIG SET, and
// checks that Close leaves no container or network behind.
func TestContainerFaultsAndAOF(t *testing.T) {
	cli := needContainers(t)
	ctx := context.Background()
	before := leftovers(t, cli)
	t0 := time.Now()
	c := startContainer(t, ContainerOptions{AOF: true})
	t.Logf("started %s in %s (%s)", c.Image(), time.Since(t0).Round(time.Millisecond), c.Addr())
	if !strings.HasPrefix(c.Addr(), "127.0.0.1:") {
		t.Fatalf("addr %s; want 127.0.0.1:port", c.Addr())
	}
	if got := c.Kind(); got != "container" {
		t.Fatalf("kind %q; want container", got)
	}
	var _ interface {
		Target
		Killer
		Pauser
		Restarter
		Stopper
		Configurer
	} = c

	rdb := client(t, c)
	if err := rdb.Set(ctx, "k", "before-kill", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}

	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pingWithin(t, c, 300*time.Millisecond); err == nil {
		t.Fatal("PING answered while the container was paused")
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pingWithin(t, c, 5*time.Second); err != nil {
		t.Fatalf("PING after resume: %v", err)
	}

	if err := c.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pingWithin(t, c, time.Second); err == nil {
		t.Fatal("PING answered after kill")
	}
	if pid := c.Pid(); pid != 0 {
		t.Fatalf("pid %d after kill; want 0", pid)
	}
	t1 := time.Now()
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted after kill in %s", time.Since(t1).Round(time.Millisecond))
	if c.Pid() == 0 {
		t.Fatal("pid 0 after restart; want the server's")
	}
	if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "before-kill" {
		t.Fatalf("GET after kill+restart with AOF: got %q, %v; want before-kill", got, err)
	}

	if err := rdb.Set(ctx, "k", "before-stop", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pingWithin(t, c, time.Second); err == nil {
		t.Fatal("PING answered after stop")
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "before-stop" {
		t.Fatalf("GET after stop+restart: got %q, %v; want before-stop", got, err)
	}

	if err := c.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ConfigGet(ctx, "maxmemory-policy"); err != nil || got != "allkeys-lru" {
		t.Fatalf("maxmemory-policy %v, %v; want allkeys-lru", got, err)
	}

	id := c.ID()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := cli.ContainerInspect(ctx, id, docker.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("container %.12s after Close: inspect got %v; want not found", id, err)
	}
	after := leftovers(t, cli)
	for id, what := range after {
		if _, ok := before[id]; !ok {
			t.Errorf("left behind after Close: %.12s %s", id, what)
		}
	}
}

// TestContainerAOFOffLosesData is the control for the AOF check above: the
// same kill and restart without AOF comes back empty.
func TestContainerAOFOffLosesData(t *testing.T) {
	needContainers(t)
	ctx := context.Background()
	c := startContainer(t, ContainerOptions{})
	rdb := client(t, c)
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS k after kill+restart without AOF: got %d, %v; want 0", n, err)
	}
}

func TestContainerTLSAndPassword(t *testing.T) {
	needContainers(t)
	ctx := context.Background()
	const pass = "s3cret-pass"
	c := startContainer(t, ContainerOptions{TLS: true, Password: pass})
	if !strings.HasPrefix(c.URL(), "rediss://") {
		t.Fatalf("URL scheme of %s; want rediss", c.Redacted())
	}
	if strings.Contains(c.Redacted(), pass) {
		t.Fatalf("Redacted %q shows the password", c.Redacted())
	}
	if err := client(t, c).Ping(ctx).Err(); err != nil {
		t.Fatalf("PING over TLS: %v", err)
	}
	if err := ping(c.Addr(), pass); err == nil {
		t.Fatal("plain-TCP PING answered on the TLS port")
	}
}

func TestCloseContainers(t *testing.T) {
	cli := needContainers(t)
	c := startContainer(t, ContainerOptions{})
	if err := CloseContainers(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerInspect(context.Background(), c.ID(), docker.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("container after CloseContainers: inspect got %v; want not found", err)
	}
}

func TestContainerImageMissing(t *testing.T) {
	needContainers(t)
	ctx := context.Background()
	const img = "gonogo/no-such-image:0"
	_, err := StartContainer(ctx, ContainerOptions{Image: img})
	if got := exitcode.Of(err); got != exitcode.BadInput {
		t.Fatalf("exit code %d (%v); want %d", got, err, exitcode.BadInput)
	}
	msg := err.Error()
	for _, want := range []string{img, "make images"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q; want it to name %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q; want one line", msg)
	}
	if _, err := ContainerAvailable(ctx, img); exitcode.Of(err) != exitcode.BadInput {
		t.Fatalf("ContainerAvailable(%s): got %v; want a configuration error", img, err)
	}
	if got, err := ContainerAvailable(ctx, LocalImage); err != nil || got != LocalImage {
		t.Fatalf("ContainerAvailable(%s): got %q, %v; want it usable", LocalImage, got, err)
	}
}
