package scenarios

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
)

// testKnown stands in for the chaos, check and profile catalogues: pure
// name lists, so the validator is tested without Redis.
var testKnown = Known{
	Fault: func(name string, params map[string]string) error {
		for k := range params {
			if name == "latency" && (k == "latency" || k == "jitter") {
				continue
			}
			return fmt.Errorf("unknown param %q", k)
		}
		return nil
	},
	Faults:   []string{"down", "latency", "kill"},
	Checks:   []string{"lost", "bounded_blocking"},
	Metrics:  []string{"lost", "publish_p99_ms"},
	Profiles: []string{"hardened", "seed"},
}

const validSpec = `name: t
description: a test
target: {kind: process, aof: true}
profiles: [seed]
config:
  registry_ttl: 1s
workload:
  duration: 4s
  publish: {rate: 50}
faults:
  - at: 1s
    for: 1s
    fault: latency
    params: {latency: "100", jitter: "10"}
checks:
  - name: lost
  - name: bounded_blocking
    thresholds:
      publish_p99_ms: "<= 60ms"
`

func TestParseValid(t *testing.T) {
	s, err := Parse("t.yaml", []byte(validSpec), testKnown)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := s.Workload.Duration.D(), 4*time.Second; got != want {
		t.Errorf("duration: got %s; want %s", got, want)
	}
	if got := s.Faults[0].Params["latency"]; got != "100" {
		t.Errorf("fault param latency: got %q; want 100", got)
	}
	if got := s.Faults[0].Line; got != 11 {
		t.Errorf("fault line: got %d; want 11", got)
	}
	th := s.Checks[1].Thresholds[0]
	if th.Metric != "publish_p99_ms" || th.Op != "<=" || th.Value != 60 || th.Line != 19 {
		t.Errorf("threshold: got %+v; want publish_p99_ms <= 60 at line 19", th)
	}
	if s.Instances != 1 || s.Workload.Publish.Flows != 4 || s.Config.RegistryTTL.D() != time.Second {
		t.Errorf("defaults: got instances %d flows %d ttl %s; want 1, 4, 1s", s.Instances, s.Workload.Publish.Flows, s.Config.RegistryTTL)
	}
	if got := s.Profiles; len(got) != 1 || got[0] != "seed" {
		t.Errorf("profiles: got %v; want [seed]", got)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, from, to string
		want           string // file:line: text
	}{
		{"unknown top key", "description: a test", "descripton: a test", "t.yaml:2: unknown key \"descripton\""},
		{"unknown nested key", "  registry_ttl: 1s", "  registry_tll: 1s", "t.yaml:6: config: unknown key \"registry_tll\""},
		{"bad duration", "  duration: 4s", "  duration: 4 seconds", "t.yaml:8: workload.duration: bad duration \"4 seconds\""},
		{"negative duration", "  registry_ttl: 1s", "  registry_ttl: -1s", "t.yaml:6: config.registry_ttl: bad duration"},
		{"unknown fault", "    fault: latency", "    fault: latencyy", "t.yaml:11: faults[0]: unknown fault \"latencyy\""},
		{"unknown fault param", "jitter: \"10\"", "jiter: \"10\"", "t.yaml:11: faults[0]: latency: unknown param \"jiter\""},
		{"fault past end", "  - at: 1s", "  - at: 9s", "t.yaml:11: faults[0]: at 9s is not before the end"},
		{"unknown check", "  - name: lost", "  - name: lots", "t.yaml:16: unknown check \"lots\""},
		{"unknown metric", "      publish_p99_ms:", "      publish_p999_ms:", "t.yaml:19: check bounded_blocking: threshold on unknown metric \"publish_p999_ms\""},
		{"bad threshold", "\"<= 60ms\"", "\"about 60\"", "t.yaml:19: checks[1].thresholds.publish_p99_ms: threshold \"about 60\""},
		{"unknown profile", "profiles: [seed]", "profiles: [sede]", "unknown profile \"sede\""},
		{"wrong type", "publish: {rate: 50}", "publish: {rate: fast}", "t.yaml:9: workload.publish.rate: want a number"},
		{"bad target kind", "kind: process", "kind: docker", "t.yaml:3: target.kind \"docker\""},
		{"rtt without remote-sim", "aof: true}", "aof: true, rtt: 20ms}", "t.yaml:3: target.rtt 20ms: want a positive round-trip time, with kind remote-sim"},
		{"list expected", "profiles: [seed]", "profiles: seed", "t.yaml:4: profiles: want a list"},
		{"duplicate key", "description: a test", "description: a test\ndescription: again", "key \"description\" given twice"},
		{"not yaml", "name: t", "name: [t", "t.yaml:1: did not find expected ',' or ']'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantRejected(t, tt.from, tt.to, tt.want) })
	}
}

// wantRejected edits validSpec (from → to; with from empty, to is
// appended) and wants Parse to refuse it as bad input with want in the
// message.
func wantRejected(t *testing.T, from, to, want string) {
	t.Helper()
	src := validSpec + to
	if from != "" {
		if !strings.Contains(validSpec, from) {
			t.Fatalf("test bug: %q not in spec", from)
		}
		src = strings.Replace(validSpec, from, to, 1)
	}
	_, err := Parse("t.yaml", []byte(src), testKnown)
	if err == nil || !strings.Contains(err.Error(), want) || exitcode.Of(err) != exitcode.BadInput {
		t.Errorf("got %v (exit %d); want exit %d with %q", err, exitcode.Of(err), exitcode.BadInput, want)
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	src := strings.Replace(strings.Replace(validSpec, "  - name: lost", "  - name: lots", 1), "fault: latency", "fault: nope", 1)
	_, err := Parse("t.yaml", []byte(src), testKnown)
	if err == nil {
		t.Fatal("got no error; want two")
	}
	if got := strings.Count(err.Error(), "t.yaml:"); got != 2 {
		t.Errorf("got %d problems in %q; want 2", got, err)
	}
}

func TestParseThreshold(t *testing.T) {
	tests := []struct {
		in     string
		op     string
		value  float64
		wantOK bool
	}{
		{"<= 50ms", "<=", 50, true},
		{"<2s", "<", 2000, true},
		{">= 80", ">=", 80, true},
		{"== 0", "==", 0, true},
		{"< 0.01", "<", 0.01, true},
		{"50", "", 0, false},
		{"<= lots", "", 0, false},
		{"<= 5x", "", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseThreshold("m", tt.in)
		if (err == nil) != tt.wantOK {
			t.Errorf("ParseThreshold(%q): got err %v; want ok=%v", tt.in, err, tt.wantOK)
			continue
		}
		if tt.wantOK && (got.Op != tt.op || got.Value != tt.value) {
			t.Errorf("ParseThreshold(%q): got %s %g; want %s %g", tt.in, got.Op, got.Value, tt.op, tt.value)
		}
	}
	if th, _ := ParseThreshold("m", "<= 50"); !th.Holds(50) || th.Holds(50.1) {
		t.Error("<= 50: got wrong Holds at the bound")
	}
}

func TestLoad(t *testing.T) {
	if _, err := Load("no_such_scenario", testKnown); exitcode.Of(err) != exitcode.BadInput {
		t.Errorf("unknown scenario: got %v; want bad input", err)
	}
	if _, err := Load("/no/such/file.yaml", testKnown); exitcode.Of(err) != exitcode.BadInput {
		t.Errorf("missing file: got %v; want bad input", err)
	}
	var pe *posError
	if _, err := Load("/no/such/file.yaml", testKnown); errors.As(err, &pe) {
		t.Errorf("missing file: got a position error %v; want a plain one", err)
	}
}

// TestParseRejectsCountWithSSE: the service registers its SSE streams in
// the registry without the history knowing, so a count cannot be judged.
func TestParseRejectsCountWithSSE(t *testing.T) {
	k := testKnown
	k.Checks = append([]string{"registry_count"}, k.Checks...)
	src := strings.Replace(strings.Replace(validSpec, "  - name: lost", "  - name: registry_count", 1),
		"publish: {rate: 50}", "publish: {rate: 50}\n  sse: {clients: 1}", 1)
	_, err := Parse("t.yaml", []byte(src), k)
	want := "t.yaml:17: check registry_count cannot judge a run with workload.sse clients"
	if err == nil || !strings.Contains(err.Error(), want) || exitcode.Of(err) != exitcode.BadInput {
		t.Errorf("got %v; want exit %d with %q", err, exitcode.BadInput, want)
	}
	src = strings.Replace(validSpec, "  - name: lost", "  - name: registry_count", 1)
	if _, err := Parse("t.yaml", []byte(src), k); err != nil {
		t.Errorf("without SSE clients: %v; want no error", err)
	}
}

// TestParseFlag: the rollback step is validated as strictly as a chaos
// fault, plus what it needs of the rest of the spec.
func TestParseFlag(t *testing.T) {
	k := DefaultKnown(profiles.Default())
	const spec = `name: f
description: a rollback
workload:
  duration: 4s
  publish: {rate: 50}
faults:
  - at: 1s
    for: 1s
    fault: flag
    params: {redis_enabled: "false"}
checks:
  - name: lost
`
	if _, err := Parse("f.yaml", []byte(spec), k); err != nil {
		t.Fatalf("valid rollback: %v", err)
	}
	tests := []struct {
		name, from, to, want string
	}{
		{"unknown param", `{redis_enabled: "false"}`, `{redis_enable: "false"}`, `f.yaml:7: faults[0]: flag: bad fault parameter: fault flag has no parameter "redis_enable" (known: redis_enabled, event_bus, cache, sse)`},
		{"not false", `{redis_enabled: "false"}`, `{redis_enabled: "true"}`, `f.yaml:7: faults[0]: flag: bad fault parameter: fault flag: redis_enabled "true": want "false"`},
		{"no param", `    params: {redis_enabled: "false"}`, ``, `f.yaml:7: faults[0]: flag: bad fault parameter: fault flag needs at least one of`},
		{"at 0", `  - at: 1s`, `  - at: 0s`, `f.yaml:7: faults[0]: flag: at 0: a rollback restarts running instances`},
		{"nothing to roll back", `workload:`, "config: {enabled: false}\nworkload:", `faults[0]: flag: config.enabled is false`},
		{"registry", `  publish: {rate: 50}`, "  publish: {rate: 50}\n  registry: {connections: 2}", `faults[0]: flag: a restart drops SSE streams and registry connections`},
		{"overlap", "checks:", "  - {at: 1500ms, for: 1s, fault: flag, params: {cache: \"false\"}}\nchecks:", `faults[1]: flag: overlaps faults[0], another rollback`},
		{"server faults overlap", "checks:", "  - {at: 2500ms, for: 1s, fault: kill}\n  - {at: 3s, fault: pause}\nchecks:",
			`faults[2]: pause overlaps faults[1] (kill): the server is one process, which one kill, pause, stop or restart holds at a time`},
		{"the same toxic twice", "checks:", "  - {at: 2500ms, for: 1s, fault: limit_data, params: {bytes: \"4096\"}}\n  - {at: 3s, for: 500ms, fault: limit_data, params: {bytes: \"4096\"}}\nchecks:",
			`faults[2]: limit_data overlaps faults[1] (limit_data): two limit_data steps with the same settings are one toxic`},
		{"CONFIG SET over a killed server", "checks:", "  - {at: 2500ms, for: 1s, fault: kill}\n  - {at: 3s, for: 500ms, fault: maxmemory}\nchecks:",
			`faults[2]: maxmemory overlaps faults[1] (kill): maxmemory reconfigures the server (CONFIG SET), which kill leaves unable to answer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(spec, tt.from) {
				t.Fatalf("test bug: %q not in spec", tt.from)
			}
			_, err := Parse("f.yaml", []byte(strings.Replace(spec, tt.from, tt.to, 1)), k)
			if err == nil || !strings.Contains(err.Error(), tt.want) || exitcode.Of(err) != exitcode.BadInput {
				t.Errorf("got %v; want exit %d with %q", err, exitcode.BadInput, tt.want)
			}
		})
	}
}

// TestParseSSEClients: the reconnect and slow-consumer options are range
// checked with file:line, and defaulted in one place.
func TestParseSSEClients(t *testing.T) {
	const sse = "  publish: {rate: 50}\n  sse: {clients: 2, reconnect: 1s, move: other}"
	s, err := Parse("t.yaml", []byte(strings.Replace(validSpec, "  publish: {rate: 50}", sse, 1)), testKnown)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	x := s.Workload.SSE
	if x.Jitter.D() != 250*time.Millisecond || x.Retry.D() != 100*time.Millisecond || x.MaxBackoff.D() != 2*time.Second || x.Attempts != 20 || x.Move != "other" {
		t.Errorf("defaults: got jitter %s retry %s max_backoff %s attempts %d move %s; want 250ms 100ms 2s 20 other",
			x.Jitter, x.Retry, x.MaxBackoff, x.Attempts, x.Move)
	}
	for _, tt := range []struct{ sse, want string }{
		{"{clients: 2, move: elsewhere}", `t.yaml:10: workload.sse.move "elsewhere": want same, other or random`},
		{"{clients: 2, reconnect: 10ms}", "t.yaml:10: workload.sse.reconnect 10ms: want 0 or 50ms to 1h"},
		{"{clients: 2, reconnect: 1s, jitter: 1s}", "workload.sse.jitter 1s: want at least 0 and below reconnect (1s)"},
		{"{clients: 2, retry: 2m}", "workload.sse.retry 2m: want 0 or 1ms to 1m"},
		{"{clients: 2, retry: 1s, max_backoff: 500ms}", "workload.sse.max_backoff 500ms: want retry (1s) to 1m"},
		{"{clients: 2, attempts: -1}", "workload.sse.attempts -1: want 0 or 1 to 1000 connects"},
		{"{clients: 5000}", "workload.sse.clients 5000: want 0 or 1 to 1000 per flow"},
		{"{clients: 2, slow: {clients: 1}}", "t.yaml:10: workload.sse.slow needs read_rate"},
		{"{clients: 2, slow: {clients: 1, read_rate: 100, after: 3}}", "after, at and for belong to workload.sse.stalled"},
		{"{clients: 2, stalled: {clients: 1}}", "workload.sse.stalled needs after (events) or at (time)"},
		{"{clients: 2, stalled: {clients: 1, at: 5s}}", "workload.sse.stalled.at 5s is not before the end of the workload (4s)"},
		{"{clients: 2, stalled: {clients: 1, after: 2, recv_buffer: -1}}", "workload.sse.stalled.recv_buffer -1: want 0 or 1 to 67108864 bytes"},
		{"{clients: 2, stalled: {clients: 200, after: 2}}", "workload.sse.stalled.clients 200: want 0 or 1 to 100 clients"},
		{"{slow: {clients: 1, read_rate: 100}}", "slow and stalled consumers run next to normal ones: set workload.sse.clients"},
	} {
		src := strings.Replace(validSpec, "  publish: {rate: 50}", "  publish: {rate: 50}\n  sse: "+tt.sse, 1)
		_, err := Parse("t.yaml", []byte(src), testKnown)
		if err == nil || !strings.Contains(err.Error(), tt.want) || exitcode.Of(err) != exitcode.BadInput {
			t.Errorf("sse %s: got %v; want exit 3 with %q", tt.sse, err, tt.want)
		}
	}
}

// TestPrimaryFaultConflicts: on a replicated target a killed primary is
// not killed, paused, failed over or partitioned again while it is down,
// nor a paused one failed over (explore seed 7070 failed to inject those,
// and killed both data nodes without persistence); two pauses, or a pause
// inside a partition, act on whichever node is primary and may overlap.
func TestPrimaryFaultConflicts(t *testing.T) {
	k := DefaultKnown(profiles.Default())
	const head = "name: p\ntarget: {kind: sentinel}\nworkload:\n  duration: 6s\n  publish: {rate: 50}\nfaults:\n"
	tests := []struct{ faults, want string }{
		{"  - {at: 1s, for: 2s, fault: primary_kill}\n  - {at: 2s, for: 1s, fault: primary_kill}\n",
			"faults[1]: primary_kill overlaps faults[0] (primary_kill): the primary is one process"},
		{"  - {at: 1s, for: 2s, fault: primary_kill}\n  - {at: 2s, for: 1s, fault: primary_pause}\n",
			"faults[1]: primary_pause overlaps faults[0] (primary_kill): primary_pause acts through the primary, which primary_kill leaves unable to answer"},
		{"  - {at: 1s, for: 2s, fault: primary_kill}\n  - {at: 2s, for: 1s, fault: partition_primary}\n",
			"partition_primary acts through the primary, which primary_kill leaves unable to answer"},
		{"  - {at: 1s, for: 2s, fault: primary_pause}\n  - {at: 2s, for: 1s, fault: failover}\n",
			"failover reconfigures every data node (REPLICAOF), which primary_pause leaves unable to answer"},
		// explore seed 21212: a replica_lag during a pause to the end; its
		// undo's REPLICAOF to the frozen node timed out.
		{"  - {at: 1s, for: 4s, fault: primary_pause}\n  - {at: 2s, for: 1s, fault: replica_lag}\n",
			"faults[1]: replica_lag overlaps faults[0] (primary_pause): replica_lag reconfigures every data node but the primary"},
		{"  - {at: 1s, for: 2s, fault: replica_lag}\n  - {at: 2s, for: 1s, fault: primary_pause}\n",
			"replica_lag reconfigures every data node but the primary"},
		// explore seed 18181: replica_lag's undo waited 15 s for replicas
		// the partition held.
		{"  - {at: 1s, for: 3s, fault: partition_primary}\n  - {at: 1400ms, for: 1800ms, fault: replica_lag}\n",
			"faults[1]: replica_lag overlaps faults[0] (partition_primary): partition_primary points the replicas away"},
		{"  - {at: 1s, for: 1s, fault: partition_primary}\n  - {at: 2500ms, for: 1s, fault: replica_lag}\n", ""},
		{"  - {at: 1s, for: 2s, fault: primary_pause}\n  - {at: 2s, for: 1s, fault: primary_pause}\n", ""},
		{"  - {at: 1s, for: 2s, fault: partition_primary}\n  - {at: 1500ms, for: 1s, fault: primary_pause}\n", ""},
		// explore seed 19191: the partition's ACL SETUSER timed out on
		// the node the pause had frozen. Listed in either order, started
		// together too.
		{"  - {at: 1s, for: 2s, fault: primary_pause}\n  - {at: 1500ms, for: 1s, fault: partition_primary}\n",
			"faults[1]: partition_primary overlaps faults[0] (primary_pause): partition_primary changes the primary's users"},
		{"  - {at: 1500ms, for: 1s, fault: partition_primary}\n  - {at: 1s, for: 2s, fault: primary_pause}\n",
			"faults[1]: primary_pause overlaps faults[0] (partition_primary): partition_primary changes the primary's users"},
		{"  - {at: 1s, for: 1s, fault: partition_primary}\n  - {at: 1s, for: 2s, fault: primary_pause}\n",
			"partition_primary changes the primary's users"},
		{"  - {at: 1s, for: 1s, fault: primary_kill}\n  - {at: 3s, for: 1s, fault: primary_kill}\n", ""},
	}
	for _, tt := range tests {
		_, err := Parse("p.yaml", []byte(head+tt.faults+"checks:\n  - name: lost\n"), k)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v; want it valid", tt.faults, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || exitcode.Of(err) != exitcode.BadInput):
			t.Errorf("%s: %v; want exit %d with %q", tt.faults, err, exitcode.BadInput, tt.want)
		}
	}
}
