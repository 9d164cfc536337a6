package scenarios

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/inputfile"
	"github.com/gonogo/harness/scenarios/check"
	"github.com/gonogo/harness/target"
)

// Known is what a scenario may name. Validation checks every name a file
// uses against it before any traffic starts.
type Known struct {
	// Fault builds (and so validates) a fault from its name and params:
	// chaos.Lookup.
	Fault func(name string, params map[string]string) error
	// Faults lists the fault names (for messages).
	Faults []string
	// Checks lists the checker names; Metrics the metric names thresholds
	// may bound.
	Checks  []string
	Metrics []string
	// Profiles lists the registered profile names.
	Profiles []string
}

// Parse decodes and validates one scenario file. file names it in errors
// (file:line). Every error is bad input (exit 3).
func Parse(file string, data []byte, k Known) (Spec, error) {
	var s Spec
	root, err := inputfile.YAML(file, data)
	if err != nil {
		return s, exitcode.Config(err)
	}
	d := &decoder{file: file}
	if err := d.decode(root, reflect.ValueOf(&s).Elem(), ""); err != nil {
		return s, exitcode.Config(err)
	}
	if len(d.errs) > 0 {
		return s, exitcode.Config(errors.Join(d.errs...))
	}
	s.File = file
	s.Source = data
	if err := s.repeatEpisodes(); err != nil {
		return s, exitcode.Config(err)
	}
	if err := s.validate(k); err != nil {
		return s, exitcode.Config(err)
	}
	s.applyDefaults(k)
	return s, nil
}

func (s *Spec) errf(line int, format string, args ...any) error {
	return &posError{file: s.File, line: line, msg: fmt.Sprintf(format, args...)}
}

// validate checks the names and ranges a decoded spec uses. It reports
// every problem, one per line.
func (s *Spec) validate(k Known) error {
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, s.errf(line, format, args...))
	}
	base := strings.TrimSuffix(filepath.Base(s.File), filepath.Ext(s.File))
	switch {
	case s.Name == "" && !ValidName(base):
		bad(s.Line, "no name, and the file name %q is not one: set name: (%s)", base, NamePattern)
	case s.Name == "":
		s.Name = base
	case !ValidName(s.Name):
		bad(s.Line, "name %q: want %s", s.Name, NamePattern)
	}
	switch s.Target.Kind {
	case "", target.KindProcess, target.KindRemoteSim, target.KindUpstashSim, target.KindSentinel, target.KindCluster:
	default:
		bad(s.Target.Line, "target.kind %q: want %s, %s, %s, %s or %s", s.Target.Kind, target.KindProcess, target.KindRemoteSim, target.KindUpstashSim, target.KindSentinel, target.KindCluster)
	}
	if s.Target.RTT < 0 || s.Target.RTT > 0 && s.Target.Kind != target.KindRemoteSim && s.Target.Kind != target.KindUpstashSim {
		bad(s.Target.Line, "target.rtt %s: want a positive round-trip time, with kind remote-sim or upstash-sim", s.Target.RTT)
	}
	switch s.Target.Policy {
	case "", "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl":
	default:
		bad(s.Target.Line, "target.policy %q is not a Redis maxmemory-policy", s.Target.Policy)
	}
	for _, p := range s.Profiles {
		if len(k.Profiles) > 0 && !slices.Contains(k.Profiles, p) {
			bad(s.Line, "unknown profile %q (known: %s)", p, strings.Join(k.Profiles, ", "))
		}
	}
	if !maxMemoryRE.MatchString(s.Target.MaxMemory) {
		bad(s.Target.Line, "target.maxmemory %q: want a Redis memory size such as 1048576, 100kb, 2mb or 1gb", s.Target.MaxMemory)
	}
	switch s.InstanceMode {
	case "", InstancesInProcess, InstancesProcess:
	default:
		bad(s.Line, "instance_mode %q: want %s or %s", s.InstanceMode, InstancesInProcess, InstancesProcess)
	}
	w := s.Workload
	if w.Duration <= 0 {
		bad(w.Line, "workload.duration is required and must be positive")
	}
	errs = append(errs, s.validateLoad()...)
	if r := w.Registry; r.Stop+r.Unregister > r.Connections {
		bad(r.Line, "workload.registry: stop + unregister (%d) exceeds connections (%d)", r.Stop+r.Unregister, r.Connections)
	}
	if w.SSE.Clients+w.SSE.Slow.Clients+w.SSE.Stalled.Clients+w.SSE.Browser.Clients > 0 && w.Publish.Rate == 0 {
		bad(w.SSE.Line, "workload.sse needs publish traffic (workload.publish.rate)")
	}
	errs = append(errs, s.validateSSE()...)
	for i, f := range s.Faults {
		errs = append(errs, s.validateFault(i, f, k)...)
	}
	if len(s.Checks) == 0 {
		bad(s.Line, "no checks: a scenario must name at least one check")
	}
	listed := map[string]bool{}
	for _, c := range s.Checks {
		if listed[c.Name] {
			bad(c.Line, "check %q listed twice", c.Name)
		}
		listed[c.Name] = true
		if !slices.Contains(k.Checks, c.Name) {
			bad(c.Line, "unknown check %q (known: %s)", c.Name, strings.Join(k.Checks, ", "))
		}
		for _, t := range c.Thresholds {
			if !slices.Contains(k.Metrics, t.Metric) {
				bad(t.Line, "check %s: threshold on unknown metric %q (known: %s)", c.Name, t.Metric, strings.Join(k.Metrics, ", "))
			}
		}
		if m, ok := boundedChecks[c.Name]; ok && !slices.ContainsFunc(c.Thresholds, func(t Threshold) bool { return t.Metric == m }) {
			bad(c.Line, "check %s needs a threshold on %s: it measures, the threshold is the bound", c.Name, m)
		}
		if c.Name == "registry_count" && w.SSE.Clients > 0 {
			// The service registers its SSE streams in the same registry,
			// and the history does not record them.
			bad(c.Line, "check registry_count cannot judge a run with workload.sse clients: the service's SSE streams are counted too but not recorded")
		}
	}
	if strings.HasPrefix(s.File, catalogueDir+"/") {
		// A catalogue scenario must keep every production ratio its
		// checks depend on; another file is run and its report says
		// which it breaks (Outcome.Timing).
		for _, r := range s.Timing().Broken() {
			bad(s.Config.Line, "timing: %s; keep the ratio (scale both settings alike) or run at production settings", r.Error())
		}
	}
	return errors.Join(errs...)
}

