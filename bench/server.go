package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/target"
	"github.com/redis/go-redis/v9"
)

// The server's side of a step. The counting hook sees what the clients
// sent; a metered Redis bills what the server executed, and a script's
// redis.call()s are executed commands too: Redis counts EVALSHA under
// cmdstat_evalsha and every command the script runs under its own name
// (TestServerCountsScriptInternalCommands). The billed commands of an op
// are therefore, conservatively, every command the server executed while
// the op's measured phase ran, script-internal ones included, and the
// layer's background traffic (health checks, sweeps) and any connection
// set-up (HELLO, CLIENT SETINFO) with them: the delta of INFO commandstats
// around the phase, less the meter's own commands.

// meterName is the client name of the meter's own connection.
const meterName = "gonogo-meter"

// meterCallTimeout bounds one INFO or CLIENT LIST.
const meterCallTimeout = 5 * time.Second

// The idle connections are counted once the count has held still over
// idleStable readings idleEvery apart (start-up goroutines, subscribers and
// pool warm-up dial after the constructor returns), or at idleMax.
const (
	idleEvery  = 100 * time.Millisecond
	idleStable = 4
	idleMax    = 5 * time.Second
)

// meterCommandsPerStep is what the meter sends per step on a metered
// target (an INFO at each boundary, CLIENT LISTs until the idle count
// settles and one under load), for the budget estimate.
const meterCommandsPerStep = 3 + float64(idleMax/idleEvery)

// errNoCommandstats says the target answered INFO without command
// statistics (a managed Redis may hide them).
var errNoCommandstats = errors.New("the target's INFO has no commandstats section")

// serverMeter reads the server's command statistics and client list with
// its own single connection, whose own commands it subtracts: nothing it
// sends is counted against an op. On a Redis Cluster it has one connection
// to each primary and sums them (a replica executes its primary's writes
// again: counting it would count them twice).
type serverMeter struct {
	nodes []*redis.Client
	hook  *counter.Hook
}

// newServerMeter opens the meter on tg. guard, when not nil, budgets its
// commands like every other. A target without INFO commandstats returns
// errNoCommandstats (or INFO's error): the run goes on without
// server-side accounting.
func newServerMeter(ctx context.Context, tg target.Target, guard *Guard) (*serverMeter, error) {
	h := counter.New()
	hooks := []redis.Hook{h}
	if guard != nil {
		hooks = []redis.Hook{guard, h}
	}
	urls := []string{tg.URL()}
	if c, ok := tg.(*target.Cluster); ok {
		var err error
		if urls, err = c.PrimaryURLs(ctx); err != nil {
			return nil, err
		}
	}
	m := &serverMeter{hook: h}
	for _, u := range urls {
		rdb, err := impl.NewClient(impl.Config{URL: u, TLS: tg.TLS(), Hooks: hooks, PoolSize: 1, ClientName: meterName},
			func(o *redis.Options) { o.MaxRetries, o.ConnMaxIdleTime = -1, -1 })
		if err != nil {
			m.Close()
			return nil, err
		}
		m.nodes = append(m.nodes, rdb)
	}
	if _, err := m.read(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Close closes the meter's connections.
func (m *serverMeter) Close() error {
	var errs []error
	for _, rdb := range m.nodes {
		errs = append(errs, rdb.Close())
	}
	return errors.Join(errs...)
}

// commandCounts is executed calls per command: the top-level command name
// in lower case (CLIENT SETINFO and CLIENT LIST are both "client", as the
// counting hook names them).
type commandCounts map[string]int64

// read returns the server's calls per command so far, less every command
// the meter sent before this INFO (the INFO itself is not in its own
// reply). The meter's connection set-up is not subtracted: it happens once,
// before the first reading, unless the connection is lost.
func (m *serverMeter) read(ctx context.Context) (commandCounts, error) {
	ctx, cancel := context.WithTimeout(counter.WithOp(ctx, "meter"), meterCallTimeout)
	defer cancel()
	calls := commandCounts{}
	for _, rdb := range m.nodes {
		text, err := rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			return nil, fmt.Errorf("info commandstats: %w", err)
		}
		node, err := parseCommandstats(text)
		if err != nil {
			return nil, err
		}
		for name, n := range node {
			calls[name] += n
		}
	}
	for op, c := range m.hook.Snapshot() {
		if op == counter.ConnInit {
			continue
		}
		for name, n := range c.ByCommand {
			calls[name] -= n
		}
	}
	calls["info"] += int64(len(m.nodes)) // these INFOs: counted by the hook, not yet by the servers
	return calls, nil
}

// parseCommandstats reads INFO commandstats: lines such as
// "cmdstat_client|setinfo:calls=2,usec=3,..." summed by top-level command.
func parseCommandstats(text string) (commandCounts, error) {
	if !strings.Contains(strings.ToLower(text), "# commandstats") {
		return nil, errNoCommandstats
	}
	out := commandCounts{}
	for _, line := range strings.Split(text, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		name, _, _ = strings.Cut(strings.ToLower(strings.TrimPrefix(name, "cmdstat_")), "|")
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("info commandstats: %s: bad calls %q", name, v)
				}
				out[name] += n
			}
		}
	}
	return out, nil
}

