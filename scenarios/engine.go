package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/target"
)

// Options configure one Run. Zero values mean the default stated on each
// field.
type Options struct {
	// Profile is the profile under test. Required.
	Profile string
	// Profiles are the constructors to pick Profile from. Default:
	// profiles.Default() (seed and hardened).
	Profiles *impl.Profiles
	// Seed seeds the *rand.Rand every workload draws from, so a run can be
	// replayed. 0 is a valid seed.
	Seed int64
	// Dir is the run directory: history.json and result.json are written
	// there. Empty: nothing is saved.
	Dir string
	// Progress, when set, is told each phase as the run enters it
	// ("setup", "traffic", "fault kill", "recover", "judge").
	Progress func(phase string)
	// Log receives verbose notes (-v). Default: discarded.
	Log io.Writer
	// Deps are the target, proxy, fault and service constructors.
	// Default: DefaultDeps().
	Deps *Deps
}

// Deps are the constructors the engine builds a run from; tests replace
// them, the CLI uses DefaultDeps.
type Deps struct {
	// StartTarget starts Redis for the spec's target section.
	StartTarget func(ctx context.Context, t Target) (target.Target, error)
	// NewProxy puts a proxy in front of upstream (host:port).
	NewProxy func(ctx context.Context, name, upstream string) (chaos.Proxy, error)
	// Fault builds a fault from a timeline step.
	Fault func(name string, params map[string]string) (chaos.Fault, error)
	// Service, when set, serves a layer over HTTP for SSE clients; it
	// returns the base URL and a stop function.
	Service func(ctx context.Context, l *impl.Layer, cfg impl.Config) (base string, stop func() error, err error)
	// AllowDestructive lets destructive faults act on a target the
	// harness does not own (--allow-destructive). Default false: such a
	// scenario is not run (INCONCLUSIVE, ErrUnavailable).
	AllowDestructive bool
	// Instance, when set, provides instance i of the layer under test
	// instead of Options.Profiles (an implementation run elsewhere, e.g.
	// ServiceDeps); Service is then not needed for SSE.
	Instance func(ctx context.Context, i int, cfg impl.Config) (*impl.Layer, error)
	// Unavailable, when set, lists more reasons the run cannot offer what
	// spec needs on t (see ErrUnavailable).
	Unavailable func(spec Spec, t target.Target) []string
	// Serve is the command line that serves one instance of a profile
	// over HTTP, `harness serve` (instance_mode process): the engine adds
	// -control -profile P -addr A and REDIS_URL, REDIS_ENABLED, SERVER_ID,
	// HARNESS_CONTROL_TOKEN (random per instance) and ChildEnv in the
	// environment. Nil: instance_mode process is unavailable (unless
	// InstanceCmd is set).
	Serve []string
	// Browser is the Chromium executable of the browser clients
	// (workload.sse.browser). Default "": chromium, chromium-browser or
	// google-chrome from PATH; none makes such a scenario INCONCLUSIVE.
	Browser string
	// InstanceCmd, when set, is the command line (program resolved, see
	// ParseInstanceCmd) of a service of any stack that serves one
	// instance (instance_mode process) instead of Serve: the engine runs
	// it as given, in its own working directory, with the address it must
	// serve on and everything else in the environment (InstanceEnv), and
	// waits until it answers there.
	InstanceCmd []string
}

// run is the state of one Run: what was started and must be released.
type run struct {
	spec   Spec
	opts   Options
	deps   *Deps
	rec    *history.Recorder
	count  *counter.Hook
	rng    *rand.Rand
	logw   io.Writer
	target target.Target
	proxy  chaos.Proxy
	cfg    impl.Config
	layers []*impl.Layer
	bases  []string // service base URLs, one per instance, when served
	stops  []func() error
	faults []*activeFault
	// slots are the instances' places in the rotation (route), children
	// their processes in instance_mode process, logged under instDir
	// (removed at teardown when instTemp).
	slots    []*slot
	children []*child
	instDir  string
	instTemp bool
	// browser is the Chromium of the browser clients and their pages.
	browser *browserRun
	notes   notes
	// acked is the number of acknowledged publishes per flow, for the
	// final history read.
	ackMu sync.Mutex
	acked map[string]map[string]bool

	// restart is held shared by every layer call of the workload, alone
	// while the flag step restarts the layers.
	restart sync.RWMutex
	// flagsOff are the flags the flag step has off now (nil outside its
	// window): an instance restarted inside the window starts with them
	// off too, as a deploy during a rollback keeps the rollback's
	// configuration.
	flagsMu  sync.Mutex
	flagsOff []string

	// broken is the first harness failure met where no caller returns
	// it (an Undo on a stuck proxy): the run cannot be judged.
	brokenMu sync.Mutex
	broken   error
}