// validateSSE checks the reconnect and slow-consumer options.
func (s *Spec) validateSSE() []error {
	var errs []error
	x := s.Workload.SSE
	bad := func(line int, format string, args ...any) { errs = append(errs, s.errf(line, format, args...)) }
	if x.Clients == 0 && x.Slow.Clients+x.Stalled.Clients > 0 {
		bad(x.Line, "workload.sse.slow and stalled consumers run next to normal ones: set workload.sse.clients")
	}
	if x.Jitter > 0 && x.Jitter >= x.Reconnect {
		bad(x.Line, "workload.sse.jitter %s: want at least 0 and below reconnect (%s)", x.Jitter, x.Reconnect)
	}
	switch x.Move {
	case "", "same", "other", "random":
	default:
		bad(x.Line, "workload.sse.move %q: want same, other or random", x.Move)
	}
	if x.MaxBackoff > 0 && x.MaxBackoff < x.Retry {
		bad(x.Line, "workload.sse.max_backoff %s: want retry (%s) to 1m", x.MaxBackoff, x.Retry)
	}
	for _, c := range []struct {
		name string
		c    Consumer
	}{{"slow", x.Slow}, {"stalled", x.Stalled}} {
		n, v := "workload.sse."+c.name, c.c
		if d := s.Workload.Duration; d > 0 && v.At >= d {
			bad(v.Line, "%s.at %s is not before the end of the workload (%s)", n, v.At, d)
		}
	}
	if x.Slow.Clients > 0 && x.Slow.ReadRate == 0 {
		bad(x.Slow.Line, "workload.sse.slow needs read_rate (bytes per second)")
	}
	if x.Slow.After > 0 || x.Slow.At > 0 || x.Slow.For > 0 {
		bad(x.Slow.Line, "workload.sse.slow reads slowly throughout: after, at and for belong to workload.sse.stalled")
	}
	if x.Browser.CrossOrigin && s.InstanceMode != InstancesProcess {
		bad(x.Browser.Line, "workload.sse.browser.cross_origin needs instance_mode: process (the instance processes allow the page's origin)")
	}
	if st := x.Stalled; st.Clients > 0 && st.After == 0 && st.At == 0 {
		bad(st.Line, "workload.sse.stalled needs after (events) or at (time) to stop reading")
	}
	return errs
}

var maxMemoryRE = regexp.MustCompile(`^(?i)([0-9]{1,15}(k|kb|m|mb|g|gb)?)?$`)

