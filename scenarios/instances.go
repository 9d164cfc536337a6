package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/httplayer"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/scenarios/check"
)

// Instance modes (Spec.InstanceMode).
const (
	// InstancesInProcess builds every instance in the harness's own
	// process (the default): fast, but no instance can be stopped.
	InstancesInProcess = "in-process"
	// InstancesProcess runs every instance as a `harness serve -control`
	// child process on a free loopback port, reached over the HTTP
	// contract like --service: the instance faults act on it.
	InstancesProcess = "process"
)

// ChildEnv is set (to "1") in the environment of every instance process
// the engine starts. `harness serve` ignores it; a test binary re-executed
// as an instance checks it in TestMain and serves instead of testing.
const ChildEnv = "GONOGO_INSTANCE_CHILD"

// The instance faults of the timeline (FaultStep): they act on one instance
// process (param instance: its index), so they need instance_mode process.
const (
	FaultInstanceStop    = "instance_stop"    // SIGTERM, wait for exit; undone by a start on the same address
	FaultInstanceKill    = "instance_kill"    // SIGKILL; undone by a start on the same address
	FaultInstanceRestart = "instance_restart" // how: stop|kill, then start again; server_id: same|new
	FaultInstancePause   = "instance_pause"   // SIGSTOP; undone by SIGCONT
)

var instanceFaults = []string{FaultInstanceStop, FaultInstanceKill, FaultInstanceRestart, FaultInstancePause}

func isInstanceFault(name string) bool {
	for _, f := range instanceFaults {
		if f == name {
			return true
		}
	}
	return false
}

// Bounds on instance processes.
const (
	childStartTimeout = 30 * time.Second
	childStopTimeout  = 20 * time.Second
	logTailBytes      = 64 << 10
	logTailLines      = 20
	rssInterval       = 100 * time.Millisecond
)

// slot is one instance's place in the rotation: calls hold mu shared, an
// instance fault holds it alone to take the instance out (after the calls
// in flight on it returned, as a load balancer drains) and to put it back.
type slot struct {
	mu   sync.RWMutex
	down bool
}

// route returns instance i's layer held against a restart (the flag step)
// and against instance faults until release. When i is down, with reroute
// it is the next instance that is up (the load balancer's choice: calls
// never go to a stopped, killed or paused instance); without, l is nil
// and ok false. When no instance is up, it is i's layer with ok false. j is
// the instance chosen.
func (r *run) route(i int, reroute bool) (l *impl.Layer, j int, release func(), ok bool) {
	r.restart.RLock()
	n := len(r.layers)
	for k := 0; k < n; k++ {
		j = (i + k) % n
		s := r.slots[j]
		s.mu.RLock()
		if !s.down {
			return r.layers[j], j, func() { s.mu.RUnlock(); r.restart.RUnlock() }, true
		}
		s.mu.RUnlock()
		if !reroute {
			break
		}
	}
	if reroute {
		// Every instance is down: a call goes to i and fails, as it would.
		return r.layers[i], i, r.restart.RUnlock, false
	}
	r.restart.RUnlock()
	return nil, i, func() {}, false
}

// takeOut marks instance i down once the calls in flight on it returned.
func (r *run) takeOut(i int) {
	s := r.slots[i]
	s.mu.Lock()
	s.down = true
	s.mu.Unlock()
}

// putBack makes l instance i's layer and the instance up again.
func (r *run) putBack(i int, l *impl.Layer) {
	r.restart.Lock()
	defer r.restart.Unlock()
	s := r.slots[i]
	s.mu.Lock()
	r.layers[i], s.down = l, false
	s.mu.Unlock()
}

// instanceName is the SERVER_ID instance i runs with now.
func (r *run) instanceName(i int) string {
	if i < len(r.children) {
		c := r.children[i]
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.id
	}
	return instanceID(i)
}

// child is one instance process and what survives its restarts: its index,
// address and log directory.
type child struct {
	i     int
	addr  string // host:port, kept across restarts
	token string // its control API's HARNESS_CONTROL_TOKEN, random

	// op serializes the instance faults' Inject and Undo on this child:
	// their windows do not overlap, but a graceful stop can outlast its
	// window (the process writes its outbox to Redis first), and a restart
	// that began meanwhile started a second process on the same journal
	// (explore seed 3030's duplicated-d32356de: "journal directory in use
	// by another instance", 1 replay in 3).
	op sync.Mutex

	mu    sync.Mutex
	id    string // SERVER_ID of the current process
	gen   int    // processes started so far
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd was reaped
	log   string        // log file of the current process
	svc   *httplayer.Service
	ended bool // the current process has ended (or none started)
}