// since is c less before, commands with no calls left out.
func (c commandCounts) since(before commandCounts) commandCounts {
	out := commandCounts{}
	for name, n := range c {
		if d := n - before[name]; d != 0 {
			out[name] = d
		}
	}
	return out
}

// total is the sum over commands.
func (c commandCounts) total() int64 {
	var t int64
	for _, n := range c {
		t += n
	}
	return t
}

// connections counts the server's clients named name (CLIENT LIST).
func (m *serverMeter) connections(ctx context.Context, name string) (int, error) {
	ctx, cancel := context.WithTimeout(counter.WithOp(ctx, "meter"), meterCallTimeout)
	defer cancel()
	n := 0
	for _, rdb := range m.nodes {
		text, err := rdb.ClientList(ctx).Result()
		if err != nil {
			return 0, fmt.Errorf("client list: %w", err)
		}
		n += countNamed(text, name)
	}
	return n, nil
}

// countNamed counts CLIENT LIST lines whose name field is name.
func countNamed(list, name string) int {
	n := 0
	for _, line := range strings.Split(list, "\n") {
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "name="); ok && v == name {
				n++
			}
		}
	}
	return n
}

// stepMeter is the server's side of one step: the client name its
// connections carry, the commandstats at the measured phase's start and
// end, and the connections idle and under load. Errors leave the fields
// they concern unset.
type stepMeter struct {
	m         *serverMeter
	name      string
	instances int
	idle      *int
	load      *int
	begin     commandCounts
	delta     commandCounts
}

// newStepMeter is nil (measure nothing) without a meter.
func (s *session) newStepMeter(id string) *stepMeter {
	if s.meter == nil {
		return nil
	}
	return &stepMeter{m: s.meter, name: "gonogo-" + id}
}

// clientName is the name the step's connections carry ("" without a meter).
func (sm *stepMeter) clientName() string {
	if sm == nil {
		return ""
	}
	return sm.name
}

// started counts the connections of the step's freshly built clients
// (instances layer instances, or one raw client) once the count settles.
func (sm *stepMeter) started(ctx context.Context, instances int) {
	if sm == nil {
		return
	}
	sm.instances = instances
	last, same := -1, 0
	for deadline := time.Now().Add(idleMax); same < idleStable && time.Now().Before(deadline); {
		select {
		case <-time.After(idleEvery):
		case <-ctx.Done():
			return
		}
		n, err := sm.m.connections(ctx, sm.name)
		if err != nil {
			return
		}
		if n == last {
			same++
		} else {
			last, same = n, 1
		}
	}
	sm.idle = &last
}

// mark is the Op's Mark: commandstats at the measured phase's start, and
// at its end the delta and the connections open under load.
func (sm *stepMeter) mark(ctx context.Context, end bool) {
	c, err := sm.m.read(ctx)
	if !end {
		sm.begin = c
		return
	}
	if err == nil && sm.begin != nil {
		sm.delta = c.since(sm.begin)
	}
	if n, err := sm.m.connections(ctx, sm.name); err == nil {
		sm.load = &n
	}
}

// annotate adds the server's side to the step's own row.
func (sm *stepMeter) annotate(r *Result) {
	if sm == nil {
		return
	}
	if sm.delta != nil && r.Ops > 0 {
		n := float64(r.Ops)
		per := float64(sm.delta.total()) / n
		r.ServerCommandsPerOp = &per
		r.ServerByCommand = map[string]float64{}
		for name, c := range sm.delta {
			r.ServerByCommand[name] = float64(c) / n
		}
	}
	if sm.idle != nil || sm.load != nil {
		r.Connections = &reports.Connections{Instances: sm.instances, Idle: sm.idle, Load: sm.load}
	}
}
