package target

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
)

// ProcessOptions configure a spawned redis-server. Zero values mean defaults.
type ProcessOptions struct {
	// Binary is the redis-server to run. Default: "redis-server" from PATH.
	Binary string
	// AOF turns on appendonly with appendfsync everysec (TASK-001).
	AOF bool
	// MaxMemory (e.g. "2mb") and MaxMemoryPolicy (e.g. "allkeys-lru").
	MaxMemory, MaxMemoryPolicy string
	// Password sets requirepass (user "default").
	Password string
	// StartTimeout bounds waiting for the server to accept connections.
	// Default 10s.
	StartTimeout time.Duration
}

// Process is a redis-server the harness spawned on a free loopback port with
// its own temporary directory. It is owned: every destructive fault is
// allowed. Close kills it and removes its directory.
type Process struct {
	opts ProcessOptions
	dir  string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	closed bool
}

// StartProcess spawns redis-server. A missing binary is a harness failure
// (exit 4).
func StartProcess(ctx context.Context, opts ProcessOptions) (*Process, error) {
	if opts.Binary == "" {
		opts.Binary = "redis-server"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 10 * time.Second
	}
	if _, err := exec.LookPath(opts.Binary); err != nil {
		return nil, exitcode.Harnessf("redis-server not found (%s): install it (apt-get install -y redis-server) or pass its path", opts.Binary)
	}
	dir, err := os.MkdirTemp("", "gonogo-redis-")
	if err != nil {
		return nil, exitcode.Harness(err)
	}
	p := &Process{opts: opts, dir: dir}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			lastErr = err
			continue
		}
		p.port = port
		if lastErr = p.start(ctx); lastErr == nil {
			return p, nil
		}
	}
	os.RemoveAll(dir)
	return nil, exitcode.Harnessf("starting redis-server: %w", lastErr)
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (p *Process) args() []string {
	a := []string{
		"--port", strconv.Itoa(p.port),
		"--bind", "127.0.0.1",
		"--dir", p.dir,
		"--save", "",
		"--daemonize", "no",
		"--logfile", filepath.Join(p.dir, "redis.log"),
	}
	if p.opts.AOF {
		a = append(a, "--appendonly", "yes", "--appendfsync", "everysec")
	} else {
		a = append(a, "--appendonly", "no")
	}
	if p.opts.MaxMemory != "" {
		a = append(a, "--maxmemory", p.opts.MaxMemory)
	}
	if p.opts.MaxMemoryPolicy != "" {
		a = append(a, "--maxmemory-policy", p.opts.MaxMemoryPolicy)
	}
	if p.opts.Password != "" {
		a = append(a, "--requirepass", p.opts.Password)
	}
	return a
}

func (p *Process) start(ctx context.Context) error {
	cmd := exec.Command(p.opts.Binary, p.args()...)
	// The child dies with the harness even on SIGKILL of the harness.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	if err := p.waitReady(ctx, exited); err != nil {
		cmd.Process.Kill()
		<-exited
		return err
	}
	return nil
}

// waitReady polls with PING until the server answers.
func (p *Process) waitReady(ctx context.Context, exited chan struct{}) error {
	deadline := time.Now().Add(p.opts.StartTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited at start-up: %s", p.logTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if ping(p.Addr(), p.opts.Password) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server did not answer PING within %s: %s", p.opts.StartTimeout, p.logTail())
}

func (p *Process) logTail() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "redis.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " | ")
}

// ping sends a raw PING (after AUTH if needed) without a client library.
func ping(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	r := bufio.NewReader(c)
	if password != "" {
		fmt.Fprintf(c, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(password), password)
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("auth failed")
		}
	}
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return errors.New(strings.TrimSpace(line))
	}
	return nil
}

// Kind is "process".
func (p *Process) Kind() string { return "process" }

// Addr is 127.0.0.1:port.
func (p *Process) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// URL is the redis:// URL with the password, if any.
func (p *Process) URL() string {
	if p.opts.Password != "" {
		return "redis://:" + p.opts.Password + "@" + p.Addr() + "/0"
	}
	return "redis://" + p.Addr() + "/0"
}

// Redacted masks the password.
func (p *Process) Redacted() string {
	if p.opts.Password != "" {
		return "redis://:xxxxx@" + p.Addr() + "/0"
	}
	return p.URL()
}

// TLS is nil: plain TCP.
func (p *Process) TLS() *tls.Config { return nil }

// Owned is true.
func (p *Process) Owned() bool { return true }

// KeyPrefix is "": the server is private to the run.
func (p *Process) KeyPrefix() string { return "" }

// Dir is the server's data directory.
func (p *Process) Dir() string { return p.dir }

// Pid is the server's process id, or 0 when it is not running.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	select {
	case <-p.exited:
		return 0
	default:
		return p.cmd.Process.Pid
	}
}

func (p *Process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return errors.New("redis-server not running")
	}
	select {
	case <-exited:
		return errors.New("redis-server not running")
	default:
	}
	return cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill(ctx context.Context) error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop shuts the server down cleanly (SIGTERM) and waits.
func (p *Process) Stop(ctx context.Context) error {
	p.signal(syscall.SIGCONT) // a paused server cannot handle SIGTERM
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Pause freezes the server with SIGSTOP.
func (p *Process) Pause(ctx context.Context) error { return p.signal(syscall.SIGSTOP) }

// Resume thaws it with SIGCONT.
func (p *Process) Resume(ctx context.Context) error { return p.signal(syscall.SIGCONT) }

// Restart starts the server again on the same port and directory. A
// running server is stopped first.
func (p *Process) Restart(ctx context.Context) error {
	if p.Pid() != 0 {
		if err := p.Stop(ctx); err != nil {
			return err
		}
	}
	return p.start(ctx)
}

// Close kills the server and removes its directory. Safe to call twice.
func (p *Process) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	if p.Pid() != 0 {
		p.signal(syscall.SIGCONT)
		p.Kill(context.Background())
	}
	return os.RemoveAll(p.dir)
}
