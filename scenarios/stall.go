package scenarios

import (
	"sync"
	"time"

	"github.com/gonogo/harness/internal/history"
)

// A watcher goroutine wakes every stallPeriod; a wake-up stallMin or more
// later than due means the harness process did not run meanwhile (GC,
// scheduler or CPU starvation on a loaded machine), and the late part is
// recorded as a harness stall. The budget check subtracts stalls from the
// calls they overlap.
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
		prev := time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			now := time.Now()
			if late := now.Sub(prev) - stallPeriod; late >= stallMin {
				r.rec.AddStall(history.Stall{Start: r.rec.Since(prev.Add(stallPeriod)), End: r.rec.Since(now)})
				n++
				longest = max(longest, late)
			}
			prev = now
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