// validateLoad checks the limits across fields (maxPlannedOps,
// maxPublishBytes, maxStreams) with the defaults the engine applies.
func (s *Spec) validateLoad() []error {
	var errs []error
	w := s.Workload
	secs := w.Duration.D().Seconds()
	or := func(v, def int) float64 {
		if v == 0 {
			return float64(def)
		}
		return float64(v)
	}
	per := func(every, def Duration) float64 {
		if every == 0 {
			every = def
		}
		return secs / every.D().Seconds()
	}
	sse := w.SSE.Clients + w.SSE.Slow.Clients + w.SSE.Stalled.Clients + w.SSE.Browser.Clients
	ops := secs * (w.Publish.Rate*(1+float64(sse)) + w.Cache.Rate)
	if w.Registry.Connections > 0 {
		ops += float64(w.Registry.Connections)*per(w.Registry.Heartbeat, Duration(200e6)) + per(w.Registry.Lookup, Duration(100e6))
	}
	if w.Health.Interval > 0 {
		ops += or(s.Instances, 1) * per(w.Health.Interval, 0)
	}
	if ops > maxPlannedOps {
		errs = append(errs, s.errf(w.Line, "workload: about %.0f operations planned; at most %d (lower the duration, rates, SSE clients or registry connections)", ops, maxPlannedOps))
	}
	if b := secs * w.Publish.Rate * or(w.Publish.Payload, 64); b > maxPublishBytes {
		errs = append(errs, s.errf(w.Publish.Line, "workload.publish: about %.0f payload bytes planned (duration × rate × payload); at most %d", b, maxPublishBytes))
	}
	flows := or(w.Publish.Flows, 4)
	if w.SSE.Flows > 0 {
		flows = min(flows, float64(w.SSE.Flows))
	}
	if n := float64(w.SSE.Clients)*flows + float64(w.SSE.Slow.Clients+w.SSE.Stalled.Clients+w.SSE.Browser.Clients); n > maxStreams {
		errs = append(errs, s.errf(w.SSE.Line, "workload.sse: %.0f streams (clients × flows + slow, stalled and browser clients); at most %d", n, maxStreams))
	}
	return errs
}

func (s *Spec) validateFault(i int, f FaultStep, k Known) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, s.errf(f.Line, "faults[%d]: "+format, append([]any{i}, args...)...))
	}
	if f.Fault == "" {
		bad("fault name is required (known: %s)", strings.Join(k.Faults, ", "))
		return errs
	}
	if !slices.Contains(k.Faults, f.Fault) {
		bad("unknown fault %q (known: %s)", f.Fault, strings.Join(k.Faults, ", "))
		return errs
	}
	if k.Fault != nil {
		if err := k.Fault(f.Fault, f.Params); err != nil {
			bad("%s: %v", f.Fault, err)
		}
	}
	if d := s.Workload.Duration; d > 0 && f.At >= d {
		bad("at %s is not before the end of the workload (%s)", f.At, d)
	}
	if d := s.Workload.Duration; d > 0 && f.At+f.For > d {
		bad("at %s + for %s ends after the workload (%s)", f.At, f.For, d)
	}
	switch f.Redis {
	case "", "up", "down":
	default:
		bad("redis %q: want up or down", f.Redis)
	}
	if f.Fault == check.FlagFault {
		errs = append(errs, s.validateFlag(i, f)...)
	}
	for j, g := range s.Faults[:i] {
		if why := conflictAt(g, f); why != "" && s.overlap(f, g) {
			bad("%s overlaps faults[%d] (%s): %s", f.Fault, j, g.Fault, why)
		}
	}
	if isInstanceFault(f.Fault) {
		if s.InstanceMode != InstancesProcess {
			bad("%s needs instance_mode: process (instances the harness runs as processes)", f.Fault)
		}
		if f.At == 0 {
			bad("%s at 0: the instances start after the start-up faults", f.Fault)
		}
		if in, err := parseInstanceFault(f.Fault, f.Params); err == nil && in.i >= max(s.Instances, 1) {
			bad("%s: instance %d, but the scenario runs %d", f.Fault, in.i, max(s.Instances, 1))
		}
	}
	return errs
}

// boundedChecks are the checks that measure without a bound of their own:
// a scenario naming one must bound its metric with a threshold.
var boundedChecks = map[string]string{"lost_on_crash": "lost_on_crash", "memory": "rss_max_mib"}

// stepEnd is when st is undone: without for, at the end of the workload.
func (s *Spec) stepEnd(st FaultStep) Duration {
	if st.For == 0 {
		return s.Workload.Duration
	}
	return st.At + st.For
}

