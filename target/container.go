package target

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	docker "github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/gonogo/harness/chaos/certs"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/redact"
)

// Redis images for the container target.
const (
	// DefaultImage is the official Redis image, for machines that can pull.
	DefaultImage = "redis:7-alpine"
	// LocalImage is built by `make images` from the machine's redis-server,
	// with no registry (FROM scratch).
	LocalImage = "gonogo/redis:7"
)

// ContainerLabel marks every container the container target starts, so
// leftovers can be found (`docker ps -a --filter label=org.gonogo.target`).
const ContainerLabel = "org.gonogo.target"

// redisPort is the port Redis listens on inside the container.
var redisPort = network.MustParsePort("6379/tcp")

// ContainerOptions configure a Redis container. Zero values mean defaults.
type ContainerOptions struct {
	// Image is the Redis image. Default: DefaultImage when it is present
	// locally, else LocalImage.
	Image string
	// Pull lets the engine pull Image when it is not present locally.
	// Default false: a missing image is a configuration error (exit 3)
	// naming the image and `make images`; nothing is pulled.
	Pull bool
	// AOF turns on appendonly with appendfsync everysec (TASK-001).
	AOF bool
	// MaxMemory (e.g. "2mb") and MaxMemoryPolicy (e.g. "allkeys-lru").
	MaxMemory, MaxMemoryPolicy string
	// Password sets requirepass (user "default").
	Password string
	// TLS makes the server listen TLS-only (--tls-port with --port 0) with
	// certificates generated at start and copied into the container; TLS()
	// then trusts the generated CA and URL uses rediss://. Default: plain.
	TLS bool
	// TLSAuthClients requires client certificates; TLS() then presents the
	// generated client certificate. Only with TLS.
	TLSAuthClients bool
	// StartTimeout bounds waiting for the server to answer PING after a
	// start or restart. Default 30s.
	StartTimeout time.Duration
}

// Container is a Redis server in a Docker container started with
// testcontainers-go (Ryuk off: nothing is pulled). Its port is published on
// 127.0.0.1 only, on a fixed host port so the address survives restarts.
// It is owned: every destructive fault is allowed. Close removes the
// container and its volumes.
type Container struct {
	opts ContainerOptions
	port int
	cli  *testcontainers.DockerClient
	ctr  *testcontainers.DockerContainer
	// certs is the TLS material (with TLS), in a host directory Close removes.
	certs *certs.Set

	mu     sync.Mutex
	closed bool
}

// liveContainers is every container target not yet closed, for
// CloseContainers.
var liveContainers = struct {
	sync.Mutex
	m map[*Container]struct{}
}{m: map[*Container]struct{}{}}

var setupOnce sync.Once

// setup runs before any testcontainers call: it turns Ryuk off (its image
// cannot be pulled without a registry; Close and CloseContainers clean up
// instead) unless TESTCONTAINERS_RYUK_DISABLED is set, and silences the
// library's logging (errors are returned, not logged).
func setup() {
	setupOnce.Do(func() {
		if _, ok := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !ok {
			os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
		}
		tclog.SetDefault(tclog.NewNoopLogger())
	})
}