// breakRun records err as the reason the run cannot be judged (the first
// one stays).
func (r *run) breakRun(err error) {
	r.brokenMu.Lock()
	defer r.brokenMu.Unlock()
	if r.broken == nil {
		r.broken = err
	}
}

func (r *run) brokenErr() error {
	r.brokenMu.Lock()
	defer r.brokenMu.Unlock()
	return r.broken
}

// currentConfig is the configuration an instance starts with now: the
// run's, with the flags the flag step has off.
func (r *run) currentConfig() impl.Config {
	cfg := r.cfg
	r.flagsMu.Lock()
	turnOff(&cfg, r.flagsOff)
	r.flagsMu.Unlock()
	return cfg
}

type notes struct {
	mu    sync.Mutex
	lines []string
}

func (n *notes) add(format string, args ...any) {
	n.mu.Lock()
	n.lines = append(n.lines, fmt.Sprintf(format, args...))
	n.mu.Unlock()
}

func (n *notes) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.lines...)
}

// Run runs spec against opts.Profile: it starts the target and a proxy in
// front of it, builds the instances of the layer, runs the workload and the
// fault timeline together under one context while recording every
// operation, waits (bounded) for recovery, reads each flow's history once
// more, judges the history with the spec's checks and saves history.json
// and result.json in opts.Dir. Everything it started is released before it
// returns, also when ctx is cancelled. A scenario whose target options or
// faults the target does not offer (fault.Available refuses it) is not
// run: before any traffic, its checks are INCONCLUSIVE with the reasons
// (ErrUnavailable) and a note. An error means the run could not be judged:
// bad input (exit 3) or a harness failure (exit 4).
func Run(ctx context.Context, spec Spec, opts Options) (Outcome, error) {
	out := Outcome{Scenario: spec.Name, Profile: opts.Profile, Seed: opts.Seed, Started: time.Now(), Dir: opts.Dir}
	if opts.Profile == "" {
		return out, exitcode.Configf("scenario %s: no profile", spec.Name)
	}
	if opts.Profiles == nil {
		opts.Profiles = profiles.Default()
	}
	if opts.Deps == nil {
		opts.Deps = DefaultDeps()
	}
	r := &run{
		spec:  spec,
		opts:  opts,
		deps:  opts.Deps,
		rec:   history.NewRecorder(),
		count: counter.New(),
		rng:   rand.New(rand.NewPCG(uint64(opts.Seed), 0x9e3779b97f4a7c15)),
		logw:  opts.Log,
		acked: map[string]map[string]bool{},
	}
	if r.logw == nil {
		r.logw = io.Discard
	}
	defer r.teardown()
	stopWatch := r.watchStalls()
	defer stopWatch()
	r.rec.SetMeta("scenario", spec.Name)
	r.rec.SetMeta("profile", opts.Profile)
	r.rec.SetMeta("seed", strconv.FormatInt(opts.Seed, 10))

	if err := r.setup(ctx); err != nil {
		var un unavailableError
		if errors.As(err, &un) {
			return r.notRun(out, un)
		}
		return out, err
	}
	if err := r.traffic(ctx); err != nil {
		return out, err
	}
	if ctx.Err() != nil {
		return out, exitcode.Harnessf("scenario %s: interrupted: %w", spec.Name, ctx.Err())
	}
	if err := r.brokenErr(); err != nil {
		return out, err
	}
	r.phase("recover")
	r.recover(ctx)
	r.recordCounts()
	r.noteRedirects(ctx)
	stopWatch()
	return r.finish(out, r.rec.History())
}

// noteRedirects notes, on a cluster target, the redirections and
// refusals its nodes answered during the run (errorstats): what the
// layers' cluster clients met while slots moved or primaries changed.
func (r *run) noteRedirects(ctx context.Context) {
	cl, ok := r.target.(interface {
		Redirects(context.Context) map[string]int64
	})
	if !ok {
		return
	}
	n := cl.Redirects(ctx)
	r.notes.add("cluster replies during the run, all nodes: ASK %d, MOVED %d, TRYAGAIN %d, CLUSTERDOWN %d",
		n["ASK"], n["MOVED"], n["TRYAGAIN"], n["CLUSTERDOWN"])
}

