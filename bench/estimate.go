package bench

import (
	"context"
	"math"
	"time"

	"github.com/gonogo/harness/target"
)

// The calibration runs each step twice, with these op counts, on a local
// redis-server: the difference gives the commands per op, the rest the
// fixed cost of set-up and teardown.
const calLow, calHigh = 5, 25

// budgetMargin covers what calibration cannot see: background work (health
// checks, cleanup sweeps) lasting longer on a slow target, and retries.
const budgetMargin = 1.25

// estimateCommands is the number of commands the steps will send,
// measured by running each step briefly against a local redis-server with
// the same profiles. Connection set-up (HELLO, CLIENT SETINFO) is added
// per expected connection, since a slow target holds more open at once.
func estimateCommands(ctx context.Context, cfg Config, steps []Step) (int64, error) {
	p, err := target.StartProcess(ctx, target.ProcessOptions{})
	if err != nil {
		return 0, err
	}
	defer p.Close()
	cfg.Progress = nil
	s := &session{cfg: cfg, tg: p, run: runID()}
	var need float64
	for _, st := range steps {
		for _, prof := range stepProfiles(st, cfg.Profiles) {
			var t [2]int64
			for i, k := range []int64{calLow, calHigh} {
				before := s.sent
				cal := Step{Op: st.Op, Load: Load{Workers: st.Load.Workers, Ops: k, MaxMissed: -1, Interval: time.Hour}}
				if _, err := s.step(ctx, cal, prof); err != nil {
					return 0, err
				}
				t[i] = s.sent - before
			}
			per := float64(t[1]-t[0]) / (calHigh - calLow)
			fixed := math.Max(float64(t[0])-calLow*per, 0)
			need += fixed + per*float64(plannedOps(st.Load))
			// Every worker may hold a connection, plus the layer's own.
			need += initPerDial(s) * float64(max(st.Load.Workers, 1)+4)
			// The server meter's INFO and CLIENT LIST calls.
			need += meterCommandsPerStep
		}
	}
	return int64(math.Ceil(need * budgetMargin)), nil
}

func initPerDial(s *session) float64 {
	if s.dials == 0 {
		return 0
	}
	return float64(s.initSent) / float64(s.dials)
}

// stepProfiles is Raw for a raw op, else the profiles.
func stepProfiles(st Step, profiles []string) []string {
	if isRaw(st.Op) {
		return []string{Raw}
	}
	return profiles
}

// plannedOps is how many calls a load makes, warm-up included.
func plannedOps(l Load) int64 {
	if l.Rate > 0 {
		d := l.Duration
		if l.Ops > 0 {
			d = time.Duration(float64(l.Ops) / l.Rate * float64(time.Second))
		}
		return int64(l.Rate * (d + l.Warmup).Seconds())
	}
	return l.Ops + l.WarmupOps
}
