package hardened

import (
	"strings"
	"testing"
)

// slot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of its hash
// tag (the first non-empty {…}) or of the whole key, mod 16384.
func slot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

// TestScriptKeySlots: on Redis Cluster a script may only touch keys of one
// slot. The event bus and the cache's per-flow scripts pass keys that share
// the flow's hash tag ({flow:…}), and the flow's channel is in that slot
// too; the registry's scripts mix instance-wide keys with per-flow ones,
// and the cache epoch lease two instance-wide keys: each group shares a
// hash tag of its own ({sse}, {cache}). This test checks every script
// with the keys each call site passes.
func TestScriptKeySlots(t *testing.T) {
	if got, want := slot("123456789"), uint16(0x31C3%16384); got != want {
		t.Fatalf("slot(123456789) = %d; want %d (CRC16 XMODEM check value)", got, want)
	}
	k := keys{prefix: "p:"}
	flow := map[string][]string{
		"publish":    {k.events("f")},
		"replay":     {k.events("f")},
		"fill":       {k.state("f", "e"), k.meta("f"), k.gen("f")},
		"invalidate": {k.state("f", "e"), k.meta("f"), k.gen("f")},
	}
	for name, ks := range flow {
		if slot(ks[0]) != slot(k.channel("f")) {
			t.Errorf("%s: the flow's keys and channel are in different slots", name)
		}
	}
	all := map[string][]string{
		"register":  {k.live(), k.connFlow(), k.conns("f"), k.connInfo("f")},
		"heartbeat": {k.live(), k.connFlow(), k.conns("g"), k.connInfo("g")},
		"remove":    {k.live(), k.connFlow(), k.conns("f"), k.connInfo("f"), k.conns("g"), k.connInfo("g")},
		"lease":     {k.cacheMembers(), k.cacheEpoch()},
		"metrics":   {k.metrics()},
	}
	for name, ks := range flow {
		all[name] = ks
	}
	for name, ks := range all {
		for _, key := range ks[1:] {
			if slot(key) != slot(ks[0]) {
				t.Errorf("%s script: keys %s and %s are in different slots (CROSSSLOT on a cluster)", name, ks[0], key)
			}
		}
	}
}
