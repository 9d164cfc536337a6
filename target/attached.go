package target

import (
	"context"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	docker "github.com/moby/moby/client"
	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/internal/exitcode"
)

// Attached is a Redis in a Docker container the harness did not start but
// was handed to break (`harness run --service … --redis-container NAME`):
// the Redis of services under test. The harness reaches it by URL for its
// own calls, as a url target (a fresh key prefix per attach, its keys
// deleted at Close), and kills, pauses and restarts the container through
// the Docker API. Close never stops the container.
type Attached struct {
	*Remote
	name string
	ctr  dockerCtr
	via  *redis.Client // Redis through the services' path, or nil
}

var (
	_ Target    = (*Attached)(nil)
	_ Killer    = (*Attached)(nil)
	_ Pauser    = (*Attached)(nil)
	_ Restarter = (*Attached)(nil)
	_ Stopper   = (*Attached)(nil)
)

// AttachContainer finds the container called name (or with that id) and
// opens its Redis at rawURL (see OpenURL). via, if not "", is the host:port
// the services reach that Redis through (their proxy): Restart also waits
// for PING to answer there. A missing container or an unusable URL is bad
// input (exit 3); no Docker engine a harness failure (exit 4).
func AttachContainer(ctx context.Context, name, rawURL, via string, o URLOptions) (*Attached, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	res, err := cli.ContainerInspect(ctx, name, docker.ContainerInspectOptions{})
	if err != nil {
		cli.Close()
		if cerrdefs.IsNotFound(err) {
			return nil, exitcode.Configf("redis container %q: no such container (docker ps -a)", name)
		}
		return nil, exitcode.Harnessf("redis container %q: %w", name, err)
	}
	r, err := OpenURL(ctx, rawURL, o)
	if err != nil {
		cli.Close()
		return nil, err
	}
	a := &Attached{Remote: r, name: name, ctr: dockerCtr{cli, res.Container.ID}}
	if via != "" {
		opt := *r.rdb.Options()
		opt.Addr, opt.Dialer = via, nil
		a.via = redis.NewClient(&opt)
	}
	return a, nil
}

// Kind is KindContainer.
func (a *Attached) Kind() Kind { return KindContainer }

// Owned is true: naming the container hands it to the harness to break.
func (a *Attached) Owned() bool { return true }

// Name is the container's name as given.
func (a *Attached) Name() string { return a.name }

// Pid is the host pid of the container's main process, 0 when it is not
// running.
func (a *Attached) Pid() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return a.ctr.pid(ctx)
}

// Kill sends SIGKILL (docker kill) and waits for the container to stop.
func (a *Attached) Kill(ctx context.Context) error { return a.ctr.kill(ctx) }

// Pause freezes the container (docker pause).
func (a *Attached) Pause(ctx context.Context) error { return a.ctr.pause(ctx) }

// Resume thaws it (docker unpause).
func (a *Attached) Resume(ctx context.Context) error { return a.ctr.resume(ctx) }

// Stop stops the container cleanly (docker stop: SIGTERM, SIGKILL after
// 10 s).
func (a *Attached) Stop(ctx context.Context) error {
	a.ctr.resume(ctx) // a paused server cannot handle SIGTERM
	timeout := 10
	_, err := a.ctr.cli.ContainerStop(ctx, a.ctr.id, docker.ContainerStopOptions{Timeout: &timeout})
	return err
}

// Restart starts the container again (docker start; a running one is
// stopped cleanly first) and waits, at most 30 s, for Redis to answer PING
// at the URL (AOF, if on, is loaded by then) and through the services'
// path. The latter can lag: Toxiproxy dials upstream in its accept loop,
// and a dial begun while the container was gone (its address answering
// nothing) holds every new connection until it fails, a few seconds later.
// That is the rig's delay, not the layer's: the restart ends when the
// services can reach Redis again.
func (a *Attached) Restart(ctx context.Context) error {
	if a.ctr.pid(ctx) != 0 {
		if err := a.Stop(ctx); err != nil {
			return fmt.Errorf("docker stop %s: %w", a.name, err)
		}
	}
	if _, err := a.ctr.cli.ContainerStart(ctx, a.ctr.id, docker.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("docker start %s: %w", a.name, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range []struct {
		rdb  *redis.Client
		what string
	}{{a.rdb, "at " + a.Redacted()}, {a.via, "through " + a.viaAddr()}} {
		if err := pingUntil(ctx, c.rdb, deadline); err != nil {
			return fmt.Errorf("redis in %s did not answer PING %s within 30s of docker start: %w", a.name, c.what, err)
		}
	}
	return nil
}

func (a *Attached) viaAddr() string {
	if a.via == nil {
		return ""
	}
	return a.via.Options().Addr
}

// pingUntil PINGs rdb (nil: nothing to wait for) until it answers or the
// deadline passes.
func pingUntil(ctx context.Context, rdb *redis.Client, deadline time.Time) error {
	for rdb != nil {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err := rdb.Ping(pctx).Err()
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// ConfigGet returns the value of CONFIG GET key.
func (a *Attached) ConfigGet(ctx context.Context, key string) (string, error) {
	v, err := a.rdb.ConfigGet(ctx, key).Result()
	if err != nil {
		return "", err
	}
	return v[key], nil
}

// Close deletes the keys under the prefix (see Remote.Close) and lets go
// of the Docker client; the container keeps running.
func (a *Attached) Close() error {
	err := a.Remote.Close()
	a.ctr.cli.Close()
	if a.via != nil {
		a.via.Close()
	}
	return err
}
