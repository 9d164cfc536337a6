// Package inputfile reads files the harness is given (scenario and gates
// files, a saved run's histories and reports) without trusting their size:
// a read stops one byte past a stated maximum, so /dev/zero, a growing file
// or a huge one is an error instead of an exhausted machine.
package inputfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// The largest file of each kind the harness reads. docs/limits.md lists
// them (a test keeps it in step).
const (
	// MaxYAML is a scenario or gates file.
	MaxYAML = 1 << 20
	// MaxHistory is a saved run's history.json (a scenario's planned
	// operations are bounded so that its history fits).
	MaxHistory = 256 << 20
	// MaxReport is a saved run's report.json.
	MaxReport = 64 << 20
	// MaxPEM is a CA, client certificate or key file (--ca-file,
	// --cert-file, --key-file).
	MaxPEM = 1 << 20
)

// ErrTooLarge is returned for a file past its maximum.
var ErrTooLarge = errors.New("file too large")

// Read reads the file at path, at most max bytes. A directory is an
// error; so is a regular file larger than max, found before reading it. A
// FIFO or device (/dev/stdin, /dev/zero, a named pipe) is read as a stream
// up to max+1 bytes; a named pipe is opened without waiting for a writer,
// so one nobody writes to reads as empty rather than hanging.
func Read(path string, max int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	flag := os.O_RDONLY
	switch m := fi.Mode(); {
	case m.IsDir():
		return nil, fmt.Errorf("%s is a directory, not a file", path)
	case m.IsRegular() && fi.Size() > max:
		return nil, tooLarge(path, max)
	case m&os.ModeNamedPipe != 0:
		flag |= syscall.O_NONBLOCK
	case m&os.ModeSocket != 0:
		return nil, fmt.Errorf("%s is a socket, not a file", path)
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, tooLarge(path, max)
	}
	return b, nil
}

func tooLarge(path string, max int64) error {
	return fmt.Errorf("%s: %w: more than %s", path, ErrTooLarge, Size(max))
}

// Size formats a byte count as the limits are stated: "1 MiB", "256 MiB".
func Size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
