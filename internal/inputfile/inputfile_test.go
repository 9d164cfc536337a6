package inputfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Repeat([]byte("a"), n), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sparse := filepath.Join(dir, "sparse")
	if err := os.WriteFile(sparse, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, 1<<40); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantLen int
		wantErr string // "" for success
	}{
		{"empty", write("empty", 0), 0, ""},
		{"at the limit", write("at", 100), 100, ""},
		{"one past the limit", write("past", 101), 0, "file too large: more than 100 bytes"},
		{"a terabyte, found by its size", sparse, 0, "file too large"},
		{"directory", dir, 0, "is a directory"},
		{"missing", filepath.Join(dir, "nope"), 0, "no such file"},
		{"endless device", "/dev/zero", 0, "file too large: more than 100 bytes"},
		{"empty device", "/dev/null", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Read(tt.path, 100)
			if tt.wantErr == "" {
				if err != nil || len(b) != tt.wantLen {
					t.Errorf("got %d bytes, %v; want %d bytes", len(b), err, tt.wantLen)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v; want an error with %q", err, tt.wantErr)
			}
		})
	}
}

// TestReadFIFO: a named pipe is read as a stream, bounded like a file,
// and one without a writer reads as empty instead of blocking.
func TestReadFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v (no FIFOs here)", err)
	}
	if b, err := Read(fifo, 100); err != nil || len(b) != 0 {
		t.Errorf("no writer: got %q, %v; want empty", b, err)
	}
	for _, tt := range []struct {
		n       int
		tooMuch bool
	}{{10, false}, {1000, true}} {
		// A reader held open lets the writer's open return at once, so
		// the writer is connected before Read opens the pipe.
		keep, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := w.Write(bytes.Repeat([]byte("x"), tt.n)) // fits the pipe's buffer
			w.Close()
			done <- err
		}()
		b, err := Read(fifo, 100)
		if tt.tooMuch {
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("%d bytes through a FIFO: got %d bytes, %v; want ErrTooLarge", tt.n, len(b), err)
			}
		} else if err != nil || len(b) != tt.n {
			t.Errorf("%d bytes through a FIFO: got %d, %v", tt.n, len(b), err)
		}
		if err := <-done; err != nil {
			t.Errorf("writer: %v", err)
		}
		keep.Close()
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{MaxYAML: "1 MiB", MaxHistory: "256 MiB", 1 << 30: "1 GiB", 4096: "4 KiB", 100: "100 bytes"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d): got %q; want %q", n, got, want)
		}
	}
}
