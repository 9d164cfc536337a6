package scenarios

import (
	"sync"
	"syscall"
	"time"

	"github.com/gonogo/harness/internal/history"
)

// A watcher goroutine wakes every stallPeriod; a wake-up stallMin or more
// later than due, over which the process itself used less than half a CPU,
// means the harness process did not run meanwhile (the machine gave its
// CPUs to others, or the process was stopped), and the late part is
// recorded as a harness stall. The budget check subtracts stalls from the
// calls they overlap. A late wake-up while the process kept its CPUs busy
// is not a stall: its own goroutines (the layer under test's among them)
// delayed the watcher, and that must never excuse a slow call.
const (
	stallPeriod = 5 * time.Millisecond
	stallMin    = 25 * time.Millisecond
)

// watchStalls records harness stalls in r's history until the returned
// function is called (any number of times); the first call notes how many
// there were and the longest.
func (r *run) watchStalls() func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var n int
	var longest time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(stallPeriod)
		defer t.Stop()
		prev, prevCPU := time.Now(), processCPU()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			now, cpu := time.Now(), processCPU()
			if late := now.Sub(prev) - stallPeriod; stalled(late, now.Sub(prev), cpu-prevCPU) {
				r.rec.AddStall(history.Stall{Start: r.rec.Since(prev.Add(stallPeriod)), End: r.rec.Since(now)})
				n++
				longest = max(longest, late)
			}
			prev, prevCPU = now, cpu
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			if n > 0 {
				r.notes.add("harness stalls: %d (the harness process did not run for %s or more), longest %s; the budget check subtracts them from the calls they overlap",
					n, stallMin, longest.Round(time.Millisecond))
			}
		})
	}
}

// stalled tells whether a wake-up late by late, after wall time in which
// the process used cpu (all threads), was a harness stall.
func stalled(late, wall, cpu time.Duration) bool {
	return late >= stallMin && cpu < wall/2
}

// processCPU is the CPU time the process has used (user and system, all
// threads); 0 if it cannot be read, which makes every late wake-up count.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
