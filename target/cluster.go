package target

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/redact"
)

// KindCluster is a Redis Cluster of redis-server processes the harness
// spawns and owns: three primaries with one replica each.
const KindCluster Kind = "cluster"

// ClusterOptions configure a cluster target. Zero values mean defaults.
type ClusterOptions struct {
	// Binary is the redis-server to run. Default "redis-server".
	Binary string
	// CLI is the redis-cli that creates the cluster (redis-cli --cluster
	// create). Default "redis-cli".
	CLI string
	// Password is requirepass and masterauth of every node. Default none.
	Password string
	// NodeTimeout is cluster-node-timeout: how long a primary must not
	// answer before its replica takes over. Default 1s.
	NodeTimeout time.Duration
	// StartTimeout bounds start-up (every node up, the cluster created,
	// every slot served, every replica in sync). Default 30s.
	StartTimeout time.Duration
}

// clusterPrimaries is how many primaries a cluster target has; each has
// one replica.
const clusterPrimaries = 3

// Cluster is a Redis Cluster on loopback: clients reach it by a cluster
// URL (go-redis's ParseClusterURL: the first node as host, the others as
// addr=). Close ends every node and removes their directories.
type Cluster struct {
	opts  ClusterOptions
	nodes []*Process

	mu sync.Mutex
	// moving are the slots a MigrateSlot split and its Finish has not
	// handed over yet.
	moving map[int]bool
	// killed are the primaries KillPrimary killed, until RestartKilled.
	killed killedNodes
}

var (
	_ Target        = (*Cluster)(nil)
	_ PrimaryKiller = (*Cluster)(nil)
)

func (o ClusterOptions) withDefaults() (ClusterOptions, error) {
	if o.Binary == "" {
		o.Binary = "redis-server"
	}
	if o.CLI == "" {
		o.CLI = "redis-cli"
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = time.Second
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.NodeTimeout < 100*time.Millisecond || o.NodeTimeout > time.Minute {
		return o, exitcode.Configf("cluster target: node timeout %s: want 100ms to 1m", o.NodeTimeout)
	}
	if _, err := exec.LookPath(o.CLI); err != nil {
		return o, exitcode.Harnessf("redis-cli not found (%s): install it (apt-get install -y redis-tools) or pass its path", o.CLI)
	}
	return o, nil
}

// StartCluster spawns six nodes with cluster mode on, creates the cluster
// with redis-cli --cluster create (a replica per primary), and waits until
// every slot is served and every replica is in sync. A missing binary is
// a harness failure (exit 4).
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts}
	if err := c.start(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	o := c.opts
	node := ProcessOptions{Binary: o.Binary, Password: o.Password, Directives: append(dataDirectives(o.Password, false),
		[]string{"cluster-enabled", "yes"}, []string{"cluster-config-file", "nodes.conf"},
		[]string{"cluster-node-timeout", strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10)})}
	args := []string{"--cluster", "create"}
	for range 2 * clusterPrimaries {
		p, err := StartProcess(ctx, node)
		if err != nil {
			return err
		}
		c.nodes = append(c.nodes, p)
		args = append(args, p.Addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	cctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, o.CLI, args...)
	// The password goes by the environment, not the command line (ps).
	cmd.Env = os.Environ()
	if o.Password != "" {
		cmd.Env = append(cmd.Env, "REDISCLI_AUTH="+o.Password)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return exitcode.Harnessf("redis-cli --cluster create: %v: %s", err, redact.Text(lastLines(string(out), 3), o.Password))
	}
	return c.waitReady(ctx)
}

// lastLines is the last n non-empty lines of s, joined by " | ".
func lastLines(s string, n int) string {
	var ls []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			ls = append(ls, l)
		}
	}
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, " | ")
}