// overlap reports whether the windows of steps a and b overlap.
func (s *Spec) overlap(a, b FaultStep) bool {
	return a.At < s.stepEnd(b) && b.At < s.stepEnd(a)
}

// serverHeld is processHeld's name of the redis-server.
const serverHeld = "the server"

// needsRunningServer reports whether fault k reconfigures the server with
// CONFIG SET when injected and undone (the TLS faults but the proxy's
// handshake stall, maxmemory): a killed or paused server cannot take it.
func needsRunningServer(k string) bool {
	return k == "maxmemory" || strings.HasPrefix(k, "tls_") && k != "tls_handshake_stall"
}

// primaryHeld is processHeld's name of a replicated target's primary.
const primaryHeld = "the primary"

// needsRunningPrimary reports whether fault k acts through the primary of
// a replicated target (a failover's REPLICAOF, a partition's CONFIG SET, a
// pause of the process): a killed primary cannot take it. (Two pauses may
// overlap: the second freezes the node promoted meanwhile.)
func needsRunningPrimary(k string) bool {
	return k == "failover" || k == "partition_primary" || k == "primary_pause"
}

// processHeld names the process a fault of kind k with params holds for
// its window, "" for none: the redis-server of a single-server target
// (kill, pause, restart) or an instance (the instance_* faults, by their
// instance parameter).
func processHeld(k string, params map[string]string) string {
	switch {
	case k == "kill" || k == "pause" || k == "restart":
		return serverHeld
	case k == "primary_kill":
		return primaryHeld
	case isInstanceFault(k):
		return "instance " + cmp.Or(params["instance"], "(default)")
	}
	return ""
}

// conflictAt is ConflictAt of two steps.
func conflictAt(g, f FaultStep) string {
	return ConflictAt(g.Fault, g.Params, g.At.D(), f.Fault, f.Params, f.At.D())
}

// ConflictAt is Conflict of faults a and b starting at aAt and bAt, the one
// that starts first first (either order when they start together).
func ConflictAt(a string, aParams map[string]string, aAt time.Duration, b string, bParams map[string]string, bAt time.Duration) string {
	if bAt < aAt {
		a, aParams, b, bParams = b, bParams, a, aParams
	}
	why := Conflict(a, aParams, b, bParams)
	if why == "" && aAt == bAt {
		why = Conflict(b, bParams, a, aParams)
	}
	return why
}

// Conflict says why faults a and b (kinds, with their params; a starts no
// later than b) cannot be in force at once, "" when they can: one process
// is held by one kill, pause, stop or restart at a time (a paused or
// killed process cannot be killed or paused again), and a fault that
// reconfigures the server needs it running; a replicated target's killed
// primary (primary_kill) cannot be killed, paused, failed over or
// partitioned, nor a paused one failed over or its replicas held back
// (REPLICAOF on the data nodes: explore seed 21212, a replica_lag's undo
// timed out) or partitioned after it was paused (ACL SETUSER on the frozen
// node: explore seed 19191, not judged; a pause after the partition
// freezes the node promoted), nor a partition's replicas held back by a
// replica lag; two toxics alike cannot stack. Parse refuses such steps
// when their windows overlap; explore does not draw them (explore runs of
// seeds 3030 and 4040 failed to inject them, or routed calls to an
// instance killed while paused; seed 7070 failed to pause a killed
// primary, and killed the promoted node while the first was down: both
// copies gone, every acknowledged event charged as lost).
func Conflict(a string, aParams map[string]string, b string, bParams map[string]string) string {
	ka, kb := processHeld(a, aParams), processHeld(b, bParams)
	switch {
	case ka != "" && ka == kb:
		return ka + " is one process, which one kill, pause, stop or restart holds at a time"
	case needsRunningServer(a) && kb == serverHeld:
		return fmt.Sprintf("%s reconfigures the server (CONFIG SET), which %s leaves unable to answer", a, b)
	case needsRunningServer(b) && ka == serverHeld:
		return fmt.Sprintf("%s reconfigures the server (CONFIG SET), which %s leaves unable to answer", b, a)
	case needsRunningPrimary(a) && kb == primaryHeld:
		return fmt.Sprintf("%s acts through the primary, which %s leaves unable to answer", a, b)
	case needsRunningPrimary(b) && ka == primaryHeld:
		return fmt.Sprintf("%s acts through the primary, which %s leaves unable to answer", b, a)
	case a == "failover" && b == "primary_pause", a == "primary_pause" && b == "failover":
		return "failover reconfigures every data node (REPLICAOF), which primary_pause leaves unable to answer"
	case a == "replica_lag" && b == "primary_pause", a == "primary_pause" && b == "replica_lag":
		return "replica_lag reconfigures every data node but the primary (REPLICAOF), and primary_pause leaves one unable to answer once the sentinels promote another"
	case a == "primary_pause" && b == "partition_primary":
		return "partition_primary changes the primary's users (ACL SETUSER), which a primary_pause begun before it leaves unable to answer"
	case a == "replica_lag" && b == "partition_primary", a == "partition_primary" && b == "replica_lag":
		return "partition_primary points the replicas away from the primary, as replica_lag does, and each puts them back when it ends: one at a time"
	case a == b && toxicFault(a) && maps.Equal(aParams, bParams):
		return fmt.Sprintf("two %s steps with the same settings are one toxic, which the proxy holds once: let one window cover both, or change a setting", a)
	}
	return ""
}

