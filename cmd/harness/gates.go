package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/gonogo/harness/bench"
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/redact"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/scenarios"
	"github.com/gonogo/harness/scenarios/check"
	"github.com/gonogo/harness/target"
)

// runGates is `harness gates list`: the gates of a gates file and their
// criteria, after validating the file against what the harness produces.
func runGates(_ context.Context, args []string, e env) (int, error) {
	fs := newFlags("gates", "gates list [--gates FILE] [--yaml]", e)
	file := fs.String("gates", "", "gates file (default: the one shipped with the harness)")
	asYAML := fs.Bool("yaml", false, "print the shipped gates file as YAML, to copy and edit")
	if len(args) == 0 || args[0] != "list" {
		// -h prints the usage; anything else is not a subcommand.
		if err := parseFlags(fs, args); err != nil {
			return 0, err
		}
		return 0, usageErr(fs, exitcode.Configf("gates needs a subcommand: list"))
	}
	if err := parse(fs, args[1:]); err != nil {
		return 0, err
	}
	if *asYAML {
		_, err := e.stdout.Write(reports.DefaultGatesYAML())
		return exitcode.Go, err
	}
	gs, _, err := loadGates(*file, scenarios.DefaultKnown(profiles.Default()))
	if err != nil {
		return 0, err
	}
	if err := gs.Describe(e.stdout); err != nil {
		return 0, exitcode.Harness(err)
	}
	return exitcode.Go, nil
}

// loadGates reads the gates file (the shipped one when path is empty) and
// validates it against what the scenario catalogue and the benchmarks
// produce; it returns the gates and the catalogue's scenarios by name. Every
// error is bad input (exit 3) naming file:line.
func loadGates(path string, k scenarios.Known) (reports.Gates, map[string]scenarios.Spec, error) {
	gs := reports.DefaultGates()
	if path != "" {
		var err error
		if gs, err = reports.LoadGates(path); err != nil {
			return gs, nil, err
		}
	}
	specs, err := scenarios.LoadAll(nil, k)
	if err != nil {
		return gs, nil, err
	}
	if err := gs.Validate(gateCatalogue(specs, k).Has); err != nil {
		return gs, nil, err
	}
	byName := make(map[string]scenarios.Spec, len(specs))
	for _, s := range specs {
		byName[s.Name] = s
	}
	return gs, byName, nil
}

// gateCatalogue is what gates may refer to: each scenario's checks (as
// listed in its file) and the metrics those checks produce (the checkers'
// catalogue, check.Metrics), and the benchmark ops. The engine's own checks
// (round_trips) produce the metrics k knows beyond the checkers' catalogue.
func gateCatalogue(specs []scenarios.Spec, k scenarios.Known) reports.Catalogue {
	byCheck := map[string][]string{}
	inCatalogue := map[string]bool{}
	for _, m := range check.Metrics {
		byCheck[m.Check] = append(byCheck[m.Check], m.Name)
		inCatalogue[m.Name] = true
	}
	var engineMetrics []string
	for _, m := range k.Metrics {
		if !inCatalogue[m] {
			engineMetrics = append(engineMetrics, m)
		}
	}
	for _, c := range k.Checks {
		if !slices.Contains(check.Names(), c) {
			byCheck[c] = engineMetrics
		}
	}
	cat := reports.Catalogue{Scenarios: map[string][]string{}, Checks: map[string][]string{}, Benchmarks: benchOps()}
	for _, s := range specs {
		cat.Scenarios[s.Name] = cat.Scenarios[s.Name]
		for _, c := range s.Checks {
			cat.Checks[s.Name] = append(cat.Checks[s.Name], c.Name)
			cat.Scenarios[s.Name] = append(cat.Scenarios[s.Name], byCheck[c.Name]...)
		}
	}
	return cat
}

// benchOps are the benchmark ops a gate may run and judge: every layer op,
// and sse_publish (the publish endpoint's HTTP round trip: the API response
// time), which the sse benchmark measures.
func benchOps() []string { return append(slices.Clone(bench.LayerOps), bench.OpSSEPublish) }

