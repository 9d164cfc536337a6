package scenarios

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/inputfile"
)

// limitedPaths lists the YAML paths of every int, float, duration, list
// and mapping field under t ("faults[].at" for a list's elements).
func limitedPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		p := join(prefix, tag)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft == durationType, ft == thresholdsType, ft.Kind() == reflect.Map:
			out = append(out, p)
		case ft.Kind() == reflect.Struct:
			out = append(out, limitedPaths(ft, p)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, p)
			out = append(out, limitedPaths(ft.Elem(), p+"[]")...)
		case ft.Kind() == reflect.Slice:
			out = append(out, p)
		case ft.Kind() == reflect.Int, ft.Kind() == reflect.Int64, ft.Kind() == reflect.Float64, ft.Kind() == reflect.Float32,
			ft.Kind() == reflect.Int32, ft.Kind() == reflect.Uint, ft.Kind() == reflect.Uint64:
			out = append(out, p)
		}
	}
	return out
}

// TestLimitsCoverSpec: every number a scenario file may give has a range
// in the limits table, and every entry of the table names such a number.
// A field added to Spec without a line in limits fails here.
func TestLimitsCoverSpec(t *testing.T) {
	paths := limitedPaths(reflect.TypeOf(Spec{}), "")
	have := map[string]bool{}
	for _, p := range paths {
		have[p] = true
		if _, ok := limitFor(p); !ok {
			t.Errorf("%s: no entry in limits (scenarios/limits.go); add its range there", p)
		}
	}
	for _, l := range limits {
		if !have[l.path] {
			t.Errorf("limits entry %q names no number, list or mapping of Spec", l.path)
		}
		if l.min > l.max || l.max <= 0 {
			t.Errorf("%s: range %g to %g is empty", l.path, l.min, l.max)
		}
	}
}

// setPath sets the value at a dotted path ("workload.publish.rate",
// "faults[].at" meaning the first fault) in a decoded YAML document.
func setPath(doc map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	m := doc
	for _, p := range parts[:len(parts)-1] {
		if name, ok := strings.CutSuffix(p, "[]"); ok {
			m = m[name].([]any)[0].(map[string]any)
			continue
		}
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

// TestParseOutOfRange: for every limit, a value past each end (and NaN,
// infinity, 292 years where they apply) is bad input naming the file, the
// line, the field and its range.
func TestParseOutOfRange(t *testing.T) {
	for _, l := range limits {
		if l.count {
			continue // TestParseHostile has a case of each
		}
		var bad []any
		if l.dur {
			bad = append(bad, fmtDuration(time.Duration(l.max)+time.Millisecond), "2562047h")
			if l.min > 0 {
				bad = append(bad, (time.Duration(l.min) / 2).String())
			}
		} else if isInt(l.path) {
			bad = append(bad, int64(l.max)+1, int64(-2))
			if l.min > 1 {
				bad = append(bad, int64(l.min)-1)
			}
		} else {
			bad = append(bad, l.max*2, -2, math.NaN(), math.Inf(1))
			if l.min > 0 {
				bad = append(bad, l.min/2)
			}
		}
		for _, v := range bad {
			var doc map[string]any
			if err := yaml.Unmarshal([]byte(validSpec), &doc); err != nil {
				t.Fatal(err)
			}
			setPath(doc, l.path, v)
			src, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse("t.yaml", src, testKnown)
			want := "want " + l.allowed()
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "t.yaml:") ||
				!strings.Contains(err.Error(), strings.ReplaceAll(l.path, "[]", "[0]")) || exitcode.Of(err) != exitcode.BadInput {
				t.Errorf("%s: %v: got %v; want exit 3 naming t.yaml:line, the field and %q", l.path, v, err, want)
			}
		}
	}
}

// isInt reports whether the field at path is an integer.
func isInt(path string) bool {
	v := reflect.ValueOf(Spec{})
	for _, part := range strings.Split(path, ".") {
		if name, ok := strings.CutSuffix(part, "[]"); ok {
			v = fieldByTag(v, name)
			v = reflect.New(v.Type().Elem()).Elem()
			continue
		}
		v = fieldByTag(v, part)
	}
	return v.Kind() == reflect.Int || v.Kind() == reflect.Int64 && v.Type() != durationType
}

func fieldByTag(v reflect.Value, tag string) reflect.Value {
	for i := 0; i < v.NumField(); i++ {
		if strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0] == tag {
			return v.Field(i)
		}
	}
	panic("no field " + tag)
}

