package scenarios

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gonogo/harness/internal/redact"
)

// The environment an instance process gets (docs/http.md, "Instance
// processes"): everything it needs, so that a program of any stack can be
// started as an instance (Deps.InstanceCmd).
const (
	// EnvAddr is host:port the instance must serve the HTTP contract on
	// (127.0.0.1 and a free port the harness picked, the same across
	// restarts); EnvHost and EnvPort are its two parts.
	EnvAddr = "HARNESS_ADDR"
	EnvHost = "HARNESS_HOST"
	EnvPort = "HARNESS_PORT"
	// EnvJournal is the directory of the outbox journal, set only when
	// the scenario asks for one (config journal: true); it outlives the
	// instance's restarts.
	EnvJournal = "OUTBOX_JOURNAL_DIR"
)

// InstanceEnv is what one instance process is told.
type InstanceEnv struct {
	Addr       string // host:port; port 0: `harness serve` picks and says
	RedisURL   string // through the scenario's proxy; a secret
	ServerID   string
	Token      string // HARNESS_CONTROL_TOKEN, random per instance
	JournalDir string // "" when the scenario has no journal
	// AckReplicas is the scenario's config ack_replicas (0: the
	// instance's own default), REDIS_ACK_REPLICAS when not 0.
	AckReplicas int
}

// vars are e's variables as NAME=value: REDIS_ENABLED, REDIS_URL,
// SERVER_ID, HARNESS_CONTROL (true), HARNESS_CONTROL_TOKEN, HARNESS_ADDR,
// HARNESS_HOST, HARNESS_PORT, OUTBOX_JOURNAL_DIR and REDIS_ACK_REPLICAS when
// set, and ChildEnv.
func (e InstanceEnv) vars() []string {
	host, port, _ := net.SplitHostPort(e.Addr)
	v := []string{"REDIS_ENABLED=true", "REDIS_URL=" + e.RedisURL, "SERVER_ID=" + e.ServerID,
		"HARNESS_CONTROL=true", "HARNESS_CONTROL_TOKEN=" + e.Token,
		EnvAddr + "=" + e.Addr, EnvHost + "=" + host, EnvPort + "=" + port, ChildEnv + "=1"}
	if e.JournalDir != "" {
		v = append(v, EnvJournal+"="+e.JournalDir)
	}
	if e.AckReplicas != 0 {
		v = append(v, "REDIS_ACK_REPLICAS="+strconv.Itoa(e.AckReplicas))
	}
	return v
}

// ParseInstanceCmd splits an instance command line on white space (no
// shell: no quoting, no variables; a script can do what a shell line
// would) and resolves its program in PATH to an absolute path. An empty
// line or a program that is not found or not executable is an error
// naming it.
func ParseInstanceCmd(line string) ([]string, error) {
	argv := strings.Fields(line)
	if len(argv) == 0 {
		return nil, errors.New("empty: want the command that starts one instance of your service, e.g. 'python3 serve.py'")
	}
	exe, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("%s: not found or not executable", argv[0])
	}
	if exe, err = filepath.Abs(exe); err != nil {
		return nil, fmt.Errorf("%s: %w", argv[0], err)
	}
	if st, err := os.Stat(exe); err != nil || st.IsDir() {
		return nil, fmt.Errorf("%s: not an executable file", argv[0])
	}
	argv[0] = exe
	return argv, nil
}

// foreign reports whether instance processes are the instance command
// (Deps.InstanceCmd) rather than the harness's own serve.
func (r *run) foreign() bool { return len(r.deps.InstanceCmd) > 0 }

// freeAddr is a loopback address with a port free now, picked by the
// kernel.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// addrFree checks that addr can be listened on now.
func addrFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// signalGroup sends sig to the process group cmd leads (Setpgid): the
// process the harness started and whatever it started (a server it forked
// keeps the state).
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	return syscall.Kill(-cmd.Process.Pid, sig)
}

// groupPids lists the processes of process group pgid that are not yet
// zombies, from /proc.
func groupPids(pgid int) []int {
	dirs, _ := os.ReadDir("/proc")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold anything but ')'
		// ends it last.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 2 && f[0] != "Z" && f[0] != "X" && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}

// groupGrace bounds the wait for a group killed after its stop timeout.
const groupGrace = 5 * time.Second

// waitGroup waits, once cmd's leader was reaped, for the rest of its
// process group to exit; when timeout fires first (nil: it has fired
// already) the group is killed. It returns the pids that were killed.
func (r *run) waitGroup(cmd *exec.Cmd, timeout <-chan time.Time) []int {
	pgid := cmd.Process.Pid
	if timeout == nil {
		timeout = time.After(0)
	}
	var killed []int
	for left := groupPids(pgid); len(left) > 0; left = groupPids(pgid) {
		select {
		case <-timeout:
			if killed != nil {
				r.notes.add("process group %d: %v still running %s after SIGKILL", pgid, left, groupGrace)
				return killed
			}
			killed = left
			signalGroup(cmd, syscall.SIGKILL)
			timeout = time.After(groupGrace)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return killed
}

// groupRefresh is how many RSS samples reuse a process group's members
// (a /proc scan costs milliseconds on a loaded machine).
const groupRefresh = 10

// instanceRSS is the resident memory of instance process pid: with an
// instance command, of its whole process group (a server it forked,
// workers), whose members groups caches.
func (r *run) instanceRSS(pid int, groups map[int][]int) (int64, error) {
	if !r.foreign() {
		return rss(pid)
	}
	pids, ok := groups[pid]
	if !ok {
		pids = groupPids(pid)
		groups[pid] = pids
	}
	var sum int64
	n := 0
	for _, p := range pids {
		v, err := rss(p)
		if err != nil {
			continue // it ended in between
		}
		sum, n = sum+v, n+1
	}
	if n == 0 {
		return 0, errors.New("no process of the group runs")
	}
	return sum, nil
}

// redact masks the secrets an instance process is given (the password of
// its REDIS_URL, its control token) in s: a foreign program may log them.
func (r *run) redact(s string) string {
	secrets := redact.Secrets(r.cfg.URL)
	for _, c := range r.children {
		secrets = append(secrets, c.token)
	}
	return redact.Text(s, secrets...)
}

// tail is the last lines an instance process logged, redacted.
func (r *run) tail(path string) []string {
	lines := tail(path)
	for i, l := range lines {
		lines[i] = r.redact(l)
	}
	return lines
}