// processMode reports whether the spec runs its instances as processes.
func (r *run) processMode() bool { return r.spec.InstanceMode == InstancesProcess }

// processUnavailable lists why the run cannot start instance processes.
func (r *run) processUnavailable() []string {
	if !r.processMode() {
		return nil
	}
	var why []string
	if len(r.deps.Serve) == 0 && len(r.deps.InstanceCmd) == 0 {
		why = append(why, "instance_mode process not available: the harness runs no instance processes here (--service gives running services: add --instance-cmd, the command that starts one, or use instance_mode in-process)")
	}
	if r.target.TLS() != nil {
		why = append(why, "instance_mode process not available on a TLS target: an instance process reads REDIS_URL only, not the harness's CA and client certificate")
	}
	return why
}

// logDir is where instance processes write their logs: the run
// directory's instances/, or a directory of the run's removed at teardown.
func (r *run) logDir() (string, error) {
	if r.instDir != "" {
		return r.instDir, nil
	}
	if r.opts.Dir != "" {
		r.instDir = filepath.Join(r.opts.Dir, "instances")
		return r.instDir, os.MkdirAll(r.instDir, 0o755)
	}
	d, err := os.MkdirTemp("", "gonogo-instances-")
	r.instDir, r.instTemp = d, err == nil
	return d, err
}

// startInstance starts instance i's first process and returns its layer.
func (r *run) startInstance(ctx context.Context, i int, cfg impl.Config) (*impl.Layer, error) {
	tok := make([]byte, 16)
	_, err := rand.Read(tok)
	if err != nil {
		return nil, exitcode.Harnessf("control token: %w", err)
	}
	c := &child{i: i, addr: "127.0.0.1:0", token: hex.EncodeToString(tok), id: cfg.ServerID, ended: true}
	if r.foreign() {
		// A program of the team's own serves where it is told: the
		// harness picks the port, kept across restarts.
		if c.addr, err = freeAddr(); err != nil {
			return nil, exitcode.Harnessf("instance %d: a free port: %w", i, err)
		}
	}
	r.children = append(r.children, c)
	return r.startChild(ctx, c, cfg)
}

var servingRE = regexp.MustCompile(`serving profile \S+ on (http://\S+)`)

// startChild starts a process for c on its address with c.id as
// SERVER_ID, waits (bounded) until it serves, and resets it to cfg over
// the control API. The harness's own serve works in the instance's own
// directory and says where it serves; an instance command (Deps.InstanceCmd)
// works in the harness's directory, is told where to serve (InstanceEnv)
// and is waited for until it answers there. Stdout and stderr go to one
// log file; the process leads a process group of its own (the faults
// signal the whole group), the leader dies with the harness (Pdeathsig)
// and is reaped by a goroutine.
func (r *run) startChild(ctx context.Context, c *child, cfg impl.Config) (*impl.Layer, error) {
	dir, err := r.logDir()
	if err != nil {
		return nil, exitcode.Harnessf("instance log directory: %w", err)
	}
	c.mu.Lock()
	c.gen++
	logPath := filepath.Join(dir, fmt.Sprintf("%s.%d.log", instanceID(c.i), c.gen))
	id, addr := c.id, c.addr
	c.mu.Unlock()
	// Each instance has a directory of its own that outlives its
	// restarts: what it keeps on local disk (a journal) is there when it
	// starts again.
	work := filepath.Join(dir, instanceID(c.i))
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, exitcode.Harnessf("instance directory: %w", err)
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, exitcode.Harnessf("instance log: %w", err)
	}
	env := InstanceEnv{Addr: addr, RedisURL: r.cfg.URL, ServerID: id, Token: c.token, AckReplicas: r.spec.Config.AckReplicas}
	if r.spec.Config.Journal {
		env.JournalDir = filepath.Join(work, "journal")
	}
	var cmd *exec.Cmd
	if r.foreign() {
		// It is waited for until something answers on addr: that must
		// not be a process of an earlier start.
		if err := addrFree(addr); err != nil {
			f.Close()
			return nil, exitcode.Harnessf("instance %s: its address is still taken: %w", id, err)
		}
		cmd = exec.Command(r.deps.InstanceCmd[0], r.deps.InstanceCmd[1:]...)
	} else {
		argv := append(append([]string(nil), r.deps.Serve...), "-control", "-profile", r.opts.Profile, "-addr", addr)
		cmd = exec.Command(argv[0], argv[1:]...)
		// Nothing lands in the harness's directory.
		cmd.Dir = work
	}
	cmd.Env = append(os.Environ(), env.vars()...)
	if r.spec.Workload.SSE.Browser.CrossOrigin {
		origin, err := r.pageOrigin()
		if err != nil {
			f.Close()
			return nil, exitcode.Harnessf("instance %s: %w", id, err)
		}
		cmd.Env = append(cmd.Env, "CORS_ORIGINS="+origin)
	}
	cmd.Stdout, cmd.Stderr = f, f
	// The child dies with the harness even on SIGKILL of the harness, and
	// a terminal's Ctrl-C reaches the harness only, which stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	err = cmd.Start()
	f.Close()
	if err != nil {
		return nil, exitcode.Harnessf("starting instance %s: %s", id, r.redact(err.Error()))
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	c.mu.Lock()
	c.cmd, c.done, c.log, c.ended = cmd, done, logPath, false
	c.mu.Unlock()
	fmt.Fprintf(r.logw, "%s: instance %s started, pid %d, log %s\n", r.spec.Name, id, cmd.Process.Pid, logPath)
	base, err := waitServing(ctx, logPath, addr, done)
	if err == nil {
		var l *impl.Layer
		if l, err = r.dialChild(ctx, c, base, cfg); err == nil {
			return l, nil
		}
	}
	signalGroup(cmd, syscall.SIGKILL)
	<-done
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
	var un unavailableError
	if errors.As(err, &un) {
		return nil, un
	}
	return nil, exitcode.Harnessf("instance %s: %s; log: %s", id, r.redact(err.Error()), strings.Join(r.tail(logPath), " | "))
}