// finish judges h, fills out and saves scenario.yaml, history.json and
// result.json in the run directory.
func (r *run) finish(out Outcome, h history.History) (Outcome, error) {
	r.phase("judge")
	out.Notes = r.notes.all()
	res, err := Judge(h, r.spec)
	if err != nil {
		return out, err
	}
	out.Results = res
	out.Verdict = Fold(res)
	out.Timing = r.spec.Timing().String()
	out.Episodes = EpisodePower(r.spec.Episodes)
	dir := r.opts.Dir
	if dir != "" && len(r.spec.Source) > 0 {
		if err := history.WriteFileAtomic(filepath.Join(dir, "scenario.yaml"), r.spec.Source); err != nil {
			return out, exitcode.Harnessf("saving scenario: %w", err)
		}
	}
	out.Counts = r.count.Snapshot()
	out.Elapsed = time.Since(out.Started)
	if dir != "" {
		if err := history.Save(filepath.Join(dir, "history.json"), h); err != nil {
			return out, exitcode.Harnessf("saving history: %w", err)
		}
		if err := out.Save(filepath.Join(dir, "result.json")); err != nil {
			return out, exitcode.Harnessf("saving result: %w", err)
		}
	}
	return out, nil
}

func (r *run) phase(p string) {
	fmt.Fprintf(r.logw, "%s/%s: %s at %s\n", r.spec.Name, r.opts.Profile, p, r.rec.Now().Round(time.Millisecond))
	if r.opts.Progress != nil {
		r.opts.Progress(p)
	}
}

// childRand draws a new generator from the run's, in a fixed order, so
// each workload goroutine has its own reproducible stream.
func (r *run) childRand() *rand.Rand {
	return rand.New(rand.NewPCG(r.rng.Uint64(), r.rng.Uint64()))
}

// setup starts the target and the proxy, checks that the target offers
// every target option and fault of the spec (an unavailableError when it
// does not: nothing has run), records the target's facts, then starts the
// start-up faults and the layers.
func (r *run) setup(ctx context.Context) error {
	r.phase("setup")
	tg, err := r.deps.StartTarget(ctx, r.spec.Target)
	if err != nil {
		return err
	}
	r.target = tg
	r.proxy, err = r.deps.NewProxy(ctx, "redis-"+r.spec.Name, tg.Addr())
	if err != nil {
		return exitcode.Harnessf("proxy: %w", err)
	}
	for i, st := range r.spec.Faults {
		f, err := r.buildFault(st)
		if err != nil {
			return exitcode.Configf("%s:%d: faults[%d]: %w", r.spec.File, st.Line, i, err)
		}
		r.faults = append(r.faults, &activeFault{step: st, fault: f})
	}
	r.recordTarget(ctx)
	if why := append(append(r.unavailable(), r.processUnavailable()...), r.browserUnavailable()...); len(why) > 0 {
		// Nothing of the timeline was injected: teardown must not undo it.
		r.faults = nil
		return unavailableError(why)
	}
	down := false
	for _, af := range r.faults {
		if af.step.At == 0 {
			if err := r.inject(ctx, af); err != nil {
				return err
			}
			down = down || af.down()
		}
	}
	r.cfg, err = r.layerConfig()
	if err != nil {
		return err
	}
	for i := 0; i < r.spec.Instances; i++ {
		cfg := r.cfg
		cfg.ServerID = instanceID(i)
		l, err := r.newLayer(ctx, i, cfg)
		if err != nil {
			return exitcode.Harnessf("instance %d of profile %s: %w", i, r.opts.Profile, err)
		}
		r.layers = append(r.layers, l)
		r.slots = append(r.slots, &slot{})
		if r.processMode() {
			// SSE clients stream from the instance process itself (a
			// slow consumer through its own throttled socket).
			r.bases = append(r.bases, "http://"+r.children[i].addr)
			continue
		}
		if r.spec.Workload.SSE.Clients+r.spec.Workload.SSE.Browser.Clients > 0 && r.deps.Service != nil {
			base, stop, err := r.deps.Service(ctx, l, cfg)
			if err != nil {
				return exitcode.Harnessf("service for instance %d: %w", i, err)
			}
			r.bases = append(r.bases, base)
			r.stops = append(r.stops, stop)
		}
	}
	if err := r.openBrowsers(ctx); err != nil {
		return exitcode.Harnessf("browser clients: %w", err)
	}
	if !down {
		// Recorded once the instances are up: the load before the first
		// fault is measured from the first record, and instance processes
		// take a while to start.
		r.redisState("up")
	}
	return nil
}

