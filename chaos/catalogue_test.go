package chaos

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLookupBuildsEachFault(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		want   Fault
	}{
		{"down", nil, Down{}},
		{"partition_primary", nil, &PartitionPrimary{}},
		{"slot_migration", nil, &SlotMigration{Tag: "flow:flow-0", Pace: 50 * time.Millisecond}},
		{"slot_migration", map[string]string{"tag": "sse", "pace": "0s"}, &SlotMigration{Tag: "sse"}},
		{"latency", map[string]string{"latency": "100ms", "jitter": "20ms", "stream": "upstream", "toxicity": "0.5"},
			Latency{Latency: 100 * time.Millisecond, Jitter: 20 * time.Millisecond, Stream: Upstream, Toxicity: 0.5}},
		{"latency", map[string]string{"latency": "1s"}, Latency{Latency: time.Second, Stream: Downstream, Toxicity: 1}},
		{"bandwidth", map[string]string{"rate": "10"}, Bandwidth{Rate: 10, Stream: Downstream, Toxicity: 1}},
		{"timeout", nil, Timeout{Stream: Downstream, Toxicity: 1}},
		{"timeout", map[string]string{"timeout": "2s"}, Timeout{Timeout: 2 * time.Second, Stream: Downstream, Toxicity: 1}},
		{"reset_peer", map[string]string{"timeout": "10ms"}, ResetPeer{Timeout: 10 * time.Millisecond, Stream: Downstream, Toxicity: 1}},
		{"slow_close", map[string]string{"delay": "1s"}, SlowClose{Delay: time.Second, Stream: Downstream, Toxicity: 1}},
		{"slicer", map[string]string{"average_size": "64", "size_variation": "8", "delay": "1ms"},
			Slicer{AverageSize: 64, SizeVariation: 8, Delay: time.Millisecond, Stream: Downstream, Toxicity: 1}},
		{"limit_data", map[string]string{"bytes": "1000"}, LimitData{Bytes: 1000, Stream: Downstream, Toxicity: 1}},
		{"flapping", map[string]string{"period": "500ms"}, &Flapping{Period: 500 * time.Millisecond}},
		{"kill", nil, Kill{}},
		{"pause", nil, Pause{}},
		{"restart", map[string]string{"hard": "true"}, Restart{Hard: true}},
		{"maxmemory", map[string]string{"bytes": "2mb"}, &MaxMemory{Bytes: 2 << 20, Policy: "allkeys-lru"}},
		{"maxmemory", map[string]string{"bytes": "1048576", "policy": "volatile-ttl"}, &MaxMemory{Bytes: 1 << 20, Policy: "volatile-ttl"}},
		{"quota", map[string]string{"limit": "1000"}, Quota{Limit: 1000}},
		{"conn_limit", map[string]string{"limit": "10"}, ConnLimit{Limit: 10}},
		{"failover", nil, &Failover{}},
		{"primary_kill", nil, &PrimaryKill{}},
		{"primary_pause", nil, &PrimaryPause{}},
		{"replica_lag", nil, ReplicaLag{}},
		{"rate_cap", map[string]string{"limit": "50"}, RateCap{Limit: 50}},
		{"tls_expired", nil, &TLSFault{Kind: TLSExpired}},
		{"tls_handshake_stall", nil, &TLSFault{Kind: TLSHandshakeStall}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.name, tt.params), func(t *testing.T) {
			got, err := Lookup(tt.name, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v; want %#v", got, tt.want)
			}
			if got.Name() != tt.name {
				t.Fatalf("Name() %q; want %q", got.Name(), tt.name)
			}
		})
	}
}

func TestNamesAreAllLookedUp(t *testing.T) {
	names := Names()
	if len(names) != 29 {
		t.Fatalf("%d names %q; want 29", len(names), names)
	}
	required := map[string]map[string]string{
		"latency": {"latency": "1ms"}, "bandwidth": {"rate": "1"}, "slow_close": {"delay": "1ms"},
		"slicer": {"average_size": "1"}, "limit_data": {"bytes": "1"}, "flapping": {"period": "1s"},
		"maxmemory": {"bytes": "1mb"}, "quota": {"limit": "1"}, "conn_limit": {"limit": "1"},
		"rate_cap": {"limit": "1"},
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("name %q twice", n)
		}
		seen[n] = true
		f, err := Lookup(n, required[n])
		if err != nil || f.Name() != n {
			t.Errorf("Lookup(%q): %v, %v; want a fault named %q", n, f, err, n)
		}
	}
}