// dialChild reaches c's process at base and resets it to cfg; the layer's
// Close stops the process gracefully.
func (r *run) dialChild(ctx context.Context, c *child, base string, cfg impl.Config) (*impl.Layer, error) {
	svc, err := httplayer.Dial(ctx, base, c.token)
	if err != nil {
		return nil, err
	}
	if why := controlLacks(svc, r.spec); len(why) > 0 {
		svc.Close()
		return nil, unavailableError(why)
	}
	l, err := svc.Layer(ctx, cfg, sseHeartbeat(cfg))
	if err != nil {
		svc.Close()
		return nil, err
	}
	c.mu.Lock()
	c.addr, c.svc = strings.TrimPrefix(base, "http://"), svc
	key := fmt.Sprintf("instance.%s.%d.", instanceID(c.i), c.gen)
	r.rec.SetMeta(key+"pid", strconv.Itoa(c.cmd.Process.Pid))
	r.rec.SetMeta(key+"addr", c.addr)
	r.rec.SetMeta(key+"server_id", c.id)
	c.mu.Unlock()
	// Closing the layer is stopping its process: there is nothing to reset
	// it to.
	l.Close = func() error {
		r.endChild(c, syscall.SIGTERM, check.ExitStop)
		return nil
	}
	return l, nil
}

// waitServing waits (bounded) until the process says where it serves
// (the "serving profile P on URL" line of `harness serve` in its log) or,
// when addr has a port, until it answers HTTP there (any status: the dial
// that follows judges the answer).
func waitServing(ctx context.Context, logPath, addr string, done chan struct{}) (string, error) {
	probe := !strings.HasSuffix(addr, ":0")
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(childStartTimeout)
	for time.Now().Before(deadline) {
		if m := servingRE.FindSubmatch(head(logPath)); m != nil {
			return string(m[1]), nil
		}
		if probe {
			if resp, err := hc.Get("http://" + addr + "/health"); err == nil {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				return "http://" + addr, nil
			}
		}
		select {
		case <-done:
			return "", errors.New("exited at start-up")
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if probe {
		return "", fmt.Errorf("did not answer on %s within %s", addr, childStartTimeout)
	}
	return "", fmt.Errorf("did not say where it serves within %s", childStartTimeout)
}

// head is the start of a log file (where the serving line is).
func head(path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 16<<10))
	return b
}