// benchSteps are the bench ops that produce the gate's benchmarks, in order,
// each once.
func benchSteps(ops []string) []string {
	var steps []string
	for _, op := range ops {
		if op == bench.OpSSEPublish {
			op = bench.OpSSE
		}
		if !slices.Contains(steps, op) {
			steps = append(steps, op)
		}
	}
	return steps
}

// gateLoad drives each benchmark of a gate run: open loop, 100 ops/s for 3 s
// after a 1 s warm-up, up to 32 calls in flight: a steady load at which latency is not
// queueing, with enough samples (about 300 per op) for a p99. Latency runs
// from each call's intended start, so a call that starts late still counts
// its wait; the run is inconclusive only when more than 5 % of the calls
// start over 25 ms late (the load generator, not the layer, fell behind).
var gateLoad = bench.Load{Workers: 32, Rate: 100, Duration: 3 * time.Second, Warmup: time.Second,
	LateAfter: 25 * time.Millisecond, MaxMissed: 0.05}

// benchTarget is where a gate run's benchmarks get Redis: the --target
// kind (process: a redis-server of their own; remote-sim: with rtt; url:
// the url).
type benchTarget struct {
	kind target.Kind
	url  string
	rtt  time.Duration
}

// config is the benchmarks' configuration for one profile and the ops
// steps; a target kind the benchmarks do not support is an error.
func (t benchTarget) config(profile string, reg *impl.Profiles, steps []string) (bench.Config, error) {
	cfg := bench.Config{Target: t.kind, Layers: reg, Profiles: []string{profile}, Ops: steps, Load: gateLoad}
	switch t.kind {
	case target.KindProcess:
	case target.KindRemoteSim:
		cfg.RTT = t.rtt
	case target.KindURL:
		cfg.URL = t.url
	default:
		return cfg, fmt.Errorf("benchmarks do not run on a %s target", t.kind)
	}
	return cfg, nil
}

// scenarioGate is the gate of a run without --gate: every check of every
// scenario run must pass (report-only checks excepted). Its criteria are
// named <scenario>.<check>.
func scenarioGate(jobs []job) reports.Gate {
	g := reports.Gate{Name: pseudoGate, Description: "every check of the selected scenarios passes (no --gate given)"}
	for _, j := range jobs {
		g.Scenarios = append(g.Scenarios, j.name)
		for _, c := range j.spec.Checks {
			if c.ReportOnly {
				continue
			}
			g.Criteria = append(g.Criteria, reports.Criterion{
				ID: j.name + "." + c.Name, Metric: "check:" + j.name + ":" + c.Name,
				Aggregation: reports.AggValue, Comparator: "==", Bound: 1, Why: guaranteeOf(c.Name),
			})
		}
	}
	return g
}

// pseudoGate names the gate of a run without --gate.
const pseudoGate = "scenarios"

// guaranteeOf is the text of the guarantee the check named name judges: its
// checker's answer on an empty history.
func guaranteeOf(name string) string {
	if fn, ok := check.Lookup(name); ok {
		return fn(history.History{}, check.Config{}).Guarantee
	}
	if r := scenarios.RoundTrips(history.History{}); r.Check == name {
		return r.Guarantee
	}
	return "check " + name + " passes"
}

// checkGuarantee maps each check to the DESIGN.md guarantee it judges.
var checkGuarantee = map[string]int{
	"budget": 1, "fallback_time": 1,
	"lost":       2,
	"duplicated": 3, "reordered": 3,
	"delivery":     4,
	"registry":     5,
	"stale_read":   6,
	"recover_time": 7,
	"health":       8,
	"round_trips":  9,
}

