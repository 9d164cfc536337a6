package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/target"
	"github.com/redis/go-redis/v9"
)

func TestParseCommandstats(t *testing.T) {
	text := "# Commandstats\r\ncmdstat_xadd:calls=7,usec=20,usec_per_call=2.86,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_client|setinfo:calls=2,usec=1\r\ncmdstat_client|list:calls=3,usec=1\r\ncmdstat_EVALSHA:calls=1,usec=9\r\n"
	got, err := parseCommandstats(text)
	if err != nil {
		t.Fatal(err)
	}
	want := commandCounts{"xadd": 7, "client": 5, "evalsha": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parsed %v; want %v", got, want)
	}
	if _, err := parseCommandstats("# Server\r\nredis_version:7.0.0\r\n"); !errors.Is(err, errNoCommandstats) {
		t.Errorf("INFO without the section: err %v; want errNoCommandstats", err)
	}
	if _, err := parseCommandstats("# Commandstats\r\ncmdstat_get:calls=-4,usec=1\r\n"); err == nil {
		t.Error("negative calls accepted")
	}
	if d := want.since(commandCounts{"xadd": 7, "client": 1}); fmt.Sprint(d) != "map[client:4 evalsha:1]" || d.total() != 5 {
		t.Errorf("since = %v (total %d); want client 4, evalsha 1", d, d.total())
	}
}

func TestCountNamed(t *testing.T) {
	list := "id=3 addr=127.0.0.1:5 laddr=127.0.0.1:6379 fd=8 name=gonogo-b1 age=0 cmd=ping\n" +
		"id=4 addr=127.0.0.1:6 fd=9 name=gonogo-b12 age=0 cmd=ping\n" +
		"id=5 addr=127.0.0.1:7 fd=10 name= age=0 cmd=client|list\n" +
		"id=6 addr=127.0.0.1:8 fd=11 name=gonogo-b1 age=0 cmd=subscribe\n"
	if n := countNamed(list, "gonogo-b1"); n != 2 {
		t.Errorf("countNamed = %d; want 2 (a longer name sharing the prefix is another client)", n)
	}
}

