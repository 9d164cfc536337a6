package target

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SlotMigration is a hash slot on its way from one primary of a Cluster
// to another (what redis-cli --cluster reshard does, one slot): started by
// Cluster.MigrateSlot, the slot is split until Finish hands it over.
type SlotMigration struct {
	c        *Cluster
	slot     int
	src, dst *Process
	srcID    string
	dstID    string
	// Moved is how many keys MigrateSlot moved.
	Moved int
}

// MigrateSlot starts moving the slot of key from the primary that serves
// it to another primary: CLUSTER SETSLOT IMPORTING on the destination,
// MIGRATING on the source, then each key the slot holds with one MIGRATE,
// pace apart. It returns with every key moved and the slot still split:
// the source answers a command for a key it no longer holds with ASK (the
// client asks the destination), a command on keys of which it holds only
// some with TRYAGAIN. Finish makes the destination its owner (then
// clients get MOVED). A slot already on the move is refused: two
// migrations of one slot at once (which redis-cli never starts) would
// leave copies of a key on two primaries.
func (c *Cluster) MigrateSlot(ctx context.Context, key string, pace time.Duration) (*SlotMigration, error) {
	n, err := c.keySlot(ctx, key)
	if err != nil {
		return nil, err
	}
	m := &SlotMigration{c: c, slot: n}
	c.mu.Lock()
	busy := c.moving[m.slot]
	if !busy {
		if c.moving == nil {
			c.moving = map[int]bool{}
		}
		c.moving[m.slot] = true
	}
	c.mu.Unlock()
	if busy {
		return nil, fmt.Errorf("slot %d is already moving", m.slot)
	}
	if err := m.pick(ctx); err != nil {
		m.release()
		return nil, err
	}
	s := strconv.Itoa(m.slot)
	// Right after a failover the destination may not know yet that the
	// source is a primary ("Target node is not a master"): its view
	// converges by gossip within a few hundred milliseconds.
	for try := 0; try < 40; try++ {
		if _, err = m.dst.adminDo(ctx, "CLUSTER", "SETSLOT", s, "IMPORTING", m.srcID); err == nil || !strings.Contains(err.Error(), "not a master") {
			break
		}
		if !sleep(ctx, 50*time.Millisecond) {
			break
		}
	}
	if err != nil {
		m.release()
		return nil, fmt.Errorf("SETSLOT IMPORTING on %s: %w", m.dst.Addr(), err)
	}
	if _, err := m.src.adminDo(ctx, "CLUSTER", "SETSLOT", s, "MIGRATING", m.dstID); err != nil {
		return nil, fmt.Errorf("SETSLOT MIGRATING on %s: %w", m.src.Addr(), err)
	}
	return m, m.move(ctx, pace)
}

// pick finds the slot's primary (as the first live node sees it) and the
// primary after it in node order, and their IDs.
func (m *SlotMigration) pick(ctx context.Context) error {
	src, err := m.c.liveOwner(ctx, m.slot)
	if err != nil {
		return err
	}
	var primaries []*Process
	at := -1
	for _, p := range m.c.nodes {
		if r, err := role(ctx, p); err == nil && r == "master" {
			if p == src {
				at = len(primaries)
			}
			primaries = append(primaries, p)
		}
	}
	if at < 0 || len(primaries) < 2 {
		return fmt.Errorf("slot %d: served by %s, which is not one of %d primaries", m.slot, src.Addr(), len(primaries))
	}
	m.src, m.dst = src, primaries[(at+1)%len(primaries)]
	if m.srcID, err = nodeID(ctx, m.src); err == nil {
		m.dstID, err = nodeID(ctx, m.dst)
	}
	return err
}

// keySlot is the hash slot of key (CLUSTER KEYSLOT on a live node).
func (c *Cluster) keySlot(ctx context.Context, key string) (int, error) {
	why := errors.New("CLUSTER KEYSLOT: no live node")
	for _, p := range c.nodes {
		if p.Pid() == 0 {
			continue
		}
		v, err := p.adminDo(ctx, "CLUSTER", "KEYSLOT", key)
		if err != nil {
			why = fmt.Errorf("CLUSTER KEYSLOT: %w", err)
			continue
		}
		n, ok := v.(int64)
		if !ok {
			return 0, fmt.Errorf("CLUSTER KEYSLOT: unexpected reply %v", v)
		}
		return int(n), nil
	}
	return 0, why
}