// TestParseHostile: the cases of issue 14 and their neighbours, each bad
// input (exit 3) with file:line and what is allowed.
func TestParseHostile(t *testing.T) {
	tests := []struct {
		name, from, to string
		want           string
	}{
		{"tiny rate", "publish: {rate: 50}", "publish: {rate: 1e-10}", "t.yaml:9: workload.publish.rate 1e-10: want 0 or 0.1 to 100000 per second"},
		{"NaN rate", "publish: {rate: 50}", "publish: {rate: .nan}", "t.yaml:9: workload.publish.rate .nan: want 0 or 0.1 to 100000 per second"},
		{"infinite rate", "publish: {rate: 50}", "publish: {rate: .inf}", "t.yaml:9: workload.publish.rate .inf: want"},
		{"fractional count", "publish: {rate: 50}", "publish: {rate: 50, flows: 2.5}", `t.yaml:9: workload.publish.flows: want an integer, got "2.5"`},
		{"negative rate", "publish: {rate: 50}", "publish: {rate: -5}", "t.yaml:9: workload.publish.rate -5: want"},
		{"NaN write ratio", "publish: {rate: 50}", "publish: {rate: 50}\n  cache: {rate: 10, write_ratio: .nan}", "t.yaml:10: workload.cache.write_ratio .nan: want 0 to 1"},
		{"huge payload", "publish: {rate: 50}", "publish: {rate: 50, payload: 100000000000}", "t.yaml:9: workload.publish.payload 100000000000: want 0 or 1 to 1048576 bytes"},
		{"huge sse clients", "publish: {rate: 50}", "publish: {rate: 50}\n  sse: {clients: 100000000}", "t.yaml:10: workload.sse.clients 100000000: want 0 or 1 to 1000 per flow"},
		{"292 years", "duration: 4s", "duration: 2562047h", "t.yaml:8: workload.duration 2562047h: want 100ms to 1h"},
		{"overflowing at + for", "    for: 1s", "    for: 2562047h", "t.yaml:12: faults[0].for 2562047h: want 0 or 1ms to 1h"},
		{"zero duration", "duration: 4s", "duration: 0s", "t.yaml:8: workload.duration 0s: want 100ms to 1h"},
		{"pool size", "  registry_ttl: 1s", "  registry_ttl: 1s\n  pool_size: 1000000", "t.yaml:7: config.pool_size 1000000: want 0 or 1 to 1000 connections"},
		{"stream maxlen", "  registry_ttl: 1s", "  registry_ttl: 1s\n  stream_maxlen: -1", "config.stream_maxlen -1: want"},
		{"instances", "profiles: [seed]", "profiles: [seed]\ninstances: 100", "t.yaml:5: instances 100: want 0 or 1 to 8"},
		{"min_load off", "checks:", "bounds: {min_load: -2}\nchecks:", "bounds.min_load -2: want -1 (off) or 0 to 1 of the publish rate"},
		{"traversing name", "name: t", "name: ../../escaped", `t.yaml:1: name "../../escaped": want lowercase letters`},
		{"slash in name", "name: t", "name: a/b", `name "a/b": want`},
		{"NUL in name", "name: t", `name: "a\0b"`, `name "a\x00b": want`},
		{"dot name", "name: t", "name: ..", `name "..": want`},
		{"upper case name", "name: t", "name: Basic", `name "Basic": want`},
		{"long name", "name: t", "name: " + strings.Repeat("a", 65), `want lowercase`},
		{"maxmemory injection", "kind: process", "kind: process, maxmemory: \"2mb\\nbind 0.0.0.0\"", `target.maxmemory "2mb\nbind 0.0.0.0": want a Redis memory size`},
		{"second document", "", "---\nname: other\n", "t.yaml:20: a second YAML document (---): a file holds one"},
		{"broken second document", "", "---\nname: [x\n", "t.yaml:20: did not find expected ',' or ']'"},
		{"planned operations", "publish: {rate: 50}", "publish: {rate: 100000}\n  sse: {clients: 100}", "t.yaml:8: workload: about 40400000 operations planned; at most 1000000"},
		{"published bytes", "publish: {rate: 50}", "publish: {rate: 1000, payload: 1048576}", "t.yaml:9: workload.publish: about 4194304000 payload bytes planned"},
		{"too many faults", "checks:", strings.Repeat("  - {at: 1s, for: 1s, fault: down}\n", 100) + "checks:", "t.yaml:11: faults: 101 entries: want at most 100 entries"},
		{"check twice", "  - name: lost\n", "  - name: lost\n  - name: lost\n", "t.yaml:17: check \"lost\" listed twice"},
		{"too many checks", "  - name: lost\n", strings.Repeat("  - name: lost\n", 51), "t.yaml:16: checks: 52 entries: want at most 50 entries"},
		{"too many thresholds", "      publish_p99_ms: \"<= 60ms\"\n", strings.Repeat("      publish_p99_ms: \"<= 60ms\"\n", 51), "t.yaml:19: checks[1].thresholds: 51 entries: want at most 50 entries"},
		{"too many profiles", "profiles: [seed]", "profiles: [" + strings.Repeat("seed, ", 10) + "seed]", "t.yaml:4: profiles: 11 entries: want at most 10 entries"},
		{"streams", "publish: {rate: 50}", "publish: {rate: 50, flows: 10}\n  sse: {clients: 101}", "t.yaml:10: workload.sse: 1010 streams (clients × flows + slow, stalled and browser clients); at most 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantRejected(t, tt.from, tt.to, tt.want) })
	}
}

// TestParseNameFromFile: without name: the file's name is the scenario's,
// and must be as safe.
func TestParseNameFromFile(t *testing.T) {
	src := strings.Replace(validSpec, "name: t\n", "", 1)
	if s, err := Parse("dir/my_run.yaml", []byte(src), testKnown); err != nil || s.Name != "my_run" {
		t.Errorf("got %q, %v; want my_run", s.Name, err)
	}
	_, err := Parse("dir/My Run.yaml", []byte(src), testKnown)
	if want := `no name, and the file name "My Run" is not one`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v; want %q", err, want)
	}
}

// TestLoadBounded: a scenario file is read to at most inputfile.MaxYAML,
// whatever it is.
func TestLoadBounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(validSpec+"#"+strings.Repeat("x", inputfile.MaxYAML)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ ref, want string }{
		{big, "file too large: more than 1 MiB"},
		{"/dev/zero", "file too large: more than 1 MiB"},
		{dir + "/", "is a directory"},
	} {
		_, err := Load(tt.ref, testKnown)
		if err == nil || !strings.Contains(err.Error(), tt.want) || exitcode.Of(err) != exitcode.BadInput {
			t.Errorf("Load(%s): got %v; want exit 3 with %q", tt.ref, err, tt.want)
		}
	}
	_, err := Parse("big.yaml", make([]byte, inputfile.MaxYAML+1), testKnown)
	if !errors.Is(err, inputfile.ErrTooLarge) || exitcode.Of(err) != exitcode.BadInput {
		t.Errorf("Parse of %d bytes: got %v; want exit 3, too large", inputfile.MaxYAML+1, err)
	}
}