// tail is the last lines of a log file, at most logTailLines from its
// last logTailBytes.
func tail(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > logTailBytes {
		f.Seek(st.Size()-logTailBytes, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, logTailBytes))
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), logTailBytes)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			lines = append(lines, s)
		}
	}
	return lines[max(0, len(lines)-logTailLines):]
}

// endChild ends c's current process with sig (SIGTERM: a graceful stop;
// SIGKILL: a crash) sent to its whole process group, waits for the leader
// to be reaped and the rest of its group to exit (bounded: a group that
// outlives childStopTimeout after SIGTERM is killed, and that says so),
// and records an instance_exit op with the leader's exit status and the
// last lines it logged. Nothing happens when no process runs.
func (r *run) endChild(c *child, sig syscall.Signal, how string) {
	c.mu.Lock()
	cmd, done, ended, id, logPath, svc := c.cmd, c.done, c.ended, c.id, c.log, c.svc
	c.ended = true
	c.mu.Unlock()
	if ended || cmd == nil {
		return
	}
	op := history.Op{Client: "engine", Kind: history.InstanceExit, Instance: id, Value: how, Call: r.rec.Now()}
	signalGroup(cmd, syscall.SIGCONT) // a paused process cannot act on SIGTERM
	signalGroup(cmd, sig)
	timeout := time.After(childStopTimeout)
	select {
	case <-done:
	case <-timeout:
		signalGroup(cmd, syscall.SIGKILL)
		<-done
		timeout = nil
		r.notes.add("instance %s did not exit within %s of %s: killed", id, childStopTimeout, sig)
	}
	// What the leader started in its group (a server it forked) ends too.
	if left := r.waitGroup(cmd, timeout); len(left) > 0 {
		r.notes.add("instance %s: processes %v of its group outlived it: killed", id, left)
	}
	if svc != nil {
		svc.Close()
	}
	op.Return = r.rec.Now()
	st := cmd.ProcessState
	op.OK = st.Success()
	if !op.OK {
		op.Err = st.String()
	}
	op.Values = r.tail(logPath)
	r.rec.Add(op)
	fmt.Fprintf(r.logw, "%s: instance %s ended (%s): %s\n", r.spec.Name, id, how, st)
}

// instanceFault is an instance fault of the timeline on instance i.
type instanceFault struct {
	r     *run
	name  string
	i     int
	how   string // instance_restart: stop or kill
	newID bool   // instance_restart: start with a new SERVER_ID

	mu         sync.Mutex
	start, end time.Duration
}

// Window runs from taking the instance out of the rotation to putting it
// back (for instance_restart, to the end of its Inject).
func (f *instanceFault) Window() (start, end time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.start, f.end
}

func (f *instanceFault) mark(start bool) {
	now := f.r.rec.Now()
	f.mu.Lock()
	if start {
		f.start = now
	}
	f.end = now
	f.mu.Unlock()
}

