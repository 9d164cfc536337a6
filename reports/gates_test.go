package reports

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gonogo/harness/internal/exitcode"
)

// catalogueOf is a Catalogue producing exactly what gs refers to.
func catalogueOf(gs Gates) Catalogue {
	c := Catalogue{Scenarios: map[string][]string{}, Checks: map[string][]string{}}
	for _, g := range gs.Gates {
		for _, s := range g.Scenarios {
			c.Scenarios[s] = c.Scenarios[s]
		}
		c.Benchmarks = appendNew(c.Benchmarks, g.Benchmarks...)
		for _, cr := range g.Criteria {
			p := strings.Split(cr.Metric, ":")
			switch p[0] {
			case "scenario":
				c.Scenarios[p[1]] = append(c.Scenarios[p[1]], p[2])
			case "check":
				c.Checks[p[1]] = append(c.Checks[p[1]], p[2])
			}
		}
	}
	return c
}

func TestDefaultGates(t *testing.T) {
	gs := DefaultGates()
	if got, want := strings.Join(gs.Names(), " "), "local eventbus production production-ha release"; got != want {
		t.Fatalf("gates: got %q; want %q", got, want)
	}
	days := map[string]int{"local": 3, "eventbus": 6, "production": 9, "release": 12}
	byID := map[string]map[string]Criterion{}
	for _, g := range gs.Gates {
		if g.Day != days[g.Name] {
			t.Errorf("gate %s: day %d; want %d", g.Name, g.Day, days[g.Name])
		}
		byID[g.Name] = map[string]Criterion{}
		for _, c := range g.Criteria {
			byID[g.Name][c.ID] = c
		}
	}
	// The tracker's success metrics, in the release gate.
	for _, w := range []struct{ id, expr, threshold string }{
		{"api_p99", "p99(bench:sse_publish:latency_ms)", "< 200 ms"},
		{"publish_p90", "p90(bench:publish:latency_ms)", "< 10 ms"},
		{"cache_hit_rate", "scenario:basic:cache_hit_rate", "> 80 %"},
		{"sse_p90", "p90(bench:sse:latency_ms)", "< 50 ms"},
		{"sse_p99_2", "scenario:fanout_2:delivery_p99_ms", "< 50 ms"},
		{"lost_kill_aof", "scenario:kill_aof:lost", "== 0"},
		{"lost_flapping", "scenario:flapping:lost", "== 0"},
		{"connect_health", "check:basic:health", "== 1"},                // from local
		{"bounded_blackhole", "scenario:blackhole:over_budget", "== 0"}, // from eventbus
		{"tls_expired", "check:tls_expired:fallback_time", "== 1"},      // alias of production's
	} {
		c, ok := byID["release"][w.id]
		if !ok {
			t.Errorf("release lacks criterion %s", w.id)
			continue
		}
		if c.Expr() != w.expr || c.Threshold() != w.threshold {
			t.Errorf("release %s: got %s %s; want %s %s", w.id, c.Expr(), c.Threshold(), w.expr, w.threshold)
		}
	}
	// Release judges every metric the other gates judge, but the
	// remote-target preconditions.
	judged := map[string]bool{}
	for _, c := range byID["release"] {
		judged[c.Metric] = true
	}
	for _, g := range []string{"local", "eventbus", "production"} {
		for id, c := range byID[g] {
			if !judged[c.Metric] && !c.Precondition {
				t.Errorf("release does not judge %s (%s's criterion %s)", c.Metric, g, id)
			}
		}
	}
	if _, ok := byID["release"]["remote_target"]; ok {
		t.Error("release requires a remote target; it must run on the process target")
	}
	for _, id := range []string{"remote_target", "tls_target"} {
		if !byID["production"][id].Precondition {
			t.Errorf("production %s is not a precondition", id)
		}
	}
	// The real catalogue is checked in cmd/harness (reports cannot import
	// the scenario engine); here the file must at least agree with itself.
	if err := gs.Validate(catalogueOf(gs).Has); err != nil {
		t.Errorf("default gates against their own catalogue: %v", err)
	}
}