// dockerClient connects to the engine testcontainers finds (DOCKER_HOST,
// the Docker context, /var/run/docker.sock, ...). No engine is a harness
// failure (exit 4).
func dockerClient(ctx context.Context) (*testcontainers.DockerClient, error) {
	setup()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		// One line: the library joins one error per place it looked.
		return nil, exitcode.Harnessf("no Docker engine answers (%s)", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return cli, nil
}

// resolveImage returns the image to run: image itself when present (or
// pullable), or for "" the first of DefaultImage, LocalImage present.
func resolveImage(ctx context.Context, cli *testcontainers.DockerClient, image string, pull bool) (string, error) {
	candidates := []string{image}
	if image == "" {
		candidates = []string{DefaultImage, LocalImage}
	}
	for _, img := range candidates {
		_, err := cli.ImageInspect(ctx, img)
		if err == nil {
			return img, nil
		}
		if !cerrdefs.IsNotFound(err) {
			return "", exitcode.Harnessf("inspecting image %s: %w", img, err)
		}
	}
	if image == "" {
		return "", exitcode.Configf("no Redis image present locally (%s or %s): run `make images` to build %s", DefaultImage, LocalImage, LocalImage)
	}
	if pull {
		return image, nil
	}
	return "", exitcode.Configf("image %s is not present locally: run `make images` (builds %s) or `docker pull %s`", image, LocalImage, image)
}

// ContainerAvailable reports whether the container target can start on this
// machine: a Docker engine answers and the image (see ContainerOptions.Image;
// "" for the default choice) is present locally. It returns the image that
// would run, and otherwise an error whose text says why not.
func ContainerAvailable(ctx context.Context, image string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cli, err := dockerClient(ctx)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	return resolveImage(ctx, cli, image, false)
}

// StartContainer starts Redis in a container and waits until it answers
// PING. No Docker engine is a harness failure (exit 4); a missing image is
// a configuration error (exit 3) unless opts.Pull is set.
func StartContainer(ctx context.Context, opts ContainerOptions) (*Container, error) {
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.TLSAuthClients && !opts.TLS {
		return nil, exitcode.Configf("container target: client certificates need TLS")
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Image, err = resolveImage(ctx, cli, opts.Image, opts.Pull); err != nil {
		cli.Close()
		return nil, err
	}
	c := &Container{opts: opts, cli: cli}
	if opts.TLS {
		dir, err := os.MkdirTemp("", "gonogo-container-tls-")
		if err == nil {
			c.certs, err = certs.Generate(dir)
		}
		if err != nil {
			os.RemoveAll(dir)
			cli.Close()
			return nil, exitcode.Harnessf("generating TLS material: %w", err)
		}
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if c.port, lastErr = FreePort(); lastErr != nil {
			continue
		}
		if lastErr = c.run(ctx); lastErr == nil {
			liveContainers.Lock()
			liveContainers.m[c] = struct{}{}
			liveContainers.Unlock()
			return c, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	c.removeCerts()
	cli.Close()
	return nil, exitcode.Harnessf("starting redis container (%s): %w", opts.Image, lastErr)
}

// args is the redis-server command line inside the container.
func (c *Container) args() []string {
	a := []string{
		"--bind", "0.0.0.0",
		"--protected-mode", "no",
		"--dir", "/data",
		"--save", "",
	}
	if c.opts.AOF {
		a = append(a, "--appendonly", "yes", "--appendfsync", "everysec")
	} else {
		a = append(a, "--appendonly", "no")
	}
	if c.opts.MaxMemory != "" {
		a = append(a, "--maxmemory", c.opts.MaxMemory)
	}
	if c.opts.MaxMemoryPolicy != "" {
		a = append(a, "--maxmemory-policy", c.opts.MaxMemoryPolicy)
	}
	if c.opts.Password != "" {
		a = append(a, "--requirepass", c.opts.Password)
	}
	if c.certs == nil {
		return append(a, "--port", "6379")
	}
	return append(a, "--port", "0", "--tls-port", "6379",
		"--tls-cert-file", tlsDir+"/server.crt", "--tls-key-file", tlsDir+"/server.key",
		"--tls-ca-cert-file", tlsDir+"/ca.crt", "--tls-auth-clients", yesNo(c.opts.TLSAuthClients))
}

// tlsDir holds the TLS material inside the container.
const tlsDir = "/tls"

// files is what is copied into the container before it starts: the CA and
// the server certificate and key, with TLS.
func (c *Container) files() []testcontainers.ContainerFile {
	if c.certs == nil {
		return nil
	}
	return []testcontainers.ContainerFile{
		{HostFilePath: c.certs.CAFile, ContainerFilePath: tlsDir + "/ca.crt", FileMode: 0o644},
		{HostFilePath: c.certs.Server.CertFile, ContainerFilePath: tlsDir + "/server.crt", FileMode: 0o644},
		// The key is readable by the image's non-root user; the container is private to the run.
		{HostFilePath: c.certs.Server.KeyFile, ContainerFilePath: tlsDir + "/server.key", FileMode: 0o644},
	}
}

// removeCerts deletes the host copy of the TLS material.
func (c *Container) removeCerts() {
	if c.certs != nil {
		os.RemoveAll(c.certs.Dir)
	}
}

// run creates and starts the container on c.port; on failure nothing is
// left behind.
func (c *Container) run(ctx context.Context) error {
	binding := []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(c.port)}}
	ctr, err := testcontainers.Run(ctx, c.opts.Image,
		testcontainers.WithEntrypoint("redis-server"),
		testcontainers.WithCmd(c.args()...),
		testcontainers.WithExposedPorts(redisPort.String()),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{redisPort: binding}
		}),
		testcontainers.WithLabels(map[string]string{ContainerLabel: "container"}),
		testcontainers.WithFiles(c.files()...),
	)
	if err != nil {
		if ctr != nil {
			c.ctr = ctr
			c.remove()
			c.ctr = nil
		}
		return err
	}
	c.ctr = ctr
	if err := c.waitReady(ctx); err != nil {
		c.remove()
		c.ctr = nil
		return err
	}
	return nil
}

