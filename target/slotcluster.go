package target

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
)

// SlotCluster is a Redis Cluster of redis-server processes the harness
// spawned on loopback, each a primary owning an equal share of the 16384
// hash slots (no replicas). Close stops them all.
type SlotCluster struct {
	Nodes []*Process
}

// Limits of StartSlotCluster.
const (
	MinClusterNodes = 1
	MaxClusterNodes = 16
	clusterSlots    = 16384
)

// StartSlotCluster starts n cluster-enabled redis-servers, gives node i the
// i-th of n equal slot ranges, joins them (CLUSTER MEET) and waits until
// every node reports cluster_state:ok and knows the others, within
// timeout.
func StartSlotCluster(ctx context.Context, n int, timeout time.Duration) (*SlotCluster, error) {
	if n < MinClusterNodes || n > MaxClusterNodes {
		return nil, exitcode.Configf("cluster of %d nodes: want %d to %d", n, MinClusterNodes, MaxClusterNodes)
	}
	c := &SlotCluster{}
	fail := func(err error) (*SlotCluster, error) {
		c.Close()
		return nil, exitcode.Harnessf("starting a %d-node cluster: %w", n, err)
	}
	for i := 0; i < n; i++ {
		p, err := StartProcess(ctx, ProcessOptions{Cluster: true})
		if err != nil {
			return fail(err)
		}
		c.Nodes = append(c.Nodes, p)
	}
	for i, p := range c.Nodes {
		lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n-1
		if _, err := p.adminDo(ctx, "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			return fail(err)
		}
		if i > 0 {
			if _, err := p.adminDo(ctx, "CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(c.Nodes[0].port), strconv.Itoa(c.Nodes[0].busPort)); err != nil {
				return fail(err)
			}
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		err := c.ready(ctx)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return fail(err)
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ready is nil once every node is in state ok and knows every node.
func (c *SlotCluster) ready(ctx context.Context) error {
	for _, p := range c.Nodes {
		v, err := p.adminDo(ctx, "CLUSTER", "INFO")
		if err != nil {
			return err
		}
		s, _ := v.(string)
		if !strings.Contains(s, "cluster_state:ok") || !strings.Contains(s, "cluster_known_nodes:"+strconv.Itoa(len(c.Nodes))+"\r") {
			return errors.New("the cluster has not converged: " + strings.Join(strings.Fields(s)[:min(3, len(strings.Fields(s)))], " "))
		}
	}
	return nil
}

// Slot returns the hash slot of key (CLUSTER KEYSLOT on the first node).
func (c *SlotCluster) Slot(ctx context.Context, key string) (int, error) {
	v, err := c.Nodes[0].adminDo(ctx, "CLUSTER", "KEYSLOT", key)
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("cluster keyslot: unexpected reply %v", v)
	}
	return int(n), nil
}

// NodeOf is the node that owns slot.
func (c *SlotCluster) NodeOf(slot int) *Process {
	return c.Nodes[slot*len(c.Nodes)/clusterSlots]
}

// Close stops every node.
func (c *SlotCluster) Close() error {
	var errs []error
	for _, p := range c.Nodes {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