// newLayer builds instance i of the layer under test.
func (r *run) newLayer(ctx context.Context, i int, cfg impl.Config) (*impl.Layer, error) {
	if r.processMode() {
		if i < len(r.children) {
			return r.startChild(ctx, r.children[i], cfg)
		}
		return r.startInstance(ctx, i, cfg)
	}
	if r.deps.Instance != nil {
		return r.deps.Instance(ctx, i, cfg)
	}
	if r.spec.Config.Journal {
		// As an instance process's: a directory of the instance's that
		// outlives its restarts (a flag step rebuilds it).
		dir, err := r.logDir()
		if err != nil {
			return nil, exitcode.Harnessf("instance directory: %w", err)
		}
		cfg.JournalDir = filepath.Join(dir, instanceID(i), "journal")
	}
	return r.opts.Profiles.New(ctx, r.opts.Profile, cfg)
}

func (r *run) env() chaos.Env {
	return chaos.Env{Target: r.target, Proxy: r.proxy, AllowDestructive: r.deps.AllowDestructive}
}

// layerConfig points the layer at the proxy, with the spec's overrides.
func (r *run) layerConfig() (impl.Config, error) {
	u, err := url.Parse(r.target.URL())
	if err != nil {
		return impl.Config{}, exitcode.Harnessf("target URL does not parse")
	}
	if r.proxy != nil {
		u.Host = r.proxy.Listen()
	}
	cfg := r.spec.LayerConfig()
	cfg.URL = u.String()
	cfg.TLS = r.target.TLS()
	cfg.Hooks = []redis.Hook{r.count}
	cfg.KeyPrefix = r.target.KeyPrefix() + "gonogo:" + r.spec.Name + ":"
	return cfg, nil
}

// Bounds of the traffic phase: it must end trafficGrace after its
// workload's duration, or interruptGrace after the run's context ends,
// else the run is abandoned as a harness failure (see traffic).
var (
	trafficGrace   = 2 * time.Minute
	interruptGrace = 45 * time.Second
)

// traffic runs the workload and the fault timeline together under one
// context for the workload's duration. Faults and workload calls honour
// that context, but a fault's Inject or Undo can block where none does
// (explore seed 6060: a toxic change held for good by the embedded
// Toxiproxy): a phase that outlives its bounds is abandoned, its
// goroutines left behind, and the run is a harness failure naming what
// was still in progress.
func (r *run) traffic(ctx context.Context) error {
	r.phase("traffic")
	d := r.spec.Workload.Duration.D()
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	g, gctx := errgroup.WithContext(tctx)
	r.startWorkload(gctx, g)
	r.startTimeline(gctx, g, cancel)
	if r.processMode() {
		g.Go(func() error { r.sampleRSS(gctx); return nil })
	}
	g.Go(func() error { r.watch(gctx); return nil })
	done := make(chan error, 1)
	go func() {
		err := g.Wait()
		// Faults whose window outlasts the traffic end now.
		r.undoAll()
		done <- err
	}()
	limit := (d + trafficGrace).String()
	timer := time.NewTimer(d + trafficGrace)
	defer timer.Stop()
	interrupted := ctx.Done()
	for {
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			return nil
		case <-interrupted:
			interrupted = nil
			limit = interruptGrace.String() + " of the interrupt"
			timer.Reset(interruptGrace)
		case <-timer.C:
			return exitcode.Harnessf("scenario %s: the workload and fault timeline did not end within %s (faults in progress: %s); the run is abandoned",
				r.spec.Name, limit, r.busyFaults())
		}
	}
}

// busyFaults names the faults whose Inject or Undo has not returned.
func (r *run) busyFaults() string {
	var out []string
	for _, af := range r.faults {
		if op := af.busy.Load(); op != nil {
			out = append(out, af.step.Fault+" "+*op)
		}
	}
	if len(out) == 0 {
		return "none, the workload did not stop"
	}
	return strings.Join(out, ", ")
}

