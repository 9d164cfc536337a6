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
// the flow's hash tag ({flow:…}), so they run there; the registry's scripts
// and the cache epoch lease mix instance-wide keys with per-flow ones (and
// the registry's build keys inside the script from a prefix): on a cluster
// they fail with CROSSSLOT. This test pins both facts with the keys each
// call site passes (a cluster target, issue 21, needs the second fixed).
func TestScriptKeySlots(t *testing.T) {
	if got, want := slot("123456789"), uint16(0x31C3%16384); got != want {
		t.Fatalf("slot(123456789) = %d; want %d (CRC16 XMODEM check value)", got, want)
	}
	k := keys{prefix: "p:"}
	single := map[string][]string{
		"publish":    {k.events("f")},
		"replay":     {k.events("f")},
		"fill":       {k.state("f", "e"), k.meta("f"), k.gen("f")},
		"invalidate": {k.state("f", "e"), k.meta("f"), k.gen("f")},
	}
	for name, ks := range single {
		for _, key := range ks[1:] {
			if slot(key) != slot(ks[0]) {
				t.Errorf("%s script: keys %s and %s are in different slots", name, ks[0], key)
			}
		}
		if slot(ks[0]) != slot(k.channel("f")) {
			t.Errorf("%s: the flow's keys and channel are in different slots", name)
		}
	}
	cross := map[string][]string{
		"register":  {k.live(), k.connFlow(), k.conns("f"), k.connInfo("f")},
		"heartbeat": {k.live(), k.connFlow()},
		"remove":    {k.live(), k.connFlow()},
		"lease":     {k.cacheMembers(), k.cacheEpoch()},
	}
	for name, ks := range cross {
		slots := map[uint16]bool{}
		for _, key := range ks {
			slots[slot(key)] = true
		}
		if len(slots) == 1 {
			t.Errorf("%s script: keys %v now share a slot: move it to the single-slot list", name, ks)
			continue
		}
		t.Logf("%s script: keys %v in %d slots: CROSSSLOT on a cluster", name, ks, len(slots))
	}
}
