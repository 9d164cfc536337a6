package scenarios

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// posError is a decoding or validation error at file:line.
type posError struct {
	file string
	line int
	msg  string
}

func (e *posError) Error() string { return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg) }

// decoder decodes a yaml.Node tree into Go values strictly: every mapping
// key must name a field (by its yaml tag), scalars must have the field's
// type, durations must parse, every number must be within its limit
// (limits), and each struct with a Line field learns the line it was
// written on.
type decoder struct {
	file string
	// errs are the numbers out of range: decoding goes on past them, so
	// that every one is reported.
	errs []error
}

var (
	durationType   = reflect.TypeOf(Duration(0))
	thresholdsType = reflect.TypeOf([]Threshold(nil))
)

func (d *decoder) errf(n *yaml.Node, format string, args ...any) error {
	msg := strings.TrimPrefix(fmt.Sprintf(format, args...), ": ")
	return &posError{file: d.file, line: n.Line, msg: msg}
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return d.errf(n, "empty document")
		}
		return d.decode(n.Content[0], v, path)
	case yaml.AliasNode:
		return d.errf(n, "%s: aliases are not supported", path)
	}
	switch {
	case v.Type() == durationType:
		if err := d.duration(n, v, path); err != nil {
			return err
		}
		d.limit(n, float64(v.Int()), path)
		return nil
	case v.Type() == thresholdsType:
		return d.thresholds(n, v, path)
	}
	switch v.Kind() {
	case reflect.Struct:
		return d.structure(n, v, path)
	case reflect.Pointer:
		if n.Tag == "!!null" {
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := d.decode(n, p.Elem(), path); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Slice:
		return d.slice(n, v, path)
	case reflect.Map:
		return d.stringMap(n, v, path)
	default:
		if err := d.scalar(n, v, path); err != nil {
			return err
		}
		switch v.Kind() {
		case reflect.Int, reflect.Int64:
			d.limit(n, float64(v.Int()), path)
		case reflect.Float64:
			d.limit(n, v.Float(), path)
		}
		return nil
	}
}

// limit checks the number v decoded at path against its limit. A number
// without one is the decoder's bug (TestLimitsCoverSpec).
func (d *decoder) limit(n *yaml.Node, v float64, path string) {
	l, ok := limitFor(path)
	if !ok {
		d.errs = append(d.errs, d.errf(n, "%s: no range is defined for this number", path))
		return
	}
	if msg := l.check(v); msg != "" {
		d.errs = append(d.errs, d.errf(n, "%s %s: %s", path, n.Value, msg))
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.ScalarNode {
		return d.errf(n, "%s: want a duration such as 250ms or 2s", path)
	}
	if n.Value == "0" {
		v.SetInt(0)
		return nil
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil || dur < 0 {
		return d.errf(n, "%s: bad duration %q (want e.g. 250ms, 2s)", path, n.Value)
	}
	v.SetInt(int64(dur))
	return nil
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.errf(n, "%s: want a mapping", path)
	}
	t := v.Type()
	fields := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" {
			fields[tag] = i
		}
	}
	if f := v.FieldByName("Line"); f.IsValid() && f.Kind() == reflect.Int {
		f.SetInt(int64(n.Line))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, ok := fields[k.Value]
		if !ok {
			return d.errf(k, "%s: unknown key %q (known: %s)", path, k.Value, strings.Join(sortedKeys(fields), ", "))
		}
		if seen[k.Value] {
			return d.errf(k, "%s: key %q given twice", path, k.Value)
		}
		seen[k.Value] = true
		if err := d.decode(val, v.Field(idx), join(path, k.Value)); err != nil {
			return err
		}
	}
	return nil
}

// count checks the number of entries of the list or mapping at path
// against its limit, before they are decoded.
func (d *decoder) count(n *yaml.Node, entries int, path string) error {
	l, ok := limitFor(path)
	if !ok {
		return d.errf(n, "%s: no limit is defined for this list", path)
	}
	if msg := l.checkCount(entries); msg != "" {
		return d.errf(n, "%s: %d entries: %s", path, entries, msg)
	}
	return nil
}

func (d *decoder) slice(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.SequenceNode {
		return d.errf(n, "%s: want a list", path)
	}
	if err := d.count(n, len(n.Content), path); err != nil {
		return err
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		if err := d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	v.Set(s)
	return nil
}

func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.errf(n, "%s: want a mapping", path)
	}
	if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
		return d.errf(n, "%s: unsupported map type %s", path, v.Type())
	}
	if err := d.count(n, len(n.Content)/2, path); err != nil {
		return err
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if val.Kind != yaml.ScalarNode {
			return d.errf(val, "%s.%s: want a scalar value", path, k.Value)
		}
		if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			return d.errf(k, "%s: key %q given twice", path, k.Value)
		}
		m.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(val.Value))
	}
	v.Set(m)
	return nil
}

func (d *decoder) thresholds(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.errf(n, "%s: want a mapping of metric to bound, e.g. publish_p99_ms: \"<= 50\"", path)
	}
	if err := d.count(n, len(n.Content)/2, path); err != nil {
		return err
	}
	var out []Threshold
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if val.Kind != yaml.ScalarNode {
			return d.errf(val, "%s.%s: want a bound such as \"<= 50ms\"", path, k.Value)
		}
		t, err := ParseThreshold(k.Value, val.Value)
		if err != nil {
			return d.errf(val, "%s.%s: %v", path, k.Value, err)
		}
		t.Line = k.Line
		out = append(out, t)
	}
	v.Set(reflect.ValueOf(out))
	return nil
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) error {
	want := "a " + v.Kind().String()
	switch v.Kind() {
	case reflect.Int, reflect.Int64:
		want = "an integer"
	case reflect.Float64:
		want = "a number"
	}
	if n.Kind != yaml.ScalarNode {
		return d.errf(n, "%s: want %s", path, want)
	}
	// yaml.v3 truncates a float into an integer field: 2.5 flows would be 2.
	if err := n.Decode(v.Addr().Interface()); err != nil || want == "an integer" && n.Tag != "!!int" {
		return d.errf(n, "%s: want %s, got %q", path, want, n.Value)
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