func TestLookupBadInput(t *testing.T) {
	tests := []struct {
		name     string
		params   map[string]string
		sentinel error
		says     []string
	}{
		{"lag", nil, ErrUnknownFault, []string{`"lag"`, "latency", "tls_expired"}},
		{"latency", map[string]string{"latency": "100ms", "jiter": "1ms"}, ErrBadParam, []string{`"jiter"`, "jitter, stream, toxicity"}},
		{"down", map[string]string{"period": "1s"}, ErrBadParam, []string{`"period"`, "known: none"}},
		{"latency", nil, ErrBadParam, []string{`needs parameter "latency"`}},
		{"latency", map[string]string{"latency": "100"}, ErrBadParam, []string{"latency", `"100"`, "duration"}},
		{"latency", map[string]string{"latency": "-5ms"}, ErrBadParam, []string{"negative"}},
		{"latency", map[string]string{"latency": "0s"}, ErrBadParam, []string{"> 0"}},
		{"latency", map[string]string{"latency": "2562047h"}, ErrBadParam, []string{"latency", "want 1ms to 1h"}},
		{"flapping", map[string]string{"period": "1ns"}, ErrBadParam, []string{"period", "want 1ms to 1h"}},
		{"timeout", map[string]string{"timeout": "2h"}, ErrBadParam, []string{"timeout", "want 1ms to 1h"}},
		{"limit_data", map[string]string{"bytes": "9223372036854775807"}, ErrBadParam, []string{"bytes", "want at most 1099511627776"}},
		{"latency", map[string]string{"latency": "1ms", "toxicity": "NaN"}, ErrBadParam, []string{"toxicity", "(0, 1]"}},
		{"latency", map[string]string{"latency": "1ms", "stream": "sideways"}, ErrBadParam, []string{`"sideways"`, "upstream, downstream"}},
		{"latency", map[string]string{"latency": "1ms", "toxicity": "1.5"}, ErrBadParam, []string{"toxicity", "(0, 1]"}},
		{"latency", map[string]string{"latency": "1ms", "toxicity": "x"}, ErrBadParam, []string{"toxicity"}},
		{"quota", map[string]string{"limit": "ten"}, ErrBadParam, []string{"limit", "integer"}},
		{"quota", map[string]string{"limit": "0"}, ErrBadParam, []string{"> 0"}},
		{"restart", map[string]string{"hard": "maybe"}, ErrBadParam, []string{"true or false"}},
		{"maxmemory", map[string]string{"bytes": "2 parsecs"}, ErrBadParam, []string{"memory size"}},
		{"maxmemory", map[string]string{"bytes": "2mb", "policy": "lru"}, ErrBadParam, []string{"allkeys-lru"}},
		{"flapping", map[string]string{"period": "soon"}, ErrBadParam, []string{"period"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.name, tt.params), func(t *testing.T) {
			_, err := Lookup(tt.name, tt.params)
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("got %v; want %v", err, tt.sentinel)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{{"1048576", 1 << 20}, {"100kb", 100 << 10}, {"2MB", 2 << 20}, {"1gb", 1 << 30}, {"7b", 7}}
	for _, tt := range tests {
		if got, err := parseBytes(tt.in); got != tt.want || err != nil {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "mb", "-1mb", "0", "1.5mb", "1tb"} {
		if _, err := parseBytes(bad); err == nil {
			t.Errorf("parseBytes(%q) succeeded; want an error", bad)
		}
	}
}

func ExampleLookup() {
	f, err := Lookup("latency", map[string]string{"latency": "100ms", "jitter": "20ms", "stream": "upstream"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %+v\n", f.Name(), f)
	_, err = Lookup("latency", map[string]string{"latency": "100ms", "jiter": "20ms"})
	fmt.Println(err)
	// Output:
	// latency {Latency:100ms Jitter:20ms Stream:upstream Toxicity:1}
	// bad fault parameter: fault latency has no parameter "jiter" (known: latency, jitter, stream, toxicity)
}

// TestParamLimitsDoc: docs/limits.md states the parameter ranges as the
// code has them.
func TestParamLimitsDoc(t *testing.T) {
	doc, err := os.ReadFile("../docs/limits.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(doc)), " ")
	for _, want := range []string{"durations " + durationRange, fmt.Sprintf("integers at most %d", int64(MaxParamInt))} {
		if !strings.Contains(text, want) {
			t.Errorf("docs/limits.md lacks %q", want)
		}
	}
}
