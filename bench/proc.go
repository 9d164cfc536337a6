package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
)

// ProcStats is this process's footprint at the end of a step's measured
// phase: the layers under test (instances, their services) run in it, and
// so do the harness's clients. RSSPerConn is the growth of resident memory
// since before the step's set-up divided by the step's connections (SSE
// clients): both ends of each connection are in this process, so it is an
// upper bound on the instance's cost per connection.
type ProcStats struct {
	// Process says whose footprint this is: "" this process's, else the
	// instance process's (Config.SSEInstance), whose connections' other
	// ends are not in it.
	Process    string  `json:"process,omitempty"`
	RSSBytes   int64   `json:"rss_bytes"`
	BaseBytes  int64   `json:"rss_before_bytes"`
	HeapBytes  uint64  `json:"heap_inuse_bytes"`
	Goroutines int     `json:"goroutines"`
	FDs        int     `json:"fds"`
	Conns      int     `json:"conns,omitempty"`
	RSSPerConn float64 `json:"rss_per_conn_bytes,omitempty"`
}

// rss reads this process's resident set size from /proc (0 where there is
// no /proc).
func rss() int64 { return rssAt("/proc/self/status") }

// rssOf is process pid's resident set size.
func rssOf(pid int) int64 { return rssAt("/proc/" + strconv.Itoa(pid) + "/status") }

func rssAt(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			fs := bytes.Fields(v)
			if len(fs) == 2 && string(fs[1]) == "kB" {
				n, err := strconv.ParseInt(string(fs[0]), 10, 64)
				if err == nil {
					return n * 1024
				}
			}
		}
	}
	return 0
}

// openFDs counts this process's open file descriptors (0 without /proc).
func openFDs() int { return fdsAt("/proc/self/fd") }

// fdsOf counts process pid's open file descriptors.
func fdsOf(pid int) int { return fdsAt("/proc/" + strconv.Itoa(pid) + "/fd") }

func fdsAt(dir string) int {
	es, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	return len(es)
}

// settledRSS is the resident size after a collection has returned what it
// can to the OS: the baseline a step's growth is measured from.
func settledRSS() int64 {
	debug.FreeOSMemory()
	return rss()
}

// sampleProc reads the footprint; base is settledRSS before the step's
// set-up, conns the step's connections (0: no per-connection figure).
func sampleProc(base int64, conns int) *ProcStats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p := &ProcStats{RSSBytes: rss(), BaseBytes: base, HeapBytes: ms.HeapInuse, Goroutines: runtime.NumGoroutine(),
		FDs: openFDs(), Conns: conns}
	if conns > 0 && p.RSSBytes > 0 {
		p.RSSPerConn = float64(max(p.RSSBytes-base, 0)) / float64(conns)
	}
	return p
}

// raiseNoFile makes sure this process may open need file descriptors:
// it raises the soft RLIMIT_NOFILE, and the hard one where that is
// allowed (root). It returns the limit in force and, when that is below
// need, why it could not be raised.
func raiseNoFile(need uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur >= need {
		return lim.Cur, nil
	}
	want := lim
	want.Cur = need
	if want.Max < need {
		want.Max = need
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
		return need, nil
	}
	// Not allowed past the hard limit: take what it allows.
	want = lim
	want.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return lim.Cur, fmt.Errorf("setrlimit NOFILE to %d: %w", need, err)
	}
	return lim.Max, fmt.Errorf("the hard limit is %d (raising it needs root or CAP_SYS_RESOURCE; try `ulimit -Hn %d`)", lim.Max, need)
}