func TestValidateRejectsUnknownMetric(t *testing.T) {
	gs := DefaultGates()
	cat := catalogueOf(gs)
	cat.Scenarios["fanout_2"] = []string{"delivery_lost"}                          // delivery_p99_ms no longer produced
	cat.Benchmarks = []string{"publish", "cache_get", "reg_lookup", "sse", "cost"} // no sse_publish
	err := gs.Validate(cat.Has)
	if err == nil {
		t.Fatal("got nil; want an error")
	}
	if exitcode.Of(err) != exitcode.BadInput {
		t.Errorf("exit code %d; want %d", exitcode.Of(err), exitcode.BadInput)
	}
	msg := err.Error()
	for _, want := range []string{
		`no scenario or benchmark produces metric "scenario:fanout_2:delivery_p99_ms"`,
		`gate release: unknown benchmark "sse_publish"`,
		`no scenario or benchmark produces metric "bench:sse_publish:latency_ms"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if !regexp.MustCompile(`gates\.yaml:\d+: criterion sse_p99_2:`).MatchString(msg) {
		t.Errorf("error does not name gates.yaml:line:\n%s", msg)
	}
	if n := strings.Count(msg, "\n") + 1; n != 3 {
		t.Errorf("got %d errors; want 3 (no duplicates through includes):\n%s", n, msg)
	}
}

func TestCatalogueHas(t *testing.T) {
	c := Catalogue{Scenarios: map[string][]string{"basic": {"publish_ms"}}, Checks: map[string][]string{"basic": {"connect"}}, Benchmarks: []string{"publish"}}
	for metric, want := range map[string]bool{
		"scenario:basic":                       true,
		"scenario:basic:publish_ms":            true,
		"scenario:basic:deliver_ms":            false,
		"scenario:other:publish_ms":            false,
		"check:basic:connect":                  true,
		"check:basic:ping":                     false,
		"bench:publish":                        true,
		"bench:publish:latency_ms":             true,
		"bench:publish:commands_per_op":        true,
		"bench:publish:server_commands_per_op": true,
		"bench:publish:connections_idle":       true,
		"bench:publish:nope":                   false,
		"bench:api:latency_ms":                 false,
		"env:tls":                              true,
		"env:nope":                             false,
		"junk":                                 false,
		"scenario:basic:publish_ms:more":       false,
	} {
		if got := c.Has(metric); got != want {
			t.Errorf("Has(%q): got %v; want %v", metric, got, want)
		}
	}
}

// gateFile is a valid gates file with one criterion; cases patch it.
const gateFile = `version: 1
gates:
  g:
    description: a gate
    scenarios: [basic]
    benchmarks: [publish]
    criteria:
      - id: c1
        metric: "bench:publish:latency_ms"
        aggregation: p99
        comparator: "<"
        bound: 10
        unit: ms
        why: fast
`

// TestBenchLoad: the shipped gates file states the load its benchmarks are
// driven with; a gates file may give its own, and one without leaves it nil.
func TestBenchLoad(t *testing.T) {
	want := BenchLoad{Workers: 32, Rate: 100, DurationS: 3, WarmupS: 1, LateAfterMs: 25, MaxMissed: 0.05}
	if got := DefaultGates().BenchLoad; got == nil || *got != want {
		t.Errorf("shipped bench_load: got %+v; want %+v", got, want)
	}
	own := strings.Replace(gateFile, "version: 1", "version: 1\nbench_load: {workers: 4, rate: 50, duration_s: 0.5, warmup_s: 0, late_after_ms: 10, max_missed: 0.1}", 1)
	gs, err := ParseGates("g.yaml", []byte(own))
	if err != nil {
		t.Fatal(err)
	}
	if want := (BenchLoad{Workers: 4, Rate: 50, DurationS: 0.5, LateAfterMs: 10, MaxMissed: 0.1}); gs.BenchLoad == nil || *gs.BenchLoad != want {
		t.Errorf("own bench_load: got %+v; want %+v", gs.BenchLoad, want)
	}
	if gs, err := ParseGates("g.yaml", []byte(gateFile)); err != nil || gs.BenchLoad != nil {
		t.Errorf("no bench_load: got %+v, %v; want nil", gs.BenchLoad, err)
	}
}

func TestParseGatesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"unknown key", "        unit: ms", "        unit: ms\n        bund: 3", `g.yaml:14: criterion: unknown key "bund"`},
		{"unknown gate key", "    description: a gate", "    description: a gate\n    dayz: 3", `g.yaml:5: gate g: unknown key "dayz"`},
		{"unknown top key", "version: 1", "version: 1\nextra: 2", `g.yaml:2: gates file: unknown key "extra"`},
		{"unknown comparator", `comparator: "<"`, `comparator: "=<"`, `g.yaml:11: criterion c1: unknown comparator "=<"`},
		{"unknown aggregation", "aggregation: p99", "aggregation: p95", `g.yaml:10: criterion c1: unknown aggregation "p95"`},
		{"missing bound", "        bound: 10\n", "", `g.yaml:8: criterion: missing "bound"`},
		{"missing why", "        why: fast\n", "", `g.yaml:8: criterion: missing "why"`},
		{"bound not a number", "bound: 10", "bound: ten", `g.yaml:12: want a number, got "ten"`},
		{"bound infinite", "bound: 10", "bound: .inf", `g.yaml:12: want a number`},
		{"bad metric", `"bench:publish:latency_ms"`, `"publish_latency"`, `g.yaml:9: criterion c1: metric "publish_latency": want scenario:`},
		{"bench field", `"bench:publish:latency_ms"`, `"bench:publish:speed"`, `unknown benchmark field "speed"`},
		{"scenario not run", `"bench:publish:latency_ms"`, `"scenario:kill_aof:acked_lost"`, `g.yaml:9: criterion c1: metric "scenario:kill_aof:acked_lost" names scenario "kill_aof", which gate g does not run`},
		{"bench not run", `"bench:publish:latency_ms"`, `"bench:api:latency_ms"`, `names benchmark "api", which gate g does not run`},
		{"check needs value", `"bench:publish:latency_ms"`, `"check:basic:connect"`, `aggregation must be value, not p99`},
		{"rate on latency", "aggregation: p99", "aggregation: rate", `aggregation rate does not apply to latency`},
		{"cost not run", `"bench:publish:latency_ms"`, `"cost:connections_idle"`, `needs the cost benchmark, which gate g does not run`},
		{"two-line why", "why: fast", "why: \"fast\\nslow\"", `g.yaml:14: criterion c1: why must be one line`},
		{"version", "version: 1", "version: 2", `g.yaml:1: gates file version 2`},
		{"include unknown", "    description: a gate", "    description: a gate\n    include: [nope]", `g.yaml:5: gate g includes "nope", which is not a gate defined above it`},
		{"no criteria", gateFile[strings.Index(gateFile, "    criteria:"):], "    criteria: []\n", `g.yaml:3: gate g has no criteria`},
		{"duplicate scenario", "scenarios: [basic]", "scenarios: [basic, basic]", `scenario "basic" listed twice`},
		{"duplicate key", "        unit: ms", "        unit: ms\n        unit: s", `g.yaml:14: criterion: key "unit" given twice`},
		{"yaml syntax", "    criteria:\n", "    criteria: [\n", `g.yaml:`},
		{"huge bound", "bound: 10", "bound: 1e300", `g.yaml:12: bound 1e300: want -1e+12 to 1e+12`},
		{"NaN bound", "bound: 10", "bound: .nan", `g.yaml:12: want a number, got ".nan"`},
		{"min_samples zero", "        unit: ms", "        unit: ms\n        min_samples: 0", `g.yaml:14: min_samples 0: want 1 to 1e+09`},
		{"min_samples huge", "        unit: ms", "        unit: ms\n        min_samples: 99999999999", `min_samples 99999999999: want 1 to 1e+09`},
		{"day", "    description: a gate", "    description: a gate\n    day: 100000", `g.yaml:5: day 100000: want 0 to 366`},
		{"traversing gate name", "  g:", "  ../g:", `gate name "../g": want lowercase`},
		{"long id", "id: c1", "id: c" + strings.Repeat("1", 64), `want lowercase letters, digits, _ . -, at most 64`},
		{"second document", "        why: fast\n", "        why: fast\n---\nversion: 1\n", `g.yaml:15: a second YAML document (---): a file holds one`},
		{"too many includes", "    description: a gate", "    description: a gate\n    include: [a, b, c, d, e, f, g, h, i, j, k]", `g.yaml:5: gate g: 11 include; at most 10`},
		{"too many scenarios", "scenarios: [basic]", "scenarios: [" + numbered("s", 201) + "]", `g.yaml:5: gate g (with its includes): 201 scenarios; at most 200`},
		{"precondition not bool", "        unit: ms", "        unit: ms\n        precondition: maybe", `g.yaml:14: precondition: want true or false`},
		{"bench_load key missing", "version: 1", "version: 1\nbench_load: {workers: 1, rate: 10, duration_s: 1, warmup_s: 0, late_after_ms: 5}", `g.yaml:2: bench_load: missing "max_missed"`},
		{"bench_load unknown key", "version: 1", "version: 1\nbench_load: {workers: 1, rate: 10, duration_s: 1, warmup_s: 0, late_after_ms: 5, max_missed: 0.01, ops: 3}", `g.yaml:2: bench_load: unknown key "ops"`},
		{"bench_load rate out of range", "version: 1", "version: 1\nbench_load: {workers: 1, rate: 0, duration_s: 1, warmup_s: 0, late_after_ms: 5, max_missed: 0.01}", `g.yaml:2: rate 0: want 1 to 1e+06`},
		{"bench_load workers not an integer", "version: 1", "version: 1\nbench_load: {workers: 1.5, rate: 10, duration_s: 1, warmup_s: 0, late_after_ms: 5, max_missed: 0.01}", `g.yaml:2: want an integer, got "1.5"`},
		{"bench_load max_missed over 1", "version: 1", "version: 1\nbench_load: {workers: 1, rate: 10, duration_s: 1, warmup_s: 0, late_after_ms: 5, max_missed: 2}", `max_missed 2: want 0.001 to 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(gateFile, tc.old, tc.new, 1)
			if text == gateFile {
				t.Fatalf("patch %q did not apply", tc.old)
			}
			_, err := ParseGates("g.yaml", []byte(text))
			if err == nil {
				t.Fatalf("got nil error; want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q; want it to contain %q", err, tc.want)
			}
			if exitcode.Of(err) != exitcode.BadInput {
				t.Errorf("exit code %d; want %d", exitcode.Of(err), exitcode.BadInput)
			}
		})
	}
}

