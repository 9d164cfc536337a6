package target

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A three-node cluster serves every slot; a script run on the node of its
// declared key fails when it touches an undeclared key of another slot
// (strict, #!lua) or of another node, and runs when it touches only its
// declared keys.
func TestStartCluster(t *testing.T) {
	ctx := context.Background()
	c, err := StartSlotCluster(ctx, 3, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	slot, err := c.Slot(ctx, "{flow:x}:events")
	if err != nil || slot != 1387 {
		t.Fatalf("slot %d, %v; want 1387 (CRC16 of the hash tag)", slot, err)
	}
	node := c.NodeOf(slot)
	other, _ := c.Slot(ctx, "{flow:y}:conns")
	far, _ := c.Slot(ctx, "sse:live")
	if other == slot || c.NodeOf(other) != node || c.NodeOf(far) == node {
		t.Fatalf("slots %d, %d, %d: the keys below must be another slot on the same node and another node", slot, other, far)
	}
	eval := func(src string, keys ...string) error {
		args := append([]string{"EVAL", src, string(rune('0' + len(keys)))}, keys...)
		_, err := node.adminDo(ctx, args...)
		return err
	}
	if err := eval("#!lua\nredis.call('SET', KEYS[1], 1) return 1", "{flow:x}:events"); err != nil {
		t.Errorf("declared key: %v", err)
	}
	if err := eval("#!lua\nredis.call('SET', KEYS[1], 1) redis.call('SET', '{flow:y}:conns', 1) return 1", "{flow:x}:events"); err == nil ||
		!strings.Contains(err.Error(), "do not hash to the same slot") {
		t.Errorf("undeclared key of another slot, same node: %v; want the same-slot error", err)
	}
	if err := eval("redis.call('SET', KEYS[1], 1) redis.call('SET', 'sse:live', 1) return 1", "{flow:x}:events"); err == nil ||
		!strings.Contains(err.Error(), "non local key") {
		t.Errorf("undeclared key on another node: %v; want the non-local error", err)
	}
	if _, err := StartSlotCluster(ctx, 0, time.Second); err == nil {
		t.Error("a cluster of 0 nodes started")
	}
}