// waitReady waits until every node says the cluster is ok and every
// primary has an online replica.
func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(c.opts.StartTimeout)
	var why error
	for time.Now().Before(deadline) {
		if why = c.ready(ctx); why == nil {
			return nil
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	return exitcode.Harnessf("cluster target not ready within %s: %w", c.opts.StartTimeout, why)
}

func (c *Cluster) ready(ctx context.Context) error {
	if err := c.clusterOK(ctx); err != nil {
		return err
	}
	primaries := 0
	for _, p := range c.nodes {
		if p.Pid() == 0 {
			continue
		}
		v, err := p.adminDo(ctx, "INFO", "replication")
		if err != nil {
			return err
		}
		text, _ := v.(string)
		f := parseInfo(text)
		if f["role"] != "master" {
			continue
		}
		primaries++
		if f["connected_slaves"] != "1" || !strings.Contains(f["slave0"], "state=online") {
			return fmt.Errorf("primary %s: replica not online (%s)", p.Addr(), f["slave0"])
		}
	}
	if primaries != clusterPrimaries {
		return fmt.Errorf("%d primaries; want %d", primaries, clusterPrimaries)
	}
	return nil
}

// role is the node's ROLE: "master" or "slave".
func role(ctx context.Context, p *Process) (string, error) {
	v, err := p.adminDo(ctx, "ROLE")
	if err != nil {
		return "", err
	}
	r, _ := v.([]any)
	if len(r) == 0 {
		return "", fmt.Errorf("node %s: empty ROLE", p.Addr())
	}
	s, _ := r[0].(string)
	return s, nil
}

// Failover has a replica take over its primary (CLUSTER FAILOVER, which
// waits for the replica to catch up first) and waits until the cluster is
// ok again; it returns how long the replica took to become a primary.
func (c *Cluster) Failover(ctx context.Context) (time.Duration, error) {
	var replica *Process
	for _, p := range c.nodes {
		if r, err := role(ctx, p); err == nil && r == "slave" {
			replica = p
			break
		}
	}
	if replica == nil {
		return 0, errors.New("no replica to fail over to")
	}
	start := time.Now()
	if _, err := replica.adminDo(ctx, "CLUSTER", "FAILOVER"); err != nil {
		return 0, fmt.Errorf("CLUSTER FAILOVER on %s: %w", replica.Addr(), err)
	}
	deadline := start.Add(5*c.opts.NodeTimeout + 15*time.Second)
	again := start.Add(manualFailoverRetry)
	for time.Now().Before(deadline) {
		if r, err := role(ctx, replica); err == nil && r == "master" {
			took := time.Since(start)
			return took, c.waitReady(ctx)
		}
		if time.Now().After(again) {
			// Redis aborts a manual failover its primary did not
			// answer within 5 s (a loaded machine: TestClusterLifecycle
			// failed so in a clean-clone CI run): ask again.
			replica.adminDo(ctx, "CLUSTER", "FAILOVER")
			again = time.Now().Add(manualFailoverRetry)
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
	return 0, fmt.Errorf("replica %s not a primary within %s", replica.Addr(), time.Since(start).Round(time.Millisecond))
}

// manualFailoverRetry is how long Failover waits before it asks again: past
// Redis's own manual-failover timeout (5 s), after which it gives up.
const manualFailoverRetry = 6 * time.Second

// KillTag is the hash tag whose slot KillPrimary takes the primary of:
// flow-0's, the first flow of every scenario's workload.
const KillTag = "flow:flow-0"

// KillPrimary kills, with SIGKILL, the primary that serves KillTag's slot,
// waits until the cluster has promoted its replica (the other primaries
// vote once it has been unreachable for cluster-node-timeout) and every
// live node says the cluster is ok, and returns how long that took from
// the kill. What the primary acknowledged and had not replicated is lost.
// RestartKilled brings it back; it rejoins as a replica of its successor.
func (c *Cluster) KillPrimary(ctx context.Context) (time.Duration, error) {
	slot, err := c.keySlot(ctx, KillTag)
	if err != nil {
		return 0, err
	}
	p, err := c.liveOwner(ctx, slot)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := c.killed.kill(ctx, p); err != nil {
		return 0, err
	}
	deadline := start.Add(5*c.opts.NodeTimeout + 5*time.Second)
	for time.Now().Before(deadline) {
		if q, err := c.liveOwner(ctx, slot); err == nil && q != p {
			if r, err := role(ctx, q); err == nil && r == "master" && c.clusterOK(ctx) == nil {
				return time.Since(start), nil
			}
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
	return 0, fmt.Errorf("slot %d: no replica of %s promoted within %s", slot, p.Addr(), time.Since(start).Round(time.Millisecond))
}

// liveOwner is who serves slot, as the first live node sees it.
func (c *Cluster) liveOwner(ctx context.Context, slot int) (*Process, error) {
	for _, q := range c.nodes {
		if q.Pid() != 0 {
			return c.owner(ctx, q, slot)
		}
	}
	return nil, errors.New("no live node")
}

// PrimaryURLs are the URLs of the live nodes that are primaries now
// (ROLE), each reached directly, not through the cluster: the server-side
// accounting of a cluster sums its primaries.
func (c *Cluster) PrimaryURLs(ctx context.Context) ([]string, error) {
	var out []string
	for _, p := range c.nodes {
		if p.Pid() == 0 {
			continue
		}
		v, err := p.adminDo(ctx, "ROLE")
		if err != nil {
			return nil, fmt.Errorf("node %s: ROLE: %w", p.Addr(), err)
		}
		if r, _ := v.([]any); len(r) > 0 && r[0] == "master" {
			out = append(out, p.URL())
		}
	}
	if len(out) == 0 {
		return nil, errors.New("cluster: no live primary")
	}
	return out, nil
}

// clusterOK is nil when every live node says cluster_state:ok.
func (c *Cluster) clusterOK(ctx context.Context) error {
	for _, p := range c.nodes {
		if p.Pid() == 0 {
			continue
		}
		v, err := p.adminDo(ctx, "CLUSTER", "INFO")
		if err != nil {
			return err
		}
		text, _ := v.(string)
		if f := parseInfo(text); f["cluster_state"] != "ok" {
			return fmt.Errorf("node %s: cluster_state %s", p.Addr(), f["cluster_state"])
		}
	}
	return nil
}

// RestartKilled starts the nodes KillPrimary killed again, on their port
// and directory (their nodes.conf): each learns it was failed over and
// becomes a replica of its successor. It waits until the cluster is ready
// (every primary with an online replica).
func (c *Cluster) RestartKilled(ctx context.Context) error {
	if len(c.killed.list()) == 0 {
		return nil
	}
	if err := c.killed.restart(ctx, nil); err != nil {
		return err
	}
	return c.waitReady(ctx)
}

// Nodes are the cluster's nodes.
func (c *Cluster) Nodes() []*Process { return append([]*Process(nil), c.nodes...) }

// Kind is KindCluster.
func (c *Cluster) Kind() Kind { return KindCluster }

// Addr is the first node's address.
func (c *Cluster) Addr() string { return c.nodes[0].Addr() }

// URL is the cluster URL go-redis's ParseClusterURL reads: the first node
// as host, the others as addr=, the password as user info.
func (c *Cluster) URL() string {
	u := url.URL{Scheme: "redis", Host: c.Addr()}
	q := url.Values{}
	for _, p := range c.nodes[1:] {
		q.Add("addr", p.Addr())
	}
	if c.opts.Password != "" {
		u.User = url.UserPassword("", c.opts.Password)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Redacted masks the password.
func (c *Cluster) Redacted() string { return redact.URL(c.URL()) }

// TLS is nil: the cluster target speaks plain TCP.
func (c *Cluster) TLS() *tls.Config { return nil }

// Owned is true.
func (c *Cluster) Owned() bool { return true }

// KeyPrefix is "": the servers are private to the run.
func (c *Cluster) KeyPrefix() string { return "" }

// Close ends every node and removes their directories. Safe twice.
func (c *Cluster) Close() error {
	var errs []error
	for _, p := range c.nodes {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// Redirects sums, over every node, the error replies of the kinds a
// cluster client meets while slots move or primaries change (INFO
// errorstats, Redis 7): ASK, MOVED, TRYAGAIN, CLUSTERDOWN. A node that
// does not answer is left out.
func (c *Cluster) Redirects(ctx context.Context) map[string]int64 {
	out := map[string]int64{"ASK": 0, "MOVED": 0, "TRYAGAIN": 0, "CLUSTERDOWN": 0}
	for _, p := range c.nodes {
		v, err := p.adminDo(ctx, "INFO", "errorstats")
		if err != nil {
			continue
		}
		text, _ := v.(string)
		for k, f := range parseInfo(text) {
			kind, ok := strings.CutPrefix(k, "errorstat_")
			if _, want := out[kind]; !ok || !want {
				continue
			}
			n, err := strconv.ParseInt(strings.TrimPrefix(f, "count="), 10, 64)
			if err == nil {
				out[kind] += n
			}
		}
	}
	return out
}