// recover waits, bounded by spec.Recovery, for every layer to serve from
// Redis and for each flow's history to hold every acknowledged event, then
// records the final history read of each flow.
func (r *run) recover(ctx context.Context) {
	deadline := time.Now().Add(r.spec.Recovery.D())
	if r.cfg.Enabled {
		for !r.allRedis() && time.Now().Before(deadline) && sleepCtx(ctx, 50*time.Millisecond) {
		}
	}
	flows := r.flows()
	if len(flows) == 0 {
		return
	}
	bus := r.layers[0].Bus
	server := r.newServerReader()
	if server != nil {
		defer server.Close()
	}
	for _, flow := range flows {
		r.settle(ctx, flow, deadline, func() (history.Op, []string) { return r.readHistory(ctx, bus, flow) })
		if server != nil {
			r.settle(ctx, flow, deadline, func() (history.Op, []string) { return server.read(ctx, r, flow, r.readCount(flow)) })
			server.info(ctx, r, flow)
		}
	}
}

// settle repeats read until the flow's history holds every acknowledged
// event or the deadline passes, then records the last read.
func (r *run) settle(ctx context.Context, flow string, deadline time.Time, read func() (history.Op, []string)) {
	for {
		op, ids := read()
		if r.complete(flow, ids) || !time.Now().Before(deadline) || ctx.Err() != nil {
			r.rec.Add(op)
			return
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
}

// readCount is how many of the flow's newest events a final read asks
// for: every acknowledged one, with room for duplicates and strays.
func (r *run) readCount(flow string) int {
	r.ackMu.Lock()
	defer r.ackMu.Unlock()
	return 2*len(r.acked[flow]) + 100
}

func (r *run) allRedis() bool {
	for _, l := range r.layers {
		if l.Manager.Mode() != impl.ModeRedis {
			return false
		}
	}
	return true
}

func (r *run) readHistory(ctx context.Context, bus impl.Bus, flow string) (history.Op, []string) {
	n := r.readCount(flow)
	op := history.Op{Client: "final", Kind: history.Read, Flow: flow, Call: r.rec.Now()}
	cctx, cancel := context.WithTimeout(counter.WithOp(ctx, history.Read), 5*time.Second)
	evs, err := bus.History(cctx, flow, n, time.Time{})
	cancel()
	op.Return = r.rec.Now()
	op.Mode = r.layers[0].Manager.Mode()
	op.OK = err == nil
	if err != nil {
		op.Err = err.Error()
	}
	for _, e := range evs {
		op.Values = append(op.Values, e.ID)
	}
	return op, op.Values
}

func (r *run) complete(flow string, ids []string) bool {
	have := make(map[string]bool, len(ids))
	for _, id := range ids {
		have[id] = true
	}
	r.ackMu.Lock()
	defer r.ackMu.Unlock()
	for id := range r.acked[flow] {
		if !have[id] {
			return false
		}
	}
	return true
}

func (r *run) ack(flow, id string) {
	r.ackMu.Lock()
	if r.acked[flow] == nil {
		r.acked[flow] = map[string]bool{}
	}
	r.acked[flow][id] = true
	r.ackMu.Unlock()
}

// recordCounts stores the round trips and commands counted per operation
// kind in the history's meta, with the number of operations of that kind,
// so a saved run carries them ("counter.publish.round_trips").
func (r *run) recordCounts() {
	r.addServiceCounts()
	for op, c := range r.count.Snapshot() {
		r.rec.SetMeta("counter."+op+".round_trips", strconv.FormatInt(c.RoundTrips, 10))
		r.rec.SetMeta("counter."+op+".commands", strconv.FormatInt(c.Commands, 10))
	}
	r.rec.SetMeta("counter.dials", strconv.FormatInt(r.count.Dials(), 10))
}

func (r *run) redisState(s string) {
	now := r.rec.Now()
	r.rec.Add(history.Op{Client: "engine", Kind: history.RedisState, Value: s, Call: now, Return: now, OK: true})
}

// teardown releases everything in reverse order, bounded in time.
func (r *run) teardown() {
	bounded(interruptGrace, func() error { r.undoAll(); return nil })
	for _, stop := range r.stops {
		bounded(5*time.Second, stop)
	}
	r.stopChildren()
	for _, l := range r.layers {
		if l.Close != nil {
			bounded(5*time.Second, l.Close)
		}
	}
	if r.proxy != nil {
		bounded(interruptGrace, r.proxy.Close)
	}
	if r.target != nil {
		r.target.Close()
	}
}

// bounded runs f but gives up waiting after d (f keeps running).
func bounded(d time.Duration, f func() error) {
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// sleepCtx sleeps d or until ctx ends; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
