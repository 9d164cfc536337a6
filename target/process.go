package target

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gonogo/harness/chaos/certs"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/redact"
)

// ProcessOptions configure a spawned redis-server. Zero values mean defaults.
type ProcessOptions struct {
	// Binary is the redis-server to run. Default: "redis-server" from PATH.
	Binary string
	// AOF turns on appendonly with appendfsync everysec (TASK-001).
	AOF bool
	// MaxMemory (e.g. "2mb") and MaxMemoryPolicy (e.g. "allkeys-lru").
	MaxMemory, MaxMemoryPolicy string
	// Password sets requirepass (user "default"), or the password of User.
	Password string
	// User, with Password, creates that ACL user with every permission and
	// turns the default user off. Default: no ACL user.
	User string
	// TLS makes the server listen TLS-only on its port (--tls-port with
	// --port 0), with certificates generated at start (see Certs). TLS()
	// then returns a client configuration trusting the generated CA, and
	// URL uses rediss://. Default: plain TCP.
	TLS bool
	// TLSAuthClients requires client certificates (--tls-auth-clients
	// yes); TLS() then presents the generated client certificate. Only
	// with TLS.
	TLSAuthClients bool
	// StartTimeout bounds waiting for the server to accept connections.
	// Default 10s.
	StartTimeout time.Duration
	// Sentinel runs the server in Sentinel mode (--sentinel). Default: a
	// plain server.
	Sentinel bool
	// Directives are further redis.conf lines, each a directive and its
	// arguments (replicaof, sentinel monitor, ...), written after the
	// others. Default: none.
	Directives [][]string
	// Cluster starts the server cluster-enabled, its cluster bus on a
	// free loopback port of its own, owning no slot (see StartCluster).
	Cluster bool
	// Certs, with TLS, is the TLS material to serve with instead of
	// generating its own: the nodes of a replicated target share one CA,
	// so that replicas and sentinels trust the primary. Default: its own.
	Certs *certs.Set
}

// Process is a redis-server the harness spawned on a free loopback port with
// its own temporary directory. It is owned: every destructive fault is
// allowed. Close kills it and removes its directory.
type Process struct {
	opts ProcessOptions
	dir  string
	port int
	// busPort is the cluster bus port (Cluster only).
	busPort int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	closed bool
	certs  *certs.Set
	state  TLSState
}

// TLSState is the server side of a process target's TLS: what the server
// does now, which TLS faults change at run time. Clients keep the view given
// by the options (TLS, URL), so a changed server shows as the error a
// client would meet.
type TLSState struct {
	// On means the port speaks TLS only; off, plain TCP only.
	On bool
	// Cert is the server certificate presented (when On).
	Cert certs.Pair
	// AuthClients requires a client certificate from the CA.
	AuthClients bool
}

// liveProcs tracks every running Process so CloseAll can end them on Ctrl-C.
var liveProcs = struct {
	sync.Mutex
	procs map[*Process]struct{}
}{procs: map[*Process]struct{}{}}

// CloseAll closes every Process started and not yet closed. The CLI calls it
// from its signal path so no redis-server outlives an interrupted run.
func CloseAll() {
	liveProcs.Lock()
	procs := make([]*Process, 0, len(liveProcs.procs))
	for p := range liveProcs.procs {
		procs = append(procs, p)
	}
	liveProcs.Unlock()
	for _, p := range procs {
		p.Close()
	}
}

// track adds p to (or removes it from) the processes CloseAll ends.
func (p *Process) track(on bool) {
	liveProcs.Lock()
	defer liveProcs.Unlock()
	if on {
		liveProcs.procs[p] = struct{}{}
	} else {
		delete(liveProcs.procs, p)
	}
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
	if opts.TLSAuthClients && !opts.TLS {
		return nil, exitcode.Configf("process target: client certificates need TLS")
	}
	if opts.User != "" && opts.Password == "" {
		return nil, exitcode.Configf("process target: user %q needs a password", opts.User)
	}
	if _, err := exec.LookPath(opts.Binary); err != nil {
		return nil, exitcode.Harnessf("redis-server not found (%s): install it (apt-get install -y redis-server) or pass its path", opts.Binary)
	}
	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return nil, exitcode.Harness(err)
	}
	if err := writeOwner(dir); err != nil {
		os.RemoveAll(dir)
		return nil, exitcode.Harness(err)
	}
	p := &Process{opts: opts, dir: dir, certs: opts.Certs}
	if opts.TLS {
		set, err := p.Certs()
		if err != nil {
			os.RemoveAll(dir)
			return nil, exitcode.Harness(err)
		}
		p.state = TLSState{On: true, Cert: set.Server, AuthClients: opts.TLSAuthClients}
	}
	p.track(true)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			lastErr = err
			continue
		}
		p.port = port
		if opts.Cluster {
			if p.busPort, err = FreePort(); err != nil {
				lastErr = err
				continue
			}
		}
		if lastErr = p.start(ctx); lastErr == nil {
			return p, nil
		}
	}
	p.track(false)
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

