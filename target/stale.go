package target

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/gonogo/harness/internal/history"
)

// tempPrefix starts the name of every process target's directory in the
// system's temporary directory.
const tempPrefix = "gonogo-redis-"

// ownerFile, in a process target's directory, names the process that made
// it: "pid N", "start T" (its start time in clock ticks since boot, so a
// reused pid is not taken for it) and "pidns" (its PID namespace, outside
// which pids mean nothing). CleanStale removes only directories with one.
const ownerFile = "owner"

// writeOwner records this process as the owner of dir.
func writeOwner(dir string) error {
	pid := os.Getpid()
	start, err := startTime(pid)
	if err != nil {
		return fmt.Errorf("recording the owner of %s: %w", dir, err)
	}
	ns, _ := os.Readlink("/proc/self/ns/pid")
	body := fmt.Sprintf("pid %d\nstart %d\npidns %s\n", pid, start, ns)
	return history.WriteFileAtomic(filepath.Join(dir, ownerFile), []byte(body))
}

// startTime is field 22 of /proc/pid/stat: when the process started, in
// clock ticks since boot.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after "(comm)", which may hold spaces: state is field 3.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b)[i+1:])
	if i < 0 || len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// ownerAlive reads dir's owner file. known is false when dir has none or
// it cannot be judged (another PID namespace, unreadable): such a
// directory is not ours to remove. alive says whether its owner still
// runs.
func ownerAlive(dir string) (known, alive bool) {
	f, err := os.Open(filepath.Join(dir, ownerFile))
	if err != nil {
		return false, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 512))
	if err != nil {
		return false, false
	}
	var pid int
	var start uint64
	var ns string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "pid":
			pid, _ = strconv.Atoi(v)
		case "start":
			start, _ = strconv.ParseUint(v, 10, 64)
		case "pidns":
			ns = v
		}
	}
	if pid <= 0 || start == 0 {
		return false, false
	}
	if own, _ := os.Readlink("/proc/self/ns/pid"); own != ns {
		return false, false
	}
	st, err := startTime(pid)
	return true, err == nil && st == start
}

// CleanStale removes the process-target directories that runs which died
// without cleaning up (kill -9, a crash) left in the temporary directory:
// only those whose owner file names a process of this PID namespace that
// is gone, and that belong to this user. A live run's directory, one
// without an owner file (not ours, or still being made) and anything else
// are left alone. It returns the directories it removed and those it left
// alone because it cannot judge their owner (no owner file: made by an
// older harness or not set up yet; or another PID namespace's).
func CleanStale() (removed, unknown []string, err error) {
	return cleanStale(os.TempDir())
}

func cleanStale(tmp string) (removed, unknown []string, err error) {
	matches, err := filepath.Glob(filepath.Join(tmp, tempPrefix+"*"))
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, dir := range matches {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || !ownedByMe(fi) {
			continue
		}
		known, alive := ownerAlive(dir)
		if !known {
			unknown = append(unknown, dir)
		}
		if !known || alive {
			continue
		}
		if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, dir)
	}
	return removed, unknown, errors.Join(errs...)
}

// ownedByMe reports whether fi belongs to this process's user.
func ownedByMe(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