// numbered is "p0, p1, …" with n names.
func numbered(p string, n int) string {
	var names []string
	for i := range n {
		names = append(names, p+strconv.Itoa(i))
	}
	return strings.Join(names, ", ")
}

// TestParseGatesBounded: a gates file of many gates, each including the
// one before, once took minutes (criteria merged in cubic time); now the
// count limits refuse it at once, and the most a file may hold parses in
// well under a second of work.
func TestParseGatesBounded(t *testing.T) {
	chain := func(n, criteria int) []byte {
		var b strings.Builder
		b.WriteString("version: 1\ngates:\n")
		for i := range n {
			fmt.Fprintf(&b, "  g%d:\n    description: x\n    scenarios: [basic]\n", i)
			if i > 0 {
				fmt.Fprintf(&b, "    include: [g%d]\n", i-1)
			}
			b.WriteString("    criteria:\n")
			for j := range criteria {
				fmt.Fprintf(&b, "      - {id: c%d_%d, metric: \"check:basic:lost\", aggregation: value, comparator: \"==\", bound: 1, why: w}\n", i, j)
			}
		}
		return []byte(b.String())
	}
	_, err := ParseGates("g.yaml", chain(101, 1))
	if want := "g.yaml:3: gates file: 101 gates; at most 100"; err == nil || !strings.Contains(err.Error(), want) || exitcode.Of(err) != exitcode.BadInput {
		t.Errorf("101 gates: got %v; want exit 3 with %q", err, want)
	}
	_, err = ParseGates("g.yaml", chain(100, 11))
	if want := "gate g90 (with its includes): 1001 criteria; at most 1000"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("1001 criteria: got %v; want %q", err, want)
	}
	gs, err := ParseGates("g.yaml", chain(100, 10))
	if err != nil {
		t.Fatalf("100 gates of 10 criteria each: %v", err)
	}
	if got := len(gs.Gates[99].Criteria); got != 1000 {
		t.Errorf("last gate: got %d criteria; want 1000", got)
	}
}

