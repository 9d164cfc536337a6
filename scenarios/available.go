package scenarios

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/target"
)

// ErrUnavailable is why a scenario was not run: its target cannot offer a
// fault or a target option the scenario needs (kill on a URL target, TLS
// faults on a container, a quota on a TLS target). Every check of such a
// scenario is INCONCLUSIVE with an error wrapping it.
var ErrUnavailable = errors.New("not run: the target cannot offer what the scenario needs")

// Meta keys the engine records about the environment of a run, for the
// reports ("target.kind" is "process", "container", "remote-sim" or
// "url"; "target.tls" is "true" or "false"; "target.rtt_ms" is the
// injected round-trip time of remote-sim, else the median PING time the
// engine measured; "redis.version" is INFO's redis_version).
const (
	MetaTargetKind   = "target.kind"
	MetaTargetTLS    = "target.tls"
	MetaTargetRTT    = "target.rtt_ms"
	MetaTargetURL    = "target.url" // password masked
	MetaRedisVersion = "redis.version"
	// MetaUnavailable holds why the scenario was not run (ErrUnavailable);
	// Judge turns every check INCONCLUSIVE when it is set.
	MetaUnavailable = "unavailable"
)

// unavailableError is what setup returns when the target cannot run the
// spec: one reason per option or fault.
type unavailableError []string

func (e unavailableError) Error() string { return strings.Join(e, "; ") }

// unavailable lists why the run's target cannot run the spec: target
// options it cannot honour, then timeline faults whose Available refuses
// the environment. Empty: the scenario can run.
func (r *run) unavailable() []string {
	var why []string
	kind := r.target.Kind()
	t := r.spec.Target
	if t.TLS && r.target.TLS() == nil {
		why = append(why, fmt.Sprintf("target option tls not available on target %s: it speaks plain TCP", kind))
	}
	for _, o := range []struct {
		name string
		set  bool
	}{{"aof", t.AOF}, {"maxmemory", t.MaxMemory != ""}, {"policy", t.Policy != ""}} {
		switch {
		case !o.set:
		case kind == target.KindCluster:
			// target.ClusterOptions has none of them.
			why = append(why, fmt.Sprintf("target option %s not available on target %s: its nodes are started without it", o.name, kind))
		case !r.target.Owned():
			why = append(why, fmt.Sprintf("target option %s not available on target %s: the harness does not own the server, so it cannot configure it", o.name, kind))
		}
	}
	if r.deps.Unavailable != nil {
		why = append(why, r.deps.Unavailable(r.spec, r.target)...)
	}
	env := r.env()
	for _, af := range r.faults {
		if err := af.fault.Available(env); err != nil {
			msg := fmt.Sprintf("fault %s not available on target %s: %v", af.step.Fault, kind, err)
			if !slices.Contains(why, msg) {
				why = append(why, msg)
			}
		}
	}
	return why
}

// unavailableResults is every check of s INCONCLUSIVE because the scenario
// was not run, for why.
func unavailableResults(s Spec, why string) []Result {
	out := make([]Result, len(s.Checks))
	for i, c := range s.Checks {
		err := fmt.Errorf("%w: %s", ErrUnavailable, why)
		out[i] = Result{ReportOnly: c.ReportOnly, Error: err.Error()}
		out[i].Check, out[i].Verdict, out[i].Err = c.Name, verdict.Inconclusive, err
	}
	return out
}

// recordTarget stores the environment facts the reports need in the
// history's meta: target kind, TLS, round-trip time, Redis version and the
// URL with its password masked. It talks to the target directly, not
// through the run's proxy (start-up faults may hold that down); a failure
// is a note, not an error.
func (r *run) recordTarget(ctx context.Context) {
	tg := r.target
	r.rec.SetMeta("target", string(tg.Kind())) // the key before MetaTargetKind
	r.rec.SetMeta(MetaTargetKind, string(tg.Kind()))
	r.rec.SetMeta(MetaTargetTLS, strconv.FormatBool(tg.TLS() != nil))
	r.rec.SetMeta(MetaTargetURL, tg.Redacted())
	rdb, err := impl.NewUniversalClient(impl.Config{URL: tg.URL(), TLS: tg.TLS(), PoolSize: 1, ConnectTimeout: 2 * time.Second})
	if err != nil {
		r.notes.add("target facts: %v", err)
		return
	}
	defer rdb.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info := impl.RedisInfo(cctx, rdb)
	if v, ok := info["version"].(string); ok {
		r.rec.SetMeta(MetaRedisVersion, v)
	} else {
		r.notes.add("target facts: INFO: %v", info["error"])
	}
	if sim, ok := tg.(interface{ RTT() time.Duration }); ok {
		r.rec.SetMeta(MetaTargetRTT, formatMillis(sim.RTT()))
		return
	}
	var rtts []time.Duration
	for i := 0; i < 5; i++ {
		start := time.Now()
		if rdb.Ping(cctx).Err() != nil {
			return
		}
		rtts = append(rtts, time.Since(start))
	}
	slices.Sort(rtts)
	r.rec.SetMeta(MetaTargetRTT, formatMillis(rtts[len(rtts)/2]))
}

// formatMillis writes d in milliseconds to two decimals ("20", "0.13").
func formatMillis(d time.Duration) string {
	ms := math.Round(float64(d)/float64(time.Millisecond)*100) / 100
	return strconv.FormatFloat(ms, 'f', -1, 64)
}

// notRun finishes a run the target cannot offer: its checks INCONCLUSIVE
// with the reasons, a note, and the usual files saved (history.json with
// the reasons in its meta, so `harness report` agrees).
func (r *run) notRun(out Outcome, why []string) (Outcome, error) {
	reason := strings.Join(why, "; ")
	r.rec.SetMeta(MetaUnavailable, reason)
	r.notes.add("%v: %s", ErrUnavailable, reason)
	return r.finish(out, r.rec.History())
}
