package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/gonogo/harness/target"
)

// instanceStart bounds an instance process's start-up (its /health
// answering 200), instanceStop its graceful stop before it is killed.
const (
	instanceStart = 15 * time.Second
	instanceStop  = 10 * time.Second
)

// instanceProc is the SSE step's serving instance run as a process of its
// own (Config.SSEInstance), so that its memory and file descriptors are
// its own, and the clients' are not in it.
type instanceProc struct {
	cmd  *exec.Cmd
	base string
	done chan struct{}
	// rssBase is its resident size once serving, before any client.
	rssBase int64
}

// startInstance runs argv + --profile profile --addr 127.0.0.1:<free port>
// with the tracker's environment pointing at redisURL, and waits for its
// /health.
func startInstance(ctx context.Context, argv []string, profile, redisURL, serverID string) (*instanceProc, error) {
	port, err := target.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := append(append([]string(nil), argv[1:]...), "--profile", profile, "--addr", addr)
	cmd := exec.Command(argv[0], args...)
	cmd.Env = append(os.Environ(), "REDIS_ENABLED=true", "REDIS_URL="+redisURL, "REDIS_EVENT_BUS=true", "REDIS_CACHE=true",
		"REDIS_SSE=true", "SERVER_ID="+serverID)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("instance process: %w", err)
	}
	p := &instanceProc{cmd: cmd, base: "http://" + addr, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }() //nolint:errcheck // its exit is seen through done
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(instanceStart)
	for {
		if resp, err := hc.Get(p.base + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("instance process %s exited before serving", argv[0])
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("instance process %s: /health not 200 within %s", argv[0], instanceStart)
		}
	}
	p.rssBase = rssOf(p.pid())
	return p, nil
}

func (p *instanceProc) pid() int { return p.cmd.Process.Pid }

// sample is the instance's footprint with conns connections.
func (p *instanceProc) sample(conns int) *ProcStats {
	s := &ProcStats{Process: "instance pid " + strconv.Itoa(p.pid()), RSSBytes: rssOf(p.pid()), BaseBytes: p.rssBase,
		FDs: fdsOf(p.pid()), Conns: conns}
	if conns > 0 && s.RSSBytes > 0 {
		s.RSSPerConn = float64(max(s.RSSBytes-p.rssBase, 0)) / float64(conns)
	}
	return s
}

// stop sends SIGTERM to its group, then SIGKILL after instanceStop.
func (p *instanceProc) stop() error {
	if p == nil {
		return nil
	}
	syscall.Kill(-p.pid(), syscall.SIGTERM) //nolint:errcheck // gone already is fine
	select {
	case <-p.done:
		return nil
	case <-time.After(instanceStop):
		syscall.Kill(-p.pid(), syscall.SIGKILL) //nolint:errcheck // gone already is fine
		<-p.done
		return errors.New("instance process did not stop on SIGTERM; killed")
	}
}