// metered starts a redis-server with a server meter and a client on it.
func metered(t *testing.T) (*target.Process, *serverMeter, *redis.Client) {
	t.Helper()
	p := startRedis(t)
	m, err := newServerMeter(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return p, m, client(t, p)
}

// Redis counts a script's redis.call()s under their own commands, beside
// the EVALSHA that ran them; and the meter's own INFO calls never show in
// its deltas.
func TestServerCountsScriptInternalCommands(t *testing.T) {
	_, m, rdb := metered(t)
	ctx := context.Background()
	script := redis.NewScript(`redis.call('XADD', KEYS[1], '*', 'k', 'v'); redis.call('PUBLISH', KEYS[2], 'm'); return 1`)
	if err := script.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	idle := func(n int) commandCounts {
		a, err := m.read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ { // the meter's own INFO calls in between
			if _, err := m.read(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := m.connections(ctx, "x"); err != nil {
			t.Fatal(err)
		}
		b, err := m.read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return b.since(a)
	}
	if d := idle(3); len(d) != 0 {
		t.Fatalf("delta with only the meter's own INFO and CLIENT LIST in between: %v; want none", d)
	}
	before, err := m.read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const runs = 5
	for i := 0; i < runs; i++ {
		if err := script.EvalSha(ctx, rdb, []string{"s", "c"}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	after, err := m.read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := commandCounts{"evalsha": runs, "xadd": runs, "publish": runs}
	if d := after.since(before); fmt.Sprint(d) != fmt.Sprint(want) {
		t.Errorf("server delta for %d EVALSHA of XADD+PUBLISH: %v; want %v (script-internal commands counted)", runs, d, want)
	}
}

// testReader takes the test's own INFO commandstats readings at the
// bench's progress calls, which (without warm-up) come right before the
// measured phase's first boundary and right after its last.
type testReader struct {
	t      *testing.T
	rdb    *redis.Client
	mu     sync.Mutex
	start  commandCounts
	deltas []commandCounts
	ops    []int64
}

func (r *testReader) read() commandCounts {
	text, err := r.rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		r.t.Error(err)
		return nil
	}
	c, err := parseCommandstats(text)
	if err != nil {
		r.t.Error(err)
	}
	return c
}

func (r *testReader) Start(string, Load) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.start = r.read()
}
func (r *testReader) Update(Tick) {}
func (r *testReader) Done(st *Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deltas = append(r.deltas, r.read().since(r.start))
	r.ops = append(r.ops, st.Ops)
}

// Client and server commands per op for both profiles, the server's
// checked against the test's own INFO commandstats readings: between them
// the server executed the measured phase, the test's first INFO, and the
// meter's INFO at each boundary and CLIENT LIST at the end.
func TestServerAccountingBothProfiles(t *testing.T) {
	p := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1, PoolSize: 1, ConnMaxIdleTime: -1})
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	tr := &testReader{t: t, rdb: rdb}
	ops := []string{OpPublish, OpCacheGet, OpRegLookup}
	profs := []string{"seed", "hardened"}
	const n = 200
	rep, err := Run(context.Background(), Config{
		Target: target.KindURL, URL: p.URL(), Layers: profiles.Default(), Profiles: profs, Ops: ops,
		Load: Load{Workers: 4, Ops: n}, Progress: tr, CallBudget: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.deltas) != len(ops)*len(profs) {
		t.Fatalf("%d readings; want %d", len(tr.deltas), len(ops)*len(profs))
	}
	var table strings.Builder
	for i, d := range tr.deltas {
		op, prof := ops[i/len(profs)], profs[i%len(profs)]
		row := findRow(t, rep, op, prof)
		if row.Inconclusive != "" || row.Ops != n || tr.ops[i] != n {
			t.Fatalf("%s/%s: ops %d (progress %d), inconclusive %q", op, prof, row.Ops, tr.ops[i], row.Inconclusive)
		}
		if row.ServerCommandsPerOp == nil {
			t.Fatalf("%s/%s: no server accounting", op, prof)
		}
		d["info"] -= 3
		d["client"]--
		names := map[string]bool{}
		for c := range d {
			names[c] = true
		}
		for c := range row.ServerByCommand {
			names[c] = true
		}
		// A layer's background traffic (a health check) may fall in the
		// microseconds between the two readings and the boundaries.
		for c := range names {
			if got, want := row.ServerByCommand[c]*n, float64(d[c]); math.Abs(got-want) > 2 {
				t.Errorf("%s/%s %s: bench says %.0f executed in the measured phase, the test's own reading %.0f", op, prof, c, got, want)
			}
		}
		if got, want := *row.ServerCommandsPerOp*n, float64(d.total()); math.Abs(got-want) > 3 {
			t.Errorf("%s/%s: server commands %.0f; the test's own reading %.0f", op, prof, got, want)
		}
		if *row.ServerCommandsPerOp < row.CommandsPerOp-0.05 {
			t.Errorf("%s/%s: the server executed %.2f commands per op, fewer than the %.2f the client sent", op, prof, *row.ServerCommandsPerOp, row.CommandsPerOp)
		}
		c := row.Connections
		if c == nil || c.Instances != 1 || c.Load == nil || *c.Load < 1 || c.Idle == nil {
			t.Errorf("%s/%s: connections %+v; want one instance, idle counted, at least one under load", op, prof, c)
		}
		fmt.Fprintf(&table, "%-10s %-8s client %.2f | %s\n", op, prof, row.CommandsPerOp, strings.Join(row.Bench().ServerCells(), " | "))
	}
	t.Logf("commands per op, client vs server, and connections (%d ops, 4 workers):\n%s", n, table.String())
	// Hardened publishes with one EVALSHA whose script runs XADD and
	// PUBLISH: the client sends one command, the server executes three.
	hp := findRow(t, rep, OpPublish, "hardened")
	for _, c := range []string{"evalsha", "xadd", "publish"} {
		if v := hp.ServerByCommand[c]; v < 0.99 {
			t.Errorf("hardened publish: server %s %.2f per op; want ≥ 1 (script-internal commands counted)", c, v)
		}
	}
	if *hp.ServerCommandsPerOp < hp.CommandsPerOp+1.9 {
		t.Errorf("hardened publish: server %.2f vs client %.2f commands per op; want ≥ 2 more", *hp.ServerCommandsPerOp, hp.CommandsPerOp)
	}
	// The report model carries both.
	if b := hp.Bench(); b.ServerCommandsPerOp == nil || *b.ServerCommandsPerOp != *hp.ServerCommandsPerOp || b.ServerByCommand["xadd"] != hp.ServerByCommand["xadd"] || b.Connections == nil {
		t.Errorf("reports.Bench %+v lacks the server side", b)
	}
}

func findRow(t *testing.T, rep *Report, op, profile string) Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Op == op && r.Profile == profile {
			return r
		}
	}
	t.Fatalf("no row %s/%s", op, profile)
	return Result{}
}

