package scenarios

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/history"
)

// TestStallChild is the process TestWatchStallsSeesFreeze freezes: it
// watches for stalls for a second and prints what it recorded.
func TestStallChild(t *testing.T) {
	if os.Getenv("GONOGO_STALL_CHILD") == "" {
		t.Skip("run by TestWatchStallsSeesFreeze")
	}
	r := &run{rec: history.NewRecorder()}
	stop := r.watchStalls()
	fmt.Println("ready")
	time.Sleep(time.Second)
	stop()
	b, _ := json.Marshal(struct {
		Stalls []history.Stall
		Notes  []string
	}{r.rec.History().Stalls, r.notes.all()})
	fmt.Println(string(b))
}

// TestWatchStallsSeesFreeze stops a process watching for stalls (SIGSTOP)
// for 300ms: it must record one stall of about that length, and note it.
func TestWatchStallsSeesFreeze(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestStallChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GONOGO_STALL_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("child said %q; want ready", sc.Text())
	}
	time.Sleep(100 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Stalls []history.Stall
		Notes  []string
	}
	for sc.Scan() {
		if json.Unmarshal(sc.Bytes(), &got) == nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	var longest time.Duration
	for _, s := range got.Stalls {
		longest = max(longest, s.End-s.Start)
	}
	// The child did not run for at least 300ms; the watcher records all
	// of it but one period.
	if longest < 300*time.Millisecond-stallPeriod {
		t.Errorf("longest stall %s (stalls %v); want at least %s", longest, got.Stalls, 300*time.Millisecond-stallPeriod)
	}
	if len(got.Notes) != 1 {
		t.Errorf("notes %q; want one about the stalls", got.Notes)
	}
}

// A late wake-up is a stall only when the process got (almost) no CPU:
// busy goroutines of its own delaying the watcher excuse nothing.
func TestStalledNeedsAnIdleProcess(t *testing.T) {
	for _, c := range []struct {
		late, wall, cpu time.Duration
		want            bool
	}{
		{300 * time.Millisecond, 305 * time.Millisecond, 2 * time.Millisecond, true},    // stopped or starved
		{300 * time.Millisecond, 305 * time.Millisecond, 600 * time.Millisecond, false}, // both CPUs busy with its own work
		{300 * time.Millisecond, 305 * time.Millisecond, 160 * time.Millisecond, false}, // more than half a CPU
		{10 * time.Millisecond, 15 * time.Millisecond, 0, false},                        // not late enough
	} {
		if got := stalled(c.late, c.wall, c.cpu); got != c.want {
			t.Errorf("stalled(late %s, wall %s, cpu %s) = %v; want %v", c.late, c.wall, c.cpu, got, c.want)
		}
	}
}