// waitReady polls with PING until the server answers, giving up early when
// the container stops.
func (c *Container) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(c.opts.StartTimeout)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.ping(ctx) == nil {
			return nil
		}
		if !c.running(ctx) {
			return fmt.Errorf("redis container exited at start-up: %s", c.logTail(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redis container did not answer PING within %s: %s", c.opts.StartTimeout, c.logTail(ctx))
}

// running reports whether the container is running (paused counts).
func (c *Container) running(ctx context.Context) bool { return c.pid(ctx) != 0 }

// pid is the host pid of the container's redis-server, 0 when it is not
// running (or the engine does not answer).
func (c *Container) pid(ctx context.Context) int { return c.engine().pid(ctx) }

// engine is the container as the Docker engine knows it.
func (c *Container) engine() dockerCtr { return dockerCtr{c.cli, c.ctr.GetContainerID()} }

// dockerCtr is a container driven by id through the Docker engine: the
// process faults both container targets share.
type dockerCtr struct {
	cli *testcontainers.DockerClient
	id  string
}

// pid is the host pid of the container's main process, 0 when it is not
// running (or the engine does not answer).
func (d dockerCtr) pid(ctx context.Context) int {
	res, err := d.cli.ContainerInspect(ctx, d.id, docker.ContainerInspectOptions{})
	if err != nil || res.Container.State == nil || !res.Container.State.Running {
		return 0
	}
	return res.Container.State.Pid
}

// kill sends SIGKILL (docker kill) and waits for the container to stop.
func (d dockerCtr) kill(ctx context.Context) error {
	wait := d.cli.ContainerWait(ctx, d.id, docker.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	if _, err := d.cli.ContainerKill(ctx, d.id, docker.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("docker kill: %w", err)
	}
	select {
	case <-wait.Result:
		return nil
	case err := <-wait.Error:
		return fmt.Errorf("waiting for the killed container: %w", err)
	}
}

// pause freezes the container (docker pause).
func (d dockerCtr) pause(ctx context.Context) error {
	_, err := d.cli.ContainerPause(ctx, d.id, docker.ContainerPauseOptions{})
	return err
}

// resume thaws it (docker unpause).
func (d dockerCtr) resume(ctx context.Context) error {
	_, err := d.cli.ContainerUnpause(ctx, d.id, docker.ContainerUnpauseOptions{})
	return err
}

// Pid is the host pid of the container's redis-server, or 0 when it is not
// running: faults use it to tell whether the server is down.
func (c *Container) Pid() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.pid(ctx)
}

// logTail is the last lines of the container's output.
func (c *Container) logTail(ctx context.Context) string {
	rc, err := c.ctr.Logs(ctx)
	if err != nil {
		return "no logs: " + err.Error()
	}
	defer rc.Close()
	var lines []string
	s := bufio.NewScanner(io.LimitReader(rc, 1<<20))
	for s.Scan() {
		if l := strings.TrimSpace(s.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " | ")
}

// remove deletes the container and its volumes, whatever its state, with a
// context of its own so it works while the caller's is cancelled (Ctrl-C).
func (c *Container) remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.engine().resume(ctx)
	return c.ctr.Terminate(ctx, testcontainers.StopTimeout(0))
}

// Kind is KindContainer.
func (c *Container) Kind() Kind { return KindContainer }

// Addr is 127.0.0.1:port, the published port.
func (c *Container) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)) }

