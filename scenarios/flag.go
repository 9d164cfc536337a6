package scenarios

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/scenarios/check"
)

// flagParams are the flag step's parameters: the REDIS_* variables a
// rollback turns off (REDIS_ENABLED, REDIS_EVENT_BUS, REDIS_CACHE,
// REDIS_SSE).
var flagParams = []string{"redis_enabled", "event_bus", "cache", "sse"}

// parseFlag validates a flag step's parameters: at least one of
// flagParams, each "false". It returns the flags turned off, sorted.
func parseFlag(params map[string]string) ([]string, error) {
	if len(params) == 0 {
		return nil, fmt.Errorf("%w: fault %s needs at least one of %s set to \"false\"", chaos.ErrBadParam, check.FlagFault, strings.Join(flagParams, ", "))
	}
	var off []string
	for k, v := range params {
		if !slices.Contains(flagParams, k) {
			return nil, fmt.Errorf("%w: fault %s has no parameter %q (known: %s)", chaos.ErrBadParam, check.FlagFault, k, strings.Join(flagParams, ", "))
		}
		if v != "false" {
			return nil, fmt.Errorf("%w: fault %s: %s %q: want \"false\" (the step turns the flag off for its window, and back on after)", chaos.ErrBadParam, check.FlagFault, k, v)
		}
		off = append(off, k)
	}
	sort.Strings(off)
	return off, nil
}

// buildFault builds a timeline step's fault: the engine's flag step, or a
// chaos fault from the run's constructors.
func (r *run) buildFault(st FaultStep) (chaos.Fault, error) {
	if isInstanceFault(st.Fault) {
		f, err := parseInstanceFault(st.Fault, st.Params)
		if f != nil {
			f.r = r
		}
		return f, err
	}
	if st.Fault != check.FlagFault {
		return r.deps.Fault(st.Fault, st.Params)
	}
	off, err := parseFlag(st.Params)
	if err != nil {
		return nil, err
	}
	return &flagFault{r: r, off: off}, nil
}

// flagFault is the tracker's rollback plan as a timeline step: "set
// REDIS_ENABLED=false and restart", later re-enable and restart. It is not
// a Redis fault: Redis stays up. Inject closes every instance of the layer
// and builds it anew with the flags off; Undo closes them and builds them
// with the scenario's configuration again. Both hold every instance alone
// (run.restart), so no layer call straddles a restart, and the window runs
// from the moment the first restart held the instances to the moment the
// second one had built them all: a call made in it was served by the
// rolled-back layers, one made outside by the others.
//
// What the guarantees mean across the flips, and how the checks judge
// them:
//   - bounded blocking, errors: every call is judged as ever; a call is
//     timed from when the restarting instances let it through (a restart is
//     the service being down, not a slow call).
//   - no loss: every event acknowledged while the event bus ran on Redis
//     is in the history read after re-enabling; a layer's Close must write
//     what its outbox holds. Events acknowledged inside a window with
//     redis_enabled or event_bus off live in memory only, by design: the
//     lost check counts them (memory_only) and does not judge them.
//   - order, duplicates: judged as ever on the history read.
//   - cache: no read returns a state older than the last completed
//     invalidation, across the flips too: once re-enabled, Redis must not
//     serve a state cached before the database writes made while disabled.
//     While disabled each instance's memory cache sees only its own
//     invalidations, so cross-instance reads are then not comparable (keep
//     cache traffic on one instance).
//   - registry, SSE: a restart drops connections and streams, which the
//     workload does not reopen; a spec with them cannot use the step.
//   - recovery: the window's end is a fault end (recover_time).
type flagFault struct {
	r   *run
	off []string

	mu         sync.Mutex
	start, end time.Duration
}

func (f *flagFault) Name() string { return check.FlagFault }

// Available: a restart of the layer needs nothing of the target.
func (f *flagFault) Available(chaos.Env) error { return nil }

func (f *flagFault) Inject(ctx context.Context, _ chaos.Env) error {
	held, _, err := f.r.restartAll(ctx, f.off)
	f.mu.Lock()
	f.start = held
	f.mu.Unlock()
	return err
}

func (f *flagFault) Undo(ctx context.Context, _ chaos.Env) error {
	_, built, err := f.r.restartAll(ctx, nil)
	f.mu.Lock()
	f.end = built
	f.mu.Unlock()
	return err
}

// Window is when the rollback held, as the timeline records it.
func (f *flagFault) Window() (start, end time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.start, f.end
}

// restartAll closes every instance and builds it again with the run's
// layer configuration minus the flags off, holding every instance alone
// meanwhile. held is when it held them, built when the last was built. A
// Close error (a layer reporting what it could not keep) is a note; a
// layer that cannot be built is a harness failure.
//
// Instance processes are held against the instance faults too (their op
// locks, taken before run.restart as the faults take them): a kill that
// came while a process started made the start fail (explore seeds 19191
// and 20202, runs not judged). A process such a fault has ended stays
// down: the fault's undo starts it, with the flags then in force.
func (r *run) restartAll(ctx context.Context, off []string) (held, built time.Duration, err error) {
	// The instances closed are built again even when the traffic ends
	// meanwhile (its context cancelled): closing one whose outbox cannot
	// drain takes seconds, and an instance left down never writes what
	// its journal kept (explore seed 23232, lost-7ef3dfe9: the start was
	// cancelled, the process killed, and the undo took it for one an
	// instance fault had ended).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flagBuild)
	defer cancel()
	for _, c := range r.children {
		c.op.Lock()
		defer c.op.Unlock()
	}
	r.restart.Lock()
	defer r.restart.Unlock()
	held = r.rec.Now()
	r.flagsMu.Lock()
	r.flagsOff = off
	r.flagsMu.Unlock()
	what := "the scenario's configuration"
	if len(off) > 0 {
		what = strings.Join(off, "=false, ") + "=false"
	}
	n := 0
	for i, l := range r.layers {
		cfg := r.cfg
		cfg.ServerID = instanceID(i)
		turnOff(&cfg, off)
		if r.faultDown(i) {
			r.notes.add("flag: %s is down (an instance fault): its undo starts it with %s", cfg.ServerID, what)
			continue
		}
		if l.Close != nil {
			if err := l.Close(); err != nil {
				r.notes.add("flag: closing %s to restart it with %s: %v", cfg.ServerID, what, err)
			}
		}
		nl, err := r.newLayer(ctx, i, cfg)
		if err != nil {
			return held, r.rec.Now(), exitcode.Harnessf("flag: restarting %s with %s: %w", cfg.ServerID, what, err)
		}
		r.layers[i] = nl
		n++
	}
	built = r.rec.Now()
	r.notes.add("flag: %d of %d instances restarted with %s at %s, in %s", n, len(r.layers), what,
		held.Round(time.Millisecond), (built - held).Round(time.Millisecond))
	return held, built, nil
}

// flagBuild bounds a flag step's restart of every instance, which the end
// of the traffic does not cut short.
const flagBuild = time.Minute

// turnOff clears the named flags in cfg.
func turnOff(cfg *impl.Config, off []string) {
	for _, f := range off {
		switch f {
		case "redis_enabled":
			cfg.Enabled = false
		case "event_bus":
			cfg.EventBus = false
		case "cache":
			cfg.Cache = false
		case "sse":
			cfg.SSE = false
		}
	}
}
