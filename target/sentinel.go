package target

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/redact"
)

// KindSentinel is a primary with replicas and three sentinels, all
// redis-server processes the harness spawns and owns.
const KindSentinel Kind = "sentinel"

// MasterName is the name the sentinels monitor the primary under (the
// failover URL's master_name).
const MasterName = "gonogo"

// SentinelOptions configure a sentinel target. Zero values mean defaults.
type SentinelOptions struct {
	// Binary is the redis-server to run (servers and sentinels alike:
	// redis-sentinel is redis-server --sentinel). Default "redis-server".
	Binary string
	// Replicas is how many replicas follow the primary, 1 or 2. Default 1.
	Replicas int
	// Sentinels is how many sentinels watch it, 1 to 5 (the quorum is a
	// majority). Default 3.
	Sentinels int
	// AOF turns on appendonly everysec on the data nodes.
	AOF bool
	// Password is requirepass of every node, sentinels included, and the
	// masterauth and auth-pass they use. Default: none.
	Password string
	// TLS makes every node, sentinels included, listen TLS-only with
	// certificates of one CA generated at start, replicate over TLS and
	// the sentinels reach the data nodes and each other over TLS. TLS()
	// then returns a client configuration trusting that CA, and URL uses
	// rediss://. Default: plain TCP.
	TLS bool
	// DownAfter is the sentinels' down-after-milliseconds: how long the
	// primary must not answer before it is judged down. Default 1s.
	DownAfter time.Duration
	// FailoverTimeout is the sentinels' failover-timeout. A sentinel
	// that tried a failover (or lost an election for one) waits twice
	// this before it tries again. Default 2s.
	FailoverTimeout time.Duration
	// StartTimeout bounds start-up: every node answering, the replicas in
	// sync, the sentinels aware of each other and of the replicas.
	// Default 20s.
	StartTimeout time.Duration
}

// Sentinel is a replicated Redis watched by sentinels: clients find the
// primary through the sentinels (go-redis's failover client, by URL), and
// a failover moves it. Owned: Close ends every process and removes their
// directories.
type Sentinel struct {
	opts      SentinelOptions
	data      []*Process // data nodes; data[0] the first primary
	sentinels []*Process

	killed killedNodes // data nodes KillPrimary killed, to restart

	// switching serializes the operations that change the nodes' roles
	// or reach (a failover, a kill, a pause and its thaw, a partition and
	// its heal, the replicas' lag and catch-up, a restart of killed
	// nodes): a pause drawn while a failover still ran froze the old
	// primary, and the failover's REPLICAOF to it timed out (explore seed
	// 18181, run 68, not judged; TestPauseDuringFailover).
	switching sync.Mutex

	mu sync.Mutex
	// lagging are the replicas LagReplicas cut off, to reconnect.
	lagging []*Process
	// partitioned is the primary PartitionPrimary cut off, to heal.
	partitioned *Process
}

var _ Target = (*Sentinel)(nil)