// scenarioModel maps one scenario run into the report model: its checks
// with their metrics and evidence, its fault windows and time series from
// the saved history, and the anomalies its evidence names. A run whose load
// before the first fault was below target, or that was not run because its
// target could not offer what it needs, is marked inconclusive.
func scenarioModel(name string, o scenarios.Outcome, h history.History) (reports.Scenario, []reports.Anomaly) {
	s := reports.Scenario{Name: name, Profile: o.Profile, Verdict: o.Verdict, DurationMs: reports.Ms(o.Elapsed)}
	var anomalies []reports.Anomaly
	for _, r := range o.Results {
		c := reports.Check{Name: r.Check, Guarantee: checkGuarantee[r.Check], Verdict: r.Verdict,
			Error: r.Error, Evidence: r.Evidence, Metrics: r.Metrics, Sensitivity: r.Sensitivity}
		if r.Sensitivity != "" {
			c.Evidence = append(slices.Clip(c.Evidence), "sensitivity: "+r.Sensitivity)
		}
		if r.ReportOnly {
			c.Evidence = append([]string{"reported only: does not decide the scenario's verdict"}, c.Evidence...)
		}
		if errors.Is(r.Err, check.ErrLowLoad) && s.Inconclusive == "" {
			s.Inconclusive = firstLine(r.Error)
		}
		s.Checks = append(s.Checks, c)
		anomalies = append(anomalies, anomaliesOf(name, r.Evidence)...)
	}
	if why := h.Meta[scenarios.MetaUnavailable]; why != "" {
		s.Inconclusive = "not run: " + why
	}
	for _, f := range h.Faults {
		s.Faults = append(s.Faults, reports.FaultFrom(f))
	}
	s.Series = reports.SeriesFrom(h, seriesBucket(h.End))
	return s, mergeAnomalies(anomalies)
}

// seriesBucket splits a run of length d into about 40 buckets of a round
// length (at least 100 ms).
func seriesBucket(d time.Duration) time.Duration {
	return max(100*time.Millisecond, (d / 40).Round(50*time.Millisecond))
}

// anomalyRE finds the event an evidence line names, by the anomaly kind it
// reports (the checkers' evidence formats).
var anomalyRE = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"lost", regexp.MustCompile(`^event (\S+) \(seq \d+.*missing from the history read`)},
	{"undelivered", regexp.MustCompile(`^event (\S+) \(.*never delivered to`)},
	{"duplicate", regexp.MustCompile(`^event (\S+) (?:appears|delivered) \d+ times`)},
	{"late", regexp.MustCompile(`^event (\S+) delivered to \S+ at .* after its publish`)},
	{"reordered", regexp.MustCompile(`^flow \S+ publisher \S+: event (\S+) \(seq`)},
}

// cappedRE is the line a checker ends capped evidence with.
var cappedRE = regexp.MustCompile(`^… and (\d+) more$`)

// anomaliesOf lists the event ids evidence lines name, by kind. Evidence is
// capped: an anomaly then says how many more lines were left out.
func anomaliesOf(scenario string, evidence []string) []reports.Anomaly {
	var out []reports.Anomaly
	byKind := map[string]int{}
	last := -1
	for _, line := range evidence {
		if m := cappedRE.FindStringSubmatch(line); m != nil && last >= 0 {
			out[last].Detail = "evidence capped: " + m[1] + " more lines not listed"
			continue
		}
		for _, a := range anomalyRE {
			m := a.re.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			i, ok := byKind[a.kind]
			if !ok {
				i = len(out)
				byKind[a.kind] = i
				out = append(out, reports.Anomaly{Scenario: scenario, Kind: a.kind})
			}
			out[i].IDs = append(out[i].IDs, m[1])
			last = i
			break
		}
	}
	return out
}

// mergeAnomalies folds anomalies of the same scenario and kind (found by
// different checks) into one, each id once.
func mergeAnomalies(as []reports.Anomaly) []reports.Anomaly {
	var out []reports.Anomaly
	at := map[string]int{}
	for _, a := range as {
		i, ok := at[a.Kind]
		if !ok {
			at[a.Kind] = len(out)
			a.IDs = slices.Compact(sortedCopy(a.IDs))
			out = append(out, a)
			continue
		}
		out[i].IDs = slices.Compact(sortedCopy(append(out[i].IDs, a.IDs...)))
		out[i].Detail = strings.Trim(out[i].Detail+"; "+a.Detail, "; ")
	}
	return out
}

func sortedCopy(xs []string) []string {
	out := slices.Clone(xs)
	sort.Strings(out)
	return out
}