func TestParseGatesIncludeAndAlias(t *testing.T) {
	text := `version: 1
gates:
  a:
    description: first
    scenarios: [basic]
    criteria:
      - &c1 {id: c1, metric: "check:basic:connect", aggregation: value, comparator: "==", bound: 1, why: up}
  b:
    description: second
    include: [a]
    scenarios: [kill_aof]
    criteria:
      - {id: c2, metric: "scenario:kill_aof:acked_lost", aggregation: value, comparator: "==", bound: 0, why: kept, min_samples: 1}
  c:
    description: third
    include: [a, b]
    criteria:
      - *c1
`
	gs, err := ParseGates("x.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	c, err := gs.Gate("c")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, cr := range c.Criteria {
		ids = append(ids, cr.ID)
	}
	if got := strings.Join(ids, " ") + " / " + strings.Join(c.Scenarios, " "); got != "c1 c2 / basic kill_aof" {
		t.Errorf("gate c: got %q; want %q", got, "c1 c2 / basic kill_aof")
	}
	if _, err := gs.Gate("nope"); err == nil || !strings.Contains(err.Error(), "have a, b, c") || exitcode.Of(err) != exitcode.BadInput {
		t.Errorf("Gate(nope): got %v; want a bad-input error listing a, b, c", err)
	}
}