// config is the server's configuration file. It lives in the private dir
// (mode 0600) so passwords never show in the process list.
func (p *Process) config() string {
	port := strconv.Itoa(p.port)
	d := [][]string{
		{"bind", "127.0.0.1"},
		{"dir", p.dir},
		{"save", ""},
		{"daemonize", "no"},
		{"logfile", filepath.Join(p.dir, "redis.log")},
		{"appendonly", yesNo(p.opts.AOF)},
	}
	if p.opts.AOF {
		d = append(d, []string{"appendfsync", "everysec"})
	}
	if p.opts.Cluster {
		d = append(d, []string{"cluster-enabled", "yes"}, []string{"cluster-config-file", filepath.Join(p.dir, "nodes.conf")},
			[]string{"cluster-port", strconv.Itoa(p.busPort)}, []string{"cluster-node-timeout", "5000"})
	}
	if p.opts.MaxMemory != "" {
		d = append(d, []string{"maxmemory", p.opts.MaxMemory})
	}
	if p.opts.MaxMemoryPolicy != "" {
		d = append(d, []string{"maxmemory-policy", p.opts.MaxMemoryPolicy})
	}
	switch {
	case p.opts.User != "":
		d = append(d, []string{"user", "default", "off"},
			[]string{"user", p.opts.User, "on", ">" + p.opts.Password, "~*", "&*", "+@all"})
	case p.opts.Password != "":
		d = append(d, []string{"requirepass", p.opts.Password})
	}
	p.mu.Lock()
	st := p.state
	p.mu.Unlock()
	if st.On {
		d = append(d, []string{"port", "0"}, []string{"tls-port", port},
			[]string{"tls-cert-file", st.Cert.CertFile}, []string{"tls-key-file", st.Cert.KeyFile},
			[]string{"tls-ca-cert-file", p.certs.CAFile}, []string{"tls-auth-clients", yesNo(st.AuthClients)})
	} else {
		d = append(d, []string{"port", port})
	}
	d = append(d, p.opts.Directives...)
	var b strings.Builder
	for _, line := range d {
		for i, tok := range line {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(confQuote(tok))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// confQuote quotes a token for redis.conf.
func confQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`)
	return `"` + r.Replace(s) + `"`
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (p *Process) start(ctx context.Context) error {
	conf := filepath.Join(p.dir, "redis.conf")
	if err := history.WriteFileAtomic(conf, []byte(p.config())); err != nil {
		return err
	}
	args := []string{conf}
	if p.opts.Sentinel {
		args = append(args, "--sentinel")
	}
	cmd := exec.Command(p.opts.Binary, args...)
	// The child dies with the harness even on SIGKILL of the harness:
	// Pdeathsig fires when the thread that started it ends, which for a Go
	// program is when the process ends (the runtime ends a thread only
	// after a goroutine locked to it exits, and none starts targets).
	// Its own process group keeps a terminal's Ctrl-C to the harness.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	exited := make(chan struct{})
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errors.New("process target closed")
	}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return err
	}
	go func() { cmd.Wait(); close(exited) }()
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
		if p.ping(ctx) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server did not answer PING within %s: %s", p.opts.StartTimeout, p.logTail())
}

func (p *Process) logTail() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "redis.log"))
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.Contains(l, "WARNING") {
			lines = append(lines, l)
		}
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " | ")
}

// admin opens a raw connection for the harness's own calls, speaking
// whatever the server speaks now. Over TLS it presents the client
// certificate and skips verification: it talks to a child process on
// loopback, and must reach it even while a TLS fault serves a bad
// certificate.
func (p *Process) admin(ctx context.Context) (*respConn, error) {
	p.mu.Lock()
	st, set := p.state, p.certs
	p.mu.Unlock()
	var tc *tls.Config
	if st.On {
		tc = &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{set.Client.Cert}}
	}
	return dialRESP(ctx, p.Addr(), tc, p.opts.User, p.opts.Password)
}

// ping answers nil when the server replies PONG.
func (p *Process) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	c, err := p.admin(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.ping()
}

// ConfigSet runs CONFIG SET key value (again when the connection is
// dropped under it: see adminRetry).
func (p *Process) ConfigSet(ctx context.Context, key, value string) error {
	_, err := p.adminRetry(ctx, "CONFIG", "SET", key, value)
	return err
}

// ConfigGet returns the value of CONFIG GET key.
func (p *Process) ConfigGet(ctx context.Context, key string) (string, error) {
	return configGet(ctx, p.adminRetry, key)
}

// configGet runs CONFIG GET key through do and returns the value.
func configGet(ctx context.Context, do func(context.Context, ...string) (any, error), key string) (string, error) {
	v, err := do(ctx, "CONFIG", "GET", key)
	if err != nil {
		return "", err
	}
	if kv, ok := v.([]any); ok && len(kv) == 2 {
		if s, ok := kv[1].(string); ok {
			return s, nil
		}
	}
	return "", fmt.Errorf("config get %s: unexpected reply %v", key, v)
}

// adminDo runs one command on a fresh admin connection.
func (p *Process) adminDo(ctx context.Context, args ...string) (any, error) {
	c, err := p.admin(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.do(args...)
}

// adminRetry is adminDo for a command that is safe to run twice
// (REPLICAOF, CLIENT KILL, CONFIG SET, a read), tried up to three times
// while the connection is dropped under it: a sentinel that reconfigures
// a node, or another fault's rejoin, kills its normal clients, the
// harness's own among them (explore seed 17171: two overlapping
// failovers, one's CLIENT KILL reset by the other's, the run not judged).
func (p *Process) adminRetry(ctx context.Context, args ...string) (v any, err error) {
	for range 3 {
		if v, err = p.adminDo(ctx, args...); !dropped(err) || ctx.Err() != nil {
			return v, err
		}
	}
	return v, err
}

// dropped reports whether err is the connection closing under a call
// (reset, broken pipe, EOF), not an answer or a timeout.
func dropped(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Certs returns the TLS material of this target, generating it under Dir()
// on first use.
func (p *Process) Certs() (*certs.Set, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.certs == nil {
		set, err := certs.Generate(filepath.Join(p.dir, "tls"))
		if err != nil {
			return nil, fmt.Errorf("generating TLS material: %w", err)
		}
		p.certs = set
	}
	return p.certs, nil
}

// TLSState returns what the server does now.
func (p *Process) TLSState() TLSState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// SetTLSState switches the running server to st with CONFIG SET on the same
// port (plain to TLS-only or back, another certificate, client certificates
// required or not), then drops every client connection so clients reconnect
// and meet the new setting. A restart keeps st.
func (p *Process) SetTLSState(ctx context.Context, st TLSState) error {
	set, err := p.Certs()
	if err != nil {
		return err
	}
	if st.On && st.Cert.CertFile == "" {
		st.Cert = set.Server
	}
	c, err := p.admin(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	port := strconv.Itoa(p.port)
	cmds := [][]string{
		{"CONFIG", "SET", "tls-ca-cert-file", set.CAFile},
		{"CONFIG", "SET", "tls-auth-clients", yesNo(st.AuthClients)},
	}
	if st.On {
		cmds = append(cmds, []string{"CONFIG", "SET", "tls-cert-file", st.Cert.CertFile, "tls-key-file", st.Cert.KeyFile})
	}
	old := p.TLSState()
	switch {
	case st.On && !old.On:
		cmds = append(cmds, []string{"CONFIG", "SET", "port", "0"}, []string{"CONFIG", "SET", "tls-port", port})
	case !st.On && old.On:
		cmds = append(cmds, []string{"CONFIG", "SET", "tls-port", "0"}, []string{"CONFIG", "SET", "port", port})
	}
	for _, cmd := range cmds {
		if _, err := c.do(cmd...); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(cmd[:3], " "), err)
		}
	}
	p.mu.Lock()
	p.state = st
	p.mu.Unlock()
	for _, typ := range []string{"normal", "pubsub"} {
		if _, err := c.do("CLIENT", "KILL", "TYPE", typ, "SKIPME", "yes"); err != nil {
			return fmt.Errorf("client kill: %w", err)
		}
	}
	return nil
}

// Kind is KindProcess.
func (p *Process) Kind() Kind { return KindProcess }

// Addr is 127.0.0.1:port.
func (p *Process) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// URL is the redis:// (rediss:// with TLS) URL with the user and password,
// if any.
func (p *Process) URL() string {
	u := url.URL{Scheme: "redis", Host: p.Addr(), Path: "/0"}
	if p.opts.TLS {
		u.Scheme = "rediss"
	}
	if p.opts.Password != "" {
		u.User = url.UserPassword(p.opts.User, p.opts.Password)
	}
	return u.String()
}

// Redacted masks the password.
func (p *Process) Redacted() string { return redact.URL(p.URL()) }

// TLS is nil for a plain target; with TLS, a client configuration trusting
// the generated CA and verifying certs.ServerName, presenting the client
// certificate when TLSAuthClients is set.
func (p *Process) TLS() *tls.Config {
	if !p.opts.TLS {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.certs.ClientTLS(p.opts.TLSAuthClients)
}

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
	return p.waitExited(ctx)
}

// waitExited waits until the server process is gone.
func (p *Process) waitExited(ctx context.Context) error {
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
	return p.waitExited(ctx)
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
	p.track(false)
	if p.Pid() != 0 {
		p.signal(syscall.SIGCONT)
		p.Kill(context.Background())
	}
	return os.RemoveAll(p.dir)
}