// writeHgrms saves the latency of each op kind of h as an HdrHistogram
// (.hgrm, values in ms) in dir: <kind>.hgrm.
func writeHgrms(dir string, h history.History) error {
	hists := map[string]*hdrhistogram.Histogram{}
	for _, op := range h.Ops {
		if op.Kind == history.Subscribe || op.Kind == history.RedisState || op.Kind == history.RSS {
			continue
		}
		hg := hists[op.Kind]
		if hg == nil {
			hg = hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
			hists[op.Kind] = hg
		}
		us := min(max(int64(op.Latency()/time.Microsecond), 1), hg.HighestTrackableValue())
		_ = hg.RecordValue(us) // within range
	}
	for kind, hg := range hists {
		if err := reports.WriteHgrm(filepath.Join(dir, reports.HgrmName(kind)), hg, 1000); err != nil {
			return err
		}
	}
	return nil
}

// targetSecrets collects the password of every target a run starts, so
// that no report or log shows it.
type targetSecrets struct {
	mu  sync.Mutex
	pws []string
}

// wrap returns deps whose StartTarget reports each target's password to s.
func (s *targetSecrets) wrap(d *scenarios.Deps) *scenarios.Deps {
	c := *d
	c.StartTarget = func(ctx context.Context, t scenarios.Target) (target.Target, error) {
		tg, err := d.StartTarget(ctx, t)
		if err == nil {
			if pw := redact.Password(tg.URL()); pw != "" {
				s.mu.Lock()
				if !slices.Contains(s.pws, pw) {
					s.pws = append(s.pws, pw)
				}
				s.mu.Unlock()
			}
		}
		return tg, err
	}
	return &c
}

// list is the passwords seen so far.
func (s *targetSecrets) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pws)
}

// fillTargets sets the environment's target facts from what the engine
// recorded in each scenario's history (scenarios.Meta*): the kind (kinds
// joined by "+" when scenarios ran on different ones; unchanged when no
// scenario recorded one), TLS when every target was TLS, and the first
// recorded URL (password masked), round-trip time and Redis version. A
// process target without a recorded version gets `redis-server --version`.
func fillTargets(env *reports.Environment, metas []map[string]string) {
	var kinds []string
	tls := len(metas) > 0
	for _, m := range metas {
		if k := m[scenarios.MetaTargetKind]; k != "" && !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
		tls = tls && m[scenarios.MetaTargetTLS] == "true"
		if env.TargetURL == "" {
			env.TargetURL = m[scenarios.MetaTargetURL]
		}
		if env.RTTMs == 0 {
			env.RTTMs, _ = strconv.ParseFloat(m[scenarios.MetaTargetRTT], 64)
		}
		if env.RedisVersion == "" {
			env.RedisVersion = m[scenarios.MetaRedisVersion]
		}
	}
	if len(kinds) > 0 {
		env.TargetKind = strings.Join(kinds, "+")
	}
	env.TLS = tls
	if env.RedisVersion == "" && target.Kind(env.TargetKind) == target.KindProcess {
		env.RedisVersion = redisServerVersion()
	}
}

// redisServerVersion is the version `redis-server --version` prints, or "".
func redisServerVersion() string {
	out, err := exec.Command("redis-server", "--version").Output()
	if err != nil {
		return ""
	}
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return v
		}
	}
	return ""
}

// gitSHA is the commit the harness runs from: `git rev-parse HEAD` in the
// working directory, else the revision the binary was built from, else
// "unknown".
func gitSHA() string {
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		if sha := strings.TrimSpace(string(out)); sha != "" {
			return sha
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// environment is the run's environment before the probe fills in what the
// targets said.
func environment(kind string, seed int64, profiles, cmdline []string) reports.Environment {
	return reports.Environment{TargetKind: kind, GoVersion: runtime.Version(), GitSHA: gitSHA(), Seed: seed,
		Profile: strings.Join(profiles, ","), CommandLine: cmdline}
}

// saveFile writes data to dir/name atomically, as a harness failure on error.
func saveFile(dir, name string, data []byte) error {
	if err := history.WriteFileAtomic(filepath.Join(dir, name), data); err != nil {
		return exitcode.Harnessf("saving %s: %w", name, err)
	}
	return nil
}