// URL is the redis:// (rediss:// with TLS) URL with the password, if any.
func (c *Container) URL() string {
	u := url.URL{Scheme: "redis", Host: c.Addr(), Path: "/0"}
	if c.certs != nil {
		u.Scheme = "rediss"
	}
	if c.opts.Password != "" {
		u.User = url.UserPassword("", c.opts.Password)
	}
	return u.String()
}

// Redacted masks the password.
func (c *Container) Redacted() string { return redact.URL(c.URL()) }

// TLS is nil for a plain target; with TLS, a client configuration trusting
// the generated CA, presenting the client certificate when TLSAuthClients
// is set.
func (c *Container) TLS() *tls.Config {
	if c.certs == nil {
		return nil
	}
	return c.certs.ClientTLS(c.opts.TLSAuthClients)
}

// Certs is the generated TLS material, or nil without TLS.
func (c *Container) Certs() *certs.Set { return c.certs }

// admin opens a raw connection for the harness's own calls (PING, CONFIG).
func (c *Container) admin(ctx context.Context) (*respConn, error) {
	var tc *tls.Config
	if c.certs != nil {
		tc = c.certs.ClientTLS(true)
	}
	return dialRESP(ctx, c.Addr(), tc, "", c.opts.Password)
}

// adminDo runs one command on a fresh admin connection.
func (c *Container) adminDo(ctx context.Context, args ...string) (any, error) {
	rc, err := c.admin(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return rc.do(args...)
}

// ping answers nil when the server replies PONG.
func (c *Container) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	v, err := c.adminDo(ctx, "PING")
	if err != nil {
		return err
	}
	if v != "PONG" {
		return fmt.Errorf("PING answered %v", v)
	}
	return nil
}

// Owned is true.
func (c *Container) Owned() bool { return true }

// KeyPrefix is "": the server is private to the run.
func (c *Container) KeyPrefix() string { return "" }

// Image is the image the container runs (a setting shown in reports).
func (c *Container) Image() string { return c.opts.Image }

// ID is the Docker container id.
func (c *Container) ID() string { return c.ctr.GetContainerID() }

// Kill sends SIGKILL (docker kill) and waits for the container to stop.
func (c *Container) Kill(ctx context.Context) error { return c.engine().kill(ctx) }

// Stop shuts the server down cleanly (docker stop: SIGTERM, then SIGKILL
// after 10 s) and waits.
func (c *Container) Stop(ctx context.Context) error {
	c.engine().resume(ctx) // a paused server cannot handle SIGTERM
	timeout := 10 * time.Second
	return c.ctr.Stop(ctx, &timeout)
}

// Pause freezes the container (docker pause).
func (c *Container) Pause(ctx context.Context) error { return c.engine().pause(ctx) }

// Resume thaws it (docker unpause).
func (c *Container) Resume(ctx context.Context) error { return c.engine().resume(ctx) }

// Restart starts the same container again (same port, same data in
// /data); a running server is stopped cleanly first.
func (c *Container) Restart(ctx context.Context) error {
	if c.running(ctx) {
		if err := c.Stop(ctx); err != nil {
			return err
		}
	}
	if err := c.ctr.Start(ctx); err != nil {
		return err
	}
	return c.waitReady(ctx)
}

// ConfigSet changes a server setting at run time (CONFIG SET).
func (c *Container) ConfigSet(ctx context.Context, key, value string) error {
	_, err := c.adminDo(ctx, "CONFIG", "SET", key, value)
	return err
}

// ConfigGet returns the value of CONFIG GET key.
func (c *Container) ConfigGet(ctx context.Context, key string) (string, error) {
	return configGet(ctx, c.adminDo, key)
}

// Close removes the container and its volumes. Safe to call more than once
// and from any goroutine.
func (c *Container) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	liveContainers.Lock()
	delete(liveContainers.m, c)
	liveContainers.Unlock()
	err := c.remove()
	c.cli.Close()
	c.removeCerts()
	return err
}

// CloseContainers closes every container target not yet closed. The
// harness calls it on its way out, and on Ctrl-C, since with Ryuk off no
// one else removes the containers.
func CloseContainers() error {
	liveContainers.Lock()
	cs := make([]*Container, 0, len(liveContainers.m))
	for c := range liveContainers.m {
		cs = append(cs, c)
	}
	liveContainers.Unlock()
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
