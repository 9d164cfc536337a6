package check

import (
	"fmt"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/history"
)

// judgedModes counts the distinct acknowledged events a check judged, by
// the mode their publish was acknowledged in (impl.ModeMemory, or
// impl.ModeRedis for anything else), so that it can state its sensitivity per mode: a loss in
// fallback and a loss on Redis are different defects, and a run with few
// events in one mode proves little about it.
type judgedModes struct {
	seen map[eventKey]bool
	n    map[string]int
}

func newJudgedModes() *judgedModes {
	return &judgedModes{seen: map[eventKey]bool{}, n: map[string]int{}}
}

// add counts p's event once.
func (j *judgedModes) add(p history.Op) {
	k := eventKey{p.Flow, p.EventID}
	if j.seen[k] {
		return
	}
	j.seen[k] = true
	j.n[ackMode(p)]++
}

func ackMode(p history.Op) string {
	if p.Mode == impl.ModeMemory {
		return impl.ModeMemory
	}
	return impl.ModeRedis
}

// state sets r's sensitivity: metrics <name>_detectable_1_in_redis and
// _memory (1 / DetectableRate of the events judged in that mode: a gate
// asks for, say, >= 2000) and a sentence saying the same.
func (j *judgedModes) state(r *Result, name string) {
	redis, mem := j.n[impl.ModeRedis], j.n[impl.ModeMemory]
	r.Metrics[name+"_detectable_1_in_redis"] = oneIn(redis)
	r.Metrics[name+"_detectable_1_in_memory"] = oneIn(mem)
	r.Sensitivity = fmt.Sprintf("judged %d events acknowledged on Redis and %d from memory: a violation rate of 1 in %.0f (Redis) and 1 in %.0f (memory) shows with 95 %% probability",
		redis, mem, oneIn(redis), oneIn(mem))
}

// oneIn is 1 / DetectableRate(n), rounded down: the rarest violation, as
// "1 in N" events, that judging n events catches with 95 % probability.
func oneIn(n int) float64 {
	return float64(int64(1 / DetectableRate(n)))
}