// A target that refuses INFO (a managed Redis may) runs without the
// server side: a warning that shows no password, and rows without it.
func TestNoServerSideWithoutInfo(t *testing.T) {
	p := startRedis(t)
	admin := client(t, p)
	if err := admin.Do(context.Background(), "ACL", "SETUSER", "noinfo", "on", ">s3cret", "~*", "&*", "+@all", "-info").Err(); err != nil {
		t.Fatal(err)
	}
	url := strings.Replace(p.URL(), "redis://", "redis://noinfo:s3cret@", 1)
	rep, err := Run(context.Background(), Config{Target: target.KindURL, URL: url, Preset: "baseline", Load: Load{Workers: 2, Ops: 100}})
	if err != nil {
		t.Fatal(err)
	}
	warned := strings.Join(rep.Warnings, "\n")
	if !strings.Contains(warned, "no server-side accounting") || strings.Contains(warned, "s3cret") {
		t.Errorf("warnings %q: want the missing server side named, no password", warned)
	}
	if r := rep.Results[0]; r.ServerCommandsPerOp != nil || r.Connections != nil || r.Ops != 100 {
		t.Errorf("row %+v: want 100 ops and no server side", r)
	}
}

// TestServerAccountingCluster: on a Redis Cluster the meter sums its
// primaries (the raw stream's key is on one of three, a publish's flows
// spread over them): the server executed at least what the clients sent,
// and one XADD per raw XADD.
func TestServerAccountingCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	const n = 200
	rep, err := Run(context.Background(), Config{
		Target: target.KindCluster, Layers: profiles.Default(), Profiles: []string{"hardened"}, Ops: []string{OpXAdd, OpPublish},
		Load: Load{Workers: 4, Ops: n}, CallBudget: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rep.Results {
		if row.Inconclusive != "" || row.Ops != n || row.Errors != 0 {
			t.Fatalf("%s/%s: ops %d errors %d (%s), inconclusive %q", row.Op, row.Profile, row.Ops, row.Errors, row.FirstErr, row.Inconclusive)
		}
		if row.ServerCommandsPerOp == nil || *row.ServerCommandsPerOp < row.CommandsPerOp-0.05 {
			t.Fatalf("%s/%s: server commands per op %v; want at least the %.2f the client sent", row.Op, row.Profile, row.ServerCommandsPerOp, row.CommandsPerOp)
		}
		// Besides, the set-up of connections the cluster client opened
		// in the phase (HELLO, CLIENT SETINFO, CLUSTER SLOTS).
		if x := row.ServerByCommand["xadd"]; row.Op == OpXAdd && (x < 0.99 || x > 1.01) {
			t.Errorf("xadd: %.3f server XADDs per op; want 1", x)
		}
		if c := row.Connections; c == nil || c.Load == nil || *c.Load < 1 {
			t.Errorf("%s/%s: connections %+v; want those under load counted on the nodes", row.Op, row.Profile, c)
		}
		t.Logf("%s/%s on a cluster: %.0f ops/s, client %.2f, server %.2f commands per op %v", row.Op, row.Profile, row.OpsPerSec, row.CommandsPerOp, *row.ServerCommandsPerOp, row.ServerByCommand)
	}
}