// withDefaults applies the defaults and checks the ranges.
func (o SentinelOptions) withDefaults() (SentinelOptions, error) {
	if o.Binary == "" {
		o.Binary = "redis-server"
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Sentinels == 0 {
		o.Sentinels = 3
	}
	if o.DownAfter == 0 {
		o.DownAfter = time.Second
	}
	if o.FailoverTimeout == 0 {
		o.FailoverTimeout = 2 * time.Second
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 20 * time.Second
	}
	switch {
	case o.Replicas < 1 || o.Replicas > 2:
		return o, exitcode.Configf("sentinel target: replicas %d: want 1 or 2", o.Replicas)
	case o.Sentinels < 1 || o.Sentinels > 5:
		return o, exitcode.Configf("sentinel target: sentinels %d: want 1 to 5", o.Sentinels)
	case o.DownAfter < 100*time.Millisecond || o.DownAfter > time.Minute:
		return o, exitcode.Configf("sentinel target: down-after %s: want 100ms to 1m", o.DownAfter)
	case o.FailoverTimeout < time.Second || o.FailoverTimeout > 10*time.Minute:
		return o, exitcode.Configf("sentinel target: failover timeout %s: want 1s to 10m", o.FailoverTimeout)
	}
	return o, nil
}

// StartSentinel spawns the primary, its replicas and the sentinels, and
// waits until the replicas are in sync and every sentinel knows every
// replica and every other sentinel (before that a failover would find no
// replica to promote). A missing binary is a harness failure (exit 4).
func StartSentinel(ctx context.Context, opts SentinelOptions) (*Sentinel, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Sentinel{opts: opts}
	if err := s.start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Sentinel) start(ctx context.Context) error {
	o := s.opts
	node := ProcessOptions{Binary: o.Binary, AOF: o.AOF, Password: o.Password, TLS: o.TLS, Directives: sentinelData(o.Password, o.TLS)}
	primary, err := StartProcess(ctx, node)
	if err != nil {
		return err
	}
	s.data = append(s.data, primary)
	if o.TLS {
		// Every node serves with the primary's material (one CA); the
		// files stay until Close removes every node's directory.
		if node.Certs, err = primary.Certs(); err != nil {
			return err
		}
	}
	host, port, _ := net.SplitHostPort(primary.Addr())
	for range o.Replicas {
		r := node
		r.Directives = replicaOf(host, port, o.Password, o.TLS)
		p, err := StartProcess(ctx, r)
		if err != nil {
			return err
		}
		s.data = append(s.data, p)
	}
	quorum := strconv.Itoa(o.Sentinels/2 + 1)
	for range o.Sentinels {
		d := [][]string{
			{"sentinel", "monitor", MasterName, host, port, quorum},
			{"sentinel", "down-after-milliseconds", MasterName, strconv.FormatInt(o.DownAfter.Milliseconds(), 10)},
			{"sentinel", "failover-timeout", MasterName, strconv.FormatInt(o.FailoverTimeout.Milliseconds(), 10)},
			{"sentinel", "parallel-syncs", MasterName, "1"},
		}
		// The sentinels log in to the data nodes as a user of their
		// own, which PartitionPrimary turns off on the primary.
		d = append(d, []string{"sentinel", "auth-user", MasterName, sentinelUser},
			[]string{"sentinel", "auth-pass", MasterName, sentinelPass(o.Password)})
		if o.TLS {
			d = append(d, tlsReplication)
		}
		p, err := StartProcess(ctx, ProcessOptions{Binary: o.Binary, Password: o.Password, Sentinel: true, TLS: o.TLS, Certs: node.Certs, Directives: d})
		if err != nil {
			return fmt.Errorf("sentinel: %w", err)
		}
		s.sentinels = append(s.sentinels, p)
	}
	return s.waitSettled(ctx, primary.Addr())
}

// dataDirectives are every data node's: a full sync starts at once
// (Redis waits 5 s by default for more replicas to share a diskless
// transfer), the password to authenticate to a primary with, since every
// node may become a replica after a failover, and with TLS replication
// over TLS.
func dataDirectives(password string, tls bool) [][]string {
	d := [][]string{{"repl-diskless-sync-delay", "0"}}
	if password != "" {
		d = append(d, []string{"masterauth", password})
	}
	if tls {
		d = append(d, tlsReplication)
	}
	return d
}

// tlsReplication makes a node's outgoing connections TLS: a replica's to
// its primary, a sentinel's to the data nodes and the other sentinels.
var tlsReplication = []string{"tls-replication", "yes"}

// sentinelUser is the ACL user the sentinels log in to the data nodes as
// (with sentinelPass): PartitionPrimary cuts them off the primary by
// turning it off there.
const sentinelUser = "gonogo-sentinel"

// sentinelPass is sentinelUser's password: the data nodes' when they have
// one (a node's configuration file holds it either way), else a fixed one.
func sentinelPass(password string) string {
	if password != "" {
		return password
	}
	return "gonogo-sentinel-pass"
}

// sentinelData are the directives of a sentinel target's data node:
// dataDirectives and sentinelUser, allowed everything.
func sentinelData(password string, tls bool) [][]string {
	return append(dataDirectives(password, tls), []string{"user", sentinelUser, "on", ">" + sentinelPass(password), "~*", "&*", "+@all"})
}

// replicaOf are the directives that make a data node a replica of
// host:port.
func replicaOf(host, port, password string, tls bool) [][]string {
	return append(sentinelData(password, tls), []string{"replicaof", host, port})
}

// waitSettled waits until primary has every replica online and every
// sentinel names it and knows the replicas and the other sentinels.
func (s *Sentinel) waitSettled(ctx context.Context, primary string) error {
	deadline := time.Now().Add(s.opts.StartTimeout)
	var why error
	for time.Now().Before(deadline) {
		if why = s.settled(ctx, primary); why == nil {
			return nil
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	return exitcode.Harnessf("sentinel target not ready within %s: %w", s.opts.StartTimeout, why)
}

func (s *Sentinel) settled(ctx context.Context, primary string) error {
	for _, sn := range s.sentinels {
		addr, err := s.askPrimary(ctx, sn)
		if err != nil {
			return err
		}
		if addr != primary {
			return fmt.Errorf("sentinel %s names %s as primary, not %s", sn.Addr(), addr, primary)
		}
		for _, q := range []struct {
			cmd  string
			want int
		}{{"replicas", s.opts.Replicas}, {"sentinels", s.opts.Sentinels - 1}} {
			v, err := sn.adminDo(ctx, "SENTINEL", q.cmd, MasterName)
			if err != nil {
				return err
			}
			if l, _ := v.([]any); len(l) < q.want {
				return fmt.Errorf("sentinel %s knows %d %s of %d", sn.Addr(), len(l), q.cmd, q.want)
			}
		}
	}
	return s.inSync(ctx, primary)
}

// inSync checks that the node at primary is a primary with every live
// replica online.
func (s *Sentinel) inSync(ctx context.Context, primary string) error {
	p := s.node(primary)
	if p == nil {
		return fmt.Errorf("no data node at %s", primary)
	}
	v, err := p.adminDo(ctx, "INFO", "replication")
	if err != nil {
		return err
	}
	text, _ := v.(string)
	f := parseInfo(text)
	want := strconv.Itoa(len(s.data) - 1 - len(s.away()))
	if f["role"] != "master" || f["connected_slaves"] != want {
		return fmt.Errorf("primary %s: role %s with %s replicas, want master with %s", primary, f["role"], f["connected_slaves"], want)
	}
	for i := range len(s.data) - 1 {
		if r := f["slave"+strconv.Itoa(i)]; r != "" && !slices.Contains(strings.Split(r, ","), "state=online") {
			return fmt.Errorf("replica %d of %s not online: %s", i, primary, r)
		}
	}
	return nil
}

// parseInfo splits INFO text into its key:value fields.
func parseInfo(text string) map[string]string {
	f := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			f[k] = v
		}
	}
	return f
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// askPrimary asks one sentinel for the primary's address.
func (s *Sentinel) askPrimary(ctx context.Context, sn *Process) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	v, err := sn.adminDo(ctx, "SENTINEL", "get-master-addr-by-name", MasterName)
	if err != nil {
		return "", fmt.Errorf("sentinel %s: %w", sn.Addr(), err)
	}
	hp, _ := v.([]any)
	if len(hp) != 2 {
		return "", fmt.Errorf("sentinel %s: no primary known", sn.Addr())
	}
	h, _ := hp[0].(string)
	p, _ := hp[1].(string)
	return net.JoinHostPort(h, p), nil
}

// PrimaryAddr is the primary's address as the sentinels' majority names
// it (the first sentinel that answers, failing a majority).
func (s *Sentinel) PrimaryAddr(ctx context.Context) (string, error) {
	votes := map[string]int{}
	var first string
	var lastErr error
	for _, sn := range s.sentinels {
		a, err := s.askPrimary(ctx, sn)
		if err != nil {
			lastErr = err
			continue
		}
		if first == "" {
			first = a
		}
		votes[a]++
		if votes[a] > len(s.sentinels)/2 {
			return a, nil
		}
	}
	if first == "" {
		return "", lastErr
	}
	return first, nil
}

// node is the data node listening at addr, or nil.
func (s *Sentinel) node(addr string) *Process {
	for _, p := range s.data {
		if p.Addr() == addr {
			return p
		}
	}
	return nil
}

// Primary is the data node the sentinels name as primary, once none of
// them names a node KillPrimary killed (see afterKills).
func (s *Sentinel) Primary(ctx context.Context) (*Process, error) {
	if err := s.afterKills(ctx); err != nil {
		return nil, err
	}
	a, err := s.PrimaryAddr(ctx)
	if err != nil {
		return nil, err
	}
	p := s.node(a)
	if p == nil {
		return nil, fmt.Errorf("the sentinels name %s, which is no node of this target", a)
	}
	return p, nil
}

// afterKills waits until no sentinel names a node KillPrimary killed as
// the primary: a fault that acts on the primary while the switch after a
// kill is under way (the kill's Inject cut short, or the next step due
// before the switch) would act on the dead node (explore seeds 17171 and
// 18181: a pause and a partition drawn 0.7 s after a kill found
// redis-server not running, the runs not judged), and the killed node's
// restart would make it a replica of itself (lost-ba198e20).
func (s *Sentinel) afterKills(ctx context.Context) error {
	for _, p := range s.killed.list() {
		if _, err := s.waitNamed(ctx, p.Addr(), time.Now()); err != nil {
			return fmt.Errorf("waiting for the switch from the killed %s: %w", p.Addr(), err)
		}
	}
	return nil
}

// Failover asks a sentinel for a failover (SENTINEL FAILOVER: the primary
// is demoted without losing writes it already replicated, a replica
// promoted) and waits until every sentinel names another primary and that
// node is one. It returns how long the switch took.
func (s *Sentinel) Failover(ctx context.Context) (time.Duration, error) {
	s.switching.Lock()
	defer s.switching.Unlock()
	if err := s.afterKills(ctx); err != nil {
		return 0, err
	}
	old, err := s.PrimaryAddr(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	var lastErr error
	// A sentinel refuses while the replicas' state is not yet known to it
	// (NOGOODSLAVE) or a failover runs (INPROG): retry briefly.
	for attempt := 0; attempt < 50; attempt++ {
		if _, lastErr = s.sentinels[attempt%len(s.sentinels)].adminDo(ctx, "SENTINEL", "FAILOVER", MasterName); lastErr == nil {
			break
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
	if lastErr != nil {
		return 0, fmt.Errorf("SENTINEL FAILOVER: %w", lastErr)
	}
	return s.waitSwitched(ctx, old, start)
}

// KillPrimary kills the primary with SIGKILL (the sentinels then promote a
// replica once it has been down for DownAfter) and waits until every
// sentinel names the new primary. It returns how long that took from the
// kill. RestartKilled brings the node back, as a replica.
func (s *Sentinel) KillPrimary(ctx context.Context) (time.Duration, error) {
	s.switching.Lock()
	defer s.switching.Unlock()
	p, err := s.Primary(ctx)
	if err != nil {
		return 0, err
	}
	old := p.Addr()
	start := time.Now()
	if err := s.killed.kill(ctx, p); err != nil {
		return 0, err
	}
	return s.waitSwitched(ctx, old, start)
}

// waitSwitched waits until every sentinel names a primary other than old
// and that node says it is one, and returns how long that took from start;
// then it waits until the other live nodes replicate from it. The bound is
// the down-after time, plus twice the failover timeout (a split vote among
// the sentinels delays the next attempt by that much), plus 5 s; then
// StartTimeout.
func (s *Sentinel) waitSwitched(ctx context.Context, old string, start time.Time) (time.Duration, error) {
	took, err := s.waitNamed(ctx, old, start)
	if err != nil {
		return 0, err
	}
	return took, s.rejoin(ctx)
}

// waitNamed waits until every sentinel names a primary other than old and
// that node says it is one (the bound of waitSwitched), and returns how
// long that took from start.
func (s *Sentinel) waitNamed(ctx context.Context, old string, start time.Time) (time.Duration, error) {
	deadline := start.Add(s.opts.DownAfter + 2*s.opts.FailoverTimeout + 5*time.Second)
	var why error
	for time.Now().Before(deadline) {
		if why = s.switched(ctx, old); why == nil {
			return time.Since(start), nil
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
	return 0, fmt.Errorf("no new primary within %s: %w", time.Since(start).Round(time.Millisecond), why)
}

func (s *Sentinel) switched(ctx context.Context, old string) error {
	var now string
	for _, sn := range s.sentinels {
		a, err := s.askPrimary(ctx, sn)
		if err != nil {
			return err
		}
		if a == old {
			return fmt.Errorf("sentinel %s still names %s", sn.Addr(), old)
		}
		if now != "" && a != now {
			return fmt.Errorf("sentinels disagree: %s and %s", now, a)
		}
		now = a
	}
	p := s.node(now)
	if p == nil {
		return fmt.Errorf("new primary %s is no node of this target", now)
	}
	v, err := p.adminDo(ctx, "ROLE")
	if err != nil {
		return err
	}
	if r, _ := v.([]any); len(r) == 0 || r[0] != "master" {
		return fmt.Errorf("new primary %s does not say it is one yet", now)
	}
	return nil
}

// PausePrimary freezes the primary with SIGSTOP and returns at once, with
// the function that thaws it: its connections stay open and unanswered,
// the sentinels judge it down after DownAfter and promote a replica.
// Thawed, it believes it is still the primary, and takes writes from the
// clients still connected to it until it is demoted (the split-brain
// window of a partitioned primary; resume demotes it at once, as a
// sentinel would at its next poll).
func (s *Sentinel) PausePrimary(ctx context.Context) (resume func(context.Context) error, err error) {
	s.switching.Lock()
	defer s.switching.Unlock()
	p, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.Pause(ctx); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		s.switching.Lock()
		defer s.switching.Unlock()
		if err := p.Resume(ctx); err != nil {
			return err
		}
		return s.rejoin(ctx)
	}, nil
}

// PartitionPrimary cuts the primary off from the sentinels and the
// replicas while its clients still reach it: the replicas are pointed
// away from it (as LagReplicas does), and on the primary the sentinels'
// user is turned off and their connections dropped, so that they can no
// longer log in to it (without a password, the default user they would
// fall back on gets one for the while: the clients' open connections stay
// logged in, new ones are refused). The sentinels judge it down after
// DownAfter and promote a replica; until the clients learn of the switch
// they keep writing to the old primary, which believes it still is one
// (the split-brain window): what it takes then has no replica, and goes
// when the partition heals and it is demoted. It returns once the
// sentinels name the new primary, with how long that took from the cut.
// HealPartition ends it. One partition at a time.
func (s *Sentinel) PartitionPrimary(ctx context.Context) (time.Duration, error) {
	s.switching.Lock()
	defer s.switching.Unlock()
	p, err := s.Primary(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	s.mu.Lock()
	busy := s.partitioned != nil
	if !busy {
		s.partitioned = p
	}
	s.mu.Unlock()
	if busy {
		return 0, errors.New("a partition is in effect already: heal it first")
	}
	if err := s.lagReplicas(ctx); err != nil {
		return 0, err
	}
	cut := [][]string{{"ACL", "SETUSER", sentinelUser, "off"}, {"CLIENT", "KILL", "USER", sentinelUser}}
	if s.opts.Password == "" {
		cut = append(cut[:1], []string{"ACL", "SETUSER", "default", "resetpass", ">" + partitionPass}, cut[1])
	}
	// One connection: once the default user has a password, a new one
	// could not log in.
	c, err := p.admin(ctx)
	if err != nil {
		return 0, err
	}
	err = runAll(c, p.Addr(), cut)
	c.Close()
	if err != nil {
		return 0, err
	}
	return s.waitNamed(ctx, p.Addr(), start)
}

// runAll runs cmds on c, one after the other, up to the first error.
func runAll(c *respConn, addr string, cmds [][]string) error {
	for _, cmd := range cmds {
		if _, err := c.do(cmd...); err != nil {
			return fmt.Errorf("%s %s on %s: %w", cmd[0], cmd[1], addr, err)
		}
	}
	return nil
}

// HealPartition lets the sentinels log in to the node PartitionPrimary
// cut off again and makes every node other than the new primary its
// replica (rejoin: what the sentinels do with a demoted primary they can
// reach again), dropping the clients still on the old primary.
func (s *Sentinel) HealPartition(ctx context.Context) error {
	s.switching.Lock()
	defer s.switching.Unlock()
	s.mu.Lock()
	p := s.partitioned
	s.lagging = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	heal := [][]string{{"ACL", "SETUSER", sentinelUser, "on"}}
	pass := s.opts.Password
	if pass == "" {
		heal, pass = append(heal, []string{"ACL", "SETUSER", "default", "nopass"}), partitionPass
	}
	c, err := dialRESP(ctx, p.Addr(), nil, "", pass)
	if err != nil {
		return fmt.Errorf("healing the partition of %s: %w", p.Addr(), err)
	}
	err = runAll(c, p.Addr(), heal)
	c.Close()
	if err != nil {
		return err
	}
	// Only now is the node back among the others: a rejoin that ran
	// meanwhile (another fault's) would have met its partition password
	// (explore seed 19191: a failover's REPLICAOF got NOAUTH, the run not
	// judged).
	s.mu.Lock()
	s.partitioned = nil
	s.mu.Unlock()
	return s.rejoin(ctx)
}

// partitionPass is the default user's password on a partitioned primary
// of a target without one.
const partitionPass = "gonogo-partitioned"

// LagReplicas cuts every replica off from the primary (REPLICAOF to a
// port nothing listens on): the primary keeps acknowledging writes that no
// replica has, the lag asynchronous replication turns into a loss if the
// primary dies first. (Freezing a replica would not do: the kernel keeps
// receiving the replication stream for it.) CatchUpReplicas reconnects
// them to the current primary.
func (s *Sentinel) LagReplicas(ctx context.Context) error {
	s.switching.Lock()
	defer s.switching.Unlock()
	return s.lagReplicas(ctx)
}

// lagReplicas is LagReplicas for a caller that holds s.switching.
func (s *Sentinel) lagReplicas(ctx context.Context) error {
	if err := s.afterKills(ctx); err != nil {
		return err
	}
	primary, err := s.PrimaryAddr(ctx)
	if err != nil {
		return err
	}
	nowhere, err := FreePort()
	if err != nil {
		return err
	}
	away := s.away()
	for _, p := range s.data {
		if p.Addr() == primary || slices.Contains(away, p) || p.Pid() == 0 {
			continue
		}
		if _, err := p.adminRetry(ctx, "REPLICAOF", "127.0.0.1", strconv.Itoa(nowhere)); err != nil {
			return fmt.Errorf("REPLICAOF on %s: %w", p.Addr(), err)
		}
		s.mu.Lock()
		s.lagging = append(s.lagging, p)
		s.mu.Unlock()
	}
	return nil
}

// CatchUpReplicas makes every live node other than the primary the
// sentinels name its replica again (rejoin).
func (s *Sentinel) CatchUpReplicas(ctx context.Context) error {
	s.switching.Lock()
	defer s.switching.Unlock()
	s.mu.Lock()
	n := len(s.lagging)
	s.lagging = nil
	s.mu.Unlock()
	if n == 0 {
		return nil
	}
	return s.rejoin(ctx)
}

// away lists the data nodes out of reach: the killed ones (Killed) and the
// one a partition cuts off, whom nothing reconfigures until it is healed.
func (s *Sentinel) away() []*Process {
	out := s.Killed()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.partitioned != nil {
		out = append(out, s.partitioned)
	}
	return out
}

// Killed lists the data nodes KillPrimary killed that are not restarted.
func (s *Sentinel) Killed() []*Process { return s.killed.list() }

// RestartKilled starts every node KillPrimary killed again, as a replica
// of the current primary (what a supervisor restarting it with the
// configuration the sentinels rewrote does), and waits until it is in
// sync.
func (s *Sentinel) RestartKilled(ctx context.Context) error {
	if len(s.killed.list()) == 0 {
		return nil
	}
	s.switching.Lock()
	defer s.switching.Unlock()
	// The switch may still be under way (a kill's Inject that the end of
	// the traffic cut short): until every sentinel names another primary,
	// one may still name the killed node, which would come back, empty, as
	// a replica of itself; the sentinels then kept it as the primary, or
	// promoted it, and every write made before the kill was gone (explore
	// seed 15151, lost-ba198e20; TestRestartKilledMidFailover).
	if err := s.afterKills(ctx); err != nil {
		return err
	}
	primary, err := s.PrimaryAddr(ctx)
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(primary)
	if err := s.killed.restart(ctx, func(p *Process) {
		p.mu.Lock()
		p.opts.Directives = replicaOf(host, port, s.opts.Password, s.opts.TLS)
		p.mu.Unlock()
	}); err != nil {
		return err
	}
	return s.waitSync(ctx)
}

// rejoin makes every live data node other than the primary a replica of
// it and drops its clients, as the sentinels do once they next poll a
// demoted primary (up to 10 s later), and waits until they are in sync.
func (s *Sentinel) rejoin(ctx context.Context) error {
	primary, err := s.PrimaryAddr(ctx)
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(primary)
	away := s.away()
	var errs []error
	for _, p := range s.data {
		if p.Addr() == primary || slices.Contains(away, p) {
			continue
		}
		// What a sentinel sends a node it reconfigures: its clients
		// are dropped so that they ask the sentinels again. A node
		// that does not answer (frozen by another fault) is left to
		// the sentinels.
		for _, cmd := range [][]string{{"REPLICAOF", host, port}, {"CLIENT", "KILL", "TYPE", "normal"}, {"CLIENT", "KILL", "TYPE", "pubsub"}} {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := p.adminRetry(cctx, cmd...)
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s on %s: %w", cmd[0], p.Addr(), err))
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return s.waitSync(ctx)
}

// waitSync waits, at most StartTimeout, until the primary the sentinels
// name has every live data node as an online replica.
func (s *Sentinel) waitSync(ctx context.Context) error {
	deadline := time.Now().Add(s.opts.StartTimeout)
	var why error
	for time.Now().Before(deadline) {
		primary, err := s.PrimaryAddr(ctx)
		if why = err; err == nil {
			if why = s.inSync(ctx, primary); why == nil {
				return nil
			}
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("replicas not in sync within %s: %w", s.opts.StartTimeout, why)
}

// Nodes are the data nodes, the first primary first.
func (s *Sentinel) Nodes() []*Process { return append([]*Process(nil), s.data...) }

// Sentinels are the sentinel processes.
func (s *Sentinel) Sentinels() []*Process { return append([]*Process(nil), s.sentinels...) }

// Kind is KindSentinel.
func (s *Sentinel) Kind() Kind { return KindSentinel }

// Addr is the first sentinel's address: a proxy put in front of it carries
// the clients' discovery, not their data.
func (s *Sentinel) Addr() string { return s.sentinels[0].Addr() }

// URL is the failover URL go-redis's ParseFailoverURL reads (and
// impl.NewClient, which builds a failover client from it): the first
// sentinel as host, the others as addr=, master_name, and the password
// both as the sentinels' (user info) and the data nodes' (password=).
func (s *Sentinel) URL() string {
	u := url.URL{Scheme: "redis", Host: s.Addr(), Path: "/0"}
	if s.opts.TLS {
		u.Scheme = "rediss"
	}
	q := url.Values{}
	q.Set("master_name", MasterName)
	for _, sn := range s.sentinels[1:] {
		q.Add("addr", sn.Addr())
	}
	if s.opts.Password != "" {
		u.User = url.UserPassword("", s.opts.Password)
		q.Set("password", s.opts.Password)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Redacted masks the password.
func (s *Sentinel) Redacted() string { return redact.URL(s.URL()) }

// TLS is nil for a plain target; with TLS, a client configuration
// trusting the nodes' CA and verifying certs.ServerName.
func (s *Sentinel) TLS() *tls.Config {
	if !s.opts.TLS {
		return nil
	}
	return s.data[0].TLS()
}

// Owned is true.
func (s *Sentinel) Owned() bool { return true }

// KeyPrefix is "": the servers are private to the run.
func (s *Sentinel) KeyPrefix() string { return "" }

// Close ends every process (sentinels first, so none starts a failover
// while the data nodes go) and removes their directories. Safe twice.
func (s *Sentinel) Close() error {
	var errs []error
	for _, p := range s.sentinels {
		errs = append(errs, p.Close())
	}
	for _, p := range s.data {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