func TestLoadGates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mine.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(gateFile, "bound: 10", "bound: x", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadGates(path); err == nil || !strings.Contains(err.Error(), path+":12:") {
		t.Errorf("got %v; want an error at %s:12", err, path)
	}
	_, err := LoadGates(filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || exitcode.Of(err) != exitcode.BadInput {
		t.Errorf("missing file: got %v (code %d); want a bad-input error", err, exitcode.Of(err))
	}
	// Whatever the path, the read is bounded: --gates /dev/zero once read
	// until the machine killed the process.
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, append(DefaultGatesYAML(), bytes.Repeat([]byte("#\n"), 1<<20)...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"/dev/zero", "file too large: more than 1 MiB"},
		{big, "file too large: more than 1 MiB"},
		{t.TempDir(), "is a directory"},
	} {
		if _, err := LoadGates(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) || exitcode.Of(err) != exitcode.BadInput {
			t.Errorf("LoadGates(%s): got %v; want exit 3 with %q", tc.path, err, tc.want)
		}
	}
	// The shipped file, copied out and loaded from a path, is the default.
	if err := os.WriteFile(path, DefaultGatesYAML(), 0o644); err != nil {
		t.Fatal(err)
	}
	gs, err := LoadGates(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs.Gates) != 5 || len(gs.Gates[4].Criteria) != len(DefaultGates().Gates[4].Criteria) {
		t.Errorf("loaded copy differs from the default")
	}
}

func TestDescribe(t *testing.T) {
	var b bytes.Buffer
	if err := DefaultGates().Describe(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"local (Day 3): ", "release (Day 12): ", "publish_p90", "p90(bench:publish:latency_ms) < 10 ms", "scenarios: basic, startup_down, pool_exhaustion"} {
		if !strings.Contains(out, want) {
			t.Errorf("Describe lacks %q", want)
		}
	}
}