// owner is node p's view of who serves the slot (CLUSTER SHARDS is
// Redis 7 only; CLUSTER SLOTS is older and enough).
func (c *Cluster) owner(ctx context.Context, p *Process, slot int) (*Process, error) {
	v, err := p.adminDo(ctx, "CLUSTER", "SLOTS")
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS on %s: %w", p.Addr(), err)
	}
	ranges, _ := v.([]any)
	for _, r := range ranges {
		f, _ := r.([]any)
		if len(f) < 3 {
			continue
		}
		lo, _ := f[0].(int64)
		hi, _ := f[1].(int64)
		if int64(slot) < lo || int64(slot) > hi {
			continue
		}
		node, _ := f[2].([]any)
		if len(node) < 2 {
			break
		}
		port, _ := node[1].(int64)
		for _, q := range c.nodes {
			if q.port == int(port) {
				return q, nil
			}
		}
	}
	return nil, fmt.Errorf("slot %d: not in CLUSTER SLOTS of %s", slot, p.Addr())
}

// nodeID is CLUSTER MYID of p.
func nodeID(ctx context.Context, p *Process) (string, error) {
	v, err := p.adminDo(ctx, "CLUSTER", "MYID")
	if err != nil {
		return "", fmt.Errorf("CLUSTER MYID on %s: %w", p.Addr(), err)
	}
	id, _ := v.(string)
	if id == "" {
		return "", fmt.Errorf("CLUSTER MYID on %s: unexpected reply %v", p.Addr(), v)
	}
	return id, nil
}

// move MIGRATEs the keys the source holds in the slot, one at a time, pace
// apart, until it holds none.
func (m *SlotMigration) move(ctx context.Context, pace time.Duration) error {
	host, port := "127.0.0.1", strconv.Itoa(m.dst.port)
	for {
		v, err := m.src.adminDo(ctx, "CLUSTER", "GETKEYSINSLOT", strconv.Itoa(m.slot), "100")
		if err != nil {
			return fmt.Errorf("GETKEYSINSLOT on %s: %w", m.src.Addr(), err)
		}
		keys, _ := v.([]any)
		if len(keys) == 0 {
			return nil
		}
		for _, k := range keys {
			key, _ := k.(string)
			args := []string{"MIGRATE", host, port, "", "0", "5000"}
			if pw := m.c.opts.Password; pw != "" {
				args = append(args, "AUTH", pw)
			}
			// NOKEY (the key expired or was deleted meanwhile) is no
			// failure.
			if _, err := m.src.adminDo(ctx, append(args, "KEYS", key)...); err != nil && !strings.Contains(err.Error(), "NOKEY") {
				return fmt.Errorf("MIGRATE of a key of slot %d to %s: %w", m.slot, m.dst.Addr(), err)
			}
			m.Moved++
			if !sleep(ctx, pace) {
				return ctx.Err()
			}
		}
	}
}

// Finish moves what the source still holds in the slot and hands the slot
// to the destination: SETSLOT NODE on the destination, the source, then the
// other primaries (the order redis-cli --cluster uses).
func (m *SlotMigration) Finish(ctx context.Context) error {
	defer m.release()
	if err := m.move(ctx, 0); err != nil {
		return err
	}
	s := strconv.Itoa(m.slot)
	var errs []error
	for _, p := range m.order(ctx) {
		if _, err := p.adminDo(ctx, "CLUSTER", "SETSLOT", s, "NODE", m.dstID); err != nil {
			errs = append(errs, fmt.Errorf("SETSLOT NODE on %s: %w", p.Addr(), err))
		}
	}
	return errors.Join(errs...)
}

// release forgets that the slot is moving.
func (m *SlotMigration) release() {
	m.c.mu.Lock()
	delete(m.c.moving, m.slot)
	m.c.mu.Unlock()
}

// order is the destination, the source, then the other primaries.
func (m *SlotMigration) order(ctx context.Context) []*Process {
	out := []*Process{m.dst, m.src}
	for _, p := range m.c.nodes {
		if p == m.dst || p == m.src {
			continue
		}
		if r, err := role(ctx, p); err == nil && r == "master" {
			out = append(out, p)
		}
	}
	return out
}

// Slot is the slot being moved.
func (m *SlotMigration) Slot() int { return m.slot }

// From and To are the source and destination primaries' addresses.
func (m *SlotMigration) From() string { return m.src.Addr() }

// To is the destination primary's address.
func (m *SlotMigration) To() string { return m.dst.Addr() }