// toxicFault reports whether fault k adds a Toxiproxy toxic named after its
// kind and settings (explore seed 17171 drew two limit_data of 4096 bytes
// that overlapped: the second could not be added, and the run was not
// judged).
func toxicFault(k string) bool {
	return slices.Contains([]string{"latency", "bandwidth", "timeout", "reset_peer", "slow_close", "slicer", "limit_data"}, k)
}

// validateFlag checks what a rollback step needs of the rest of the spec.
func (s *Spec) validateFlag(i int, f FaultStep) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, s.errf(f.Line, "faults[%d]: %s: "+format, append([]any{i, f.Fault}, args...)...))
	}
	if f.At == 0 {
		bad("at 0: a rollback restarts running instances; to start rolled back, set config.enabled: false")
	}
	if s.Config.Enabled != nil && !*s.Config.Enabled {
		bad("config.enabled is false: there is nothing to roll back")
	}
	if s.Workload.SSE.Clients > 0 || s.Workload.Registry.Connections > 0 {
		bad("a restart drops SSE streams and registry connections, which the workload does not reopen: leave workload.sse and workload.registry out")
	}
	if f.Redis != "" {
		bad("redis %q: a rollback leaves Redis as it is", f.Redis)
	}
	for j, g := range s.Faults[:i] {
		if g.Fault == check.FlagFault && s.overlap(f, g) {
			bad("overlaps faults[%d], another rollback", j)
		}
	}
	return errs
}

// applyDefaults fills the zero values that have a default.
func (s *Spec) applyDefaults(k Known) {
	if s.Target.Kind == "" {
		s.Target.Kind = target.KindProcess
	}
	if len(s.Profiles) == 0 {
		s.Profiles = append([]string(nil), k.Profiles...)
	}
	if s.Instances == 0 {
		s.Instances = 1
	}
	if s.Recovery == 0 {
		s.Recovery = Duration(3e9)
	}
	p := &s.Workload.Publish
	setInt(&p.Flows, 4)
	setInt(&p.Publishers, 2)
	setInt(&p.Concurrency, 1)
	setInt(&p.Payload, 64)
	if s.Workload.SSE.Flows == 0 || s.Workload.SSE.Flows > p.Flows {
		s.Workload.SSE.Flows = p.Flows
	}
	x := &s.Workload.SSE
	if x.Reconnect > 0 && x.Jitter == 0 {
		x.Jitter = x.Reconnect / 4
	}
	if x.Move == "" {
		x.Move = "same"
	}
	if x.Retry == 0 {
		x.Retry = Duration(100 * time.Millisecond)
	}
	if x.MaxBackoff == 0 {
		x.MaxBackoff = max(Duration(2*time.Second), x.Retry)
	}
	setInt(&x.Attempts, 20)
	setInt(&x.Slow.RecvBuffer, 4096)
	setInt(&x.Stalled.RecvBuffer, 4096)
	c := &s.Workload.Cache
	if c.WriteRatio == 0 {
		c.WriteRatio = 0.1
	}
	setInt(&c.Flows, 4)
	setInt(&c.Clients, 2)
	r := &s.Workload.Registry
	setInt(&r.Flows, 2)
	if r.Heartbeat == 0 {
		r.Heartbeat = Duration(defaultRegistryHeartbeat)
	}
	if r.Lookup == 0 {
		r.Lookup = Duration(100e6)
	}
	if r.StopAt == 0 {
		r.StopAt = s.Workload.Duration / 3
	}
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}