// parseInstanceFault validates an instance fault's params: instance (the
// index, required), and for instance_restart how (stop|kill, default stop)
// and server_id (same|new, default same).
func parseInstanceFault(name string, params map[string]string) (*instanceFault, error) {
	f := &instanceFault{name: name, how: check.ExitStop}
	allowed := map[string]bool{"instance": true}
	if name == FaultInstanceRestart {
		allowed["how"], allowed["server_id"] = true, true
	}
	for k := range params {
		if !allowed[k] {
			return nil, fmt.Errorf("%s: unknown param %q", name, k)
		}
	}
	v, ok := params["instance"]
	if !ok {
		return nil, fmt.Errorf("%s: param instance (the index of the instance, 0 to 7) is required", name)
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 || i > 7 {
		return nil, fmt.Errorf("%s: instance %q: want 0 to 7", name, v)
	}
	f.i = i
	switch params["how"] {
	case "", check.ExitStop:
	case check.ExitKill:
		f.how = check.ExitKill
	default:
		return nil, fmt.Errorf("%s: how %q: want stop or kill", name, params["how"])
	}
	switch params["server_id"] {
	case "", "same":
	case "new":
		f.newID = true
	default:
		return nil, fmt.Errorf("%s: server_id %q: want same or new", name, params["server_id"])
	}
	return f, nil
}

func (f *instanceFault) Name() string { return f.name }

// Available: the engine must run the instance as a process it owns.
func (f *instanceFault) Available(chaos.Env) error {
	if !f.r.processMode() {
		return errors.New("an instance fault needs the instances run as processes the harness owns (instance_mode: process)")
	}
	if n := max(f.r.spec.Instances, 1); f.i >= n {
		return fmt.Errorf("instance %d: the scenario runs %d instances", f.i, n)
	}
	return nil
}

func (f *instanceFault) child() (*child, error) {
	if f.i >= len(f.r.children) {
		return nil, fmt.Errorf("instance %d is not running", f.i)
	}
	return f.r.children[f.i], nil
}

func (f *instanceFault) Inject(ctx context.Context, _ chaos.Env) error {
	c, err := f.child()
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	f.mark(true)
	defer f.mark(false)
	f.r.takeOut(f.i)
	switch f.name {
	case FaultInstanceStop:
		f.r.endChild(c, syscall.SIGTERM, check.ExitStop)
	case FaultInstanceKill:
		f.r.endChild(c, syscall.SIGKILL, check.ExitKill)
	case FaultInstancePause:
		c.mu.Lock()
		if !c.ended {
			err = signalGroup(c.cmd, syscall.SIGSTOP)
		}
		c.mu.Unlock()
	case FaultInstanceRestart:
		sig := syscall.SIGTERM
		if f.how == check.ExitKill {
			sig = syscall.SIGKILL
		}
		f.r.endChild(c, sig, f.how)
		err = f.r.restartChild(ctx, c, f.newID)
	}
	return err
}

// Undo starts a stopped or killed instance again on its address (same
// SERVER_ID), continues a paused one, and puts it back in the rotation.
func (f *instanceFault) Undo(ctx context.Context, _ chaos.Env) error {
	c, err := f.child()
	if err != nil {
		return nil
	}
	c.op.Lock()
	defer c.op.Unlock()
	defer f.mark(false)
	switch f.name {
	case FaultInstancePause:
		c.mu.Lock()
		if !c.ended {
			err = signalGroup(c.cmd, syscall.SIGCONT)
		}
		c.mu.Unlock()
		if err == nil {
			f.r.slots[f.i].mu.Lock()
			f.r.slots[f.i].down = false
			f.r.slots[f.i].mu.Unlock()
		}
		return err
	case FaultInstanceStop, FaultInstanceKill:
		return f.r.restartChild(ctx, c, false)
	}
	return nil
}

// faultDown reports whether instance i is a process an instance fault
// ended (stopped or killed, not yet started again).
func (r *run) faultDown(i int) bool {
	if i >= len(r.children) {
		return false
	}
	c := r.children[i]
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// restartChild starts c again on its address, with a new SERVER_ID when
// asked, and puts it back in the rotation.
func (r *run) restartChild(ctx context.Context, c *child, newID bool) error {
	c.mu.Lock()
	if !c.ended {
		c.mu.Unlock()
		return nil
	}
	if newID {
		c.id = fmt.Sprintf("%s-%d", instanceID(c.i), c.gen)
	}
	cfg := r.currentConfig()
	cfg.ServerID = c.id
	c.mu.Unlock()
	l, err := r.startChild(ctx, c, cfg)
	if err != nil {
		return err
	}
	r.putBack(c.i, l)
	r.notes.add("instance %d restarted as %s on %s", c.i, cfg.ServerID, c.addr)
	return nil
}

// sampleRSS records every running instance process's resident memory
// (VmRSS of /proc/<pid>/status) every rssInterval until ctx ends.
func (r *run) sampleRSS(ctx context.Context) {
	groups := map[int][]int{}
	for tick := 0; sleepCtx(ctx, rssInterval); tick++ {
		if tick%groupRefresh == 0 {
			clear(groups)
		}
		for _, c := range r.children {
			c.mu.Lock()
			id, ended, cmd := c.id, c.ended, c.cmd
			c.mu.Unlock()
			if ended || cmd == nil {
				continue
			}
			n, err := r.instanceRSS(cmd.Process.Pid, groups)
			if err != nil {
				continue // it ended in between
			}
			now := r.rec.Now()
			r.rec.Add(history.Op{Client: "engine", Kind: history.RSS, Instance: id, Count: n, Call: now, Return: now, OK: true})
		}
	}
}

// rss reads a process's resident set size in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS")
}

// stopChildren stops every instance process still running (gracefully,
// bounded) and removes a temporary log directory.
func (r *run) stopChildren() {
	for _, c := range r.children {
		r.endChild(c, syscall.SIGTERM, check.ExitStop)
	}
	if r.instTemp {
		os.RemoveAll(r.instDir)
	}
}
