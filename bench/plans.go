package bench

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/gonogo/harness/internal/inputfile"
)

// defaultPlans is the shipped plans file: every number with its public
// source in a comment.
//
//go:embed plans.yaml
var defaultPlans []byte

// DefaultPlansYAML returns the text of the shipped plans file.
func DefaultPlansYAML() []byte { return bytes.Clone(defaultPlans) }

// Script-command billing of a plan (Plan.ScriptCommands).
const (
	ScriptBilled   = "yes"
	ScriptFree     = "no"
	ScriptUnknown  = "unknown"
	quantityNone   = "none"
	maxPlanNumber  = 1e15
	maxPlansInFile = 1000
)

// planFields are a plan's keys in a plans file, every one required.
var planFields = []string{"description", "price_month_usd", "price_per_100k_commands_usd", "commands_month",
	"commands_day", "commands_sec", "connections", "request_bytes", "script_commands"}

// ParsePlans reads a plans file (the shape of plans.yaml). Every plan
// states every field: a number, "none" (no such limit or charge: 0) or
// "unknown" (no source gave one: 0, and the field listed in Unknown).
// Errors name the file and line.
func ParsePlans(file string, data []byte) (map[string]Plan, error) {
	var doc struct {
		Version int                  `yaml:"version"`
		Plans   map[string]yaml.Node `yaml:"plans"`
	}
	// One document, within the size limit (a plain decode ignores a
	// second); then the strict decode.
	if _, err := inputfile.YAML(file, data); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	switch {
	case doc.Version != 1:
		return nil, fmt.Errorf("%s: version %d: want 1", file, doc.Version)
	case len(doc.Plans) == 0 || len(doc.Plans) > maxPlansInFile:
		return nil, fmt.Errorf("%s: %d plans: want 1 to %d", file, len(doc.Plans), maxPlansInFile)
	}
	out := map[string]Plan{}
	for name, n := range doc.Plans {
		p, err := parsePlan(name, &n)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: plan %s: %w", file, n.Line, name, err)
		}
		out[name] = p
	}
	return out, nil
}

func parsePlan(name string, n *yaml.Node) (Plan, error) {
	if n.Kind != yaml.MappingNode {
		return Plan{}, errors.New("want a mapping")
	}
	f := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if !contains(planFields, k) {
			return Plan{}, fmt.Errorf("line %d: unknown field %q (want %s)", n.Content[i].Line, k, strings.Join(planFields, ", "))
		}
		f[k] = n.Content[i+1]
	}
	for _, k := range planFields {
		if f[k] == nil {
			return Plan{}, fmt.Errorf("missing %q (a number, none or unknown)", k)
		}
	}
	p := Plan{Name: name, Description: f["description"].Value}
	num := func(key string) (float64, error) {
		v := f[key].Value
		switch v {
		case quantityNone:
			return 0, nil
		case ScriptUnknown:
			p.Unknown = append(p.Unknown, key)
			return 0, nil
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || f[key].Kind != yaml.ScalarNode || math.IsNaN(x) || x < 0 || x > maxPlanNumber {
			return 0, fmt.Errorf("line %d: %s %q: want a number from 0 to 1e15, none or unknown", f[key].Line, key, v)
		}
		return x, nil
	}
	var err error
	ints := map[string]*int64{"commands_month": &p.CommandsPerMonth, "commands_day": &p.CommandsPerDay,
		"commands_sec": &p.CommandsPerSec, "connections": &p.Connections, "request_bytes": &p.RequestBytes}
	for _, key := range planFields {
		var x float64
		switch dst := ints[key]; {
		case dst != nil:
			x, err = num(key)
			*dst = int64(x)
		case key == "price_month_usd":
			p.PricePerMonth, err = num(key)
		case key == "price_per_100k_commands_usd":
			p.PricePer100K, err = num(key)
		}
		if err != nil {
			return Plan{}, err
		}
	}
	switch s := f["script_commands"].Value; s {
	case ScriptBilled, ScriptFree, ScriptUnknown:
		p.ScriptCommands = s
	default:
		return Plan{}, fmt.Errorf("script_commands %q: want yes, no or unknown", s)
	}
	return p, nil
}

// Plans are the shipped plans, by name.
func Plans() map[string]Plan {
	p, err := ParsePlans("plans.yaml", defaultPlans)
	if err != nil {
		panic("bench: embedded plans.yaml: " + err.Error())
	}
	return p
}

// PlanNames lists plans' names, sorted.
func PlanNames(plans map[string]Plan) []string {
	names := make([]string, 0, len(plans))
	for n := range plans {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// billsServer reports whether the plan is projected with the commands the
// server executed (script-internal ones included): unless it is known not
// to bill them (the conservative rule).
func (p Plan) billsServer() bool { return p.ScriptCommands != ScriptFree }

// known reports whether the plan's source gave field.
func (p Plan) known(field string) bool { return !contains(p.Unknown, field) }

// limits describes the plan's command limits for a table heading.
func (p Plan) limits() string {
	var parts []string
	for _, l := range []struct {
		field, unit string
		n           int64
	}{{"commands_month", "commands/month", p.CommandsPerMonth}, {"commands_day", "commands/day", p.CommandsPerDay}, {"commands_sec", "commands/s", p.CommandsPerSec}} {
		switch {
		case !p.known(l.field):
			parts = append(parts, "unknown "+l.unit)
		case l.n > 0:
			parts = append(parts, human(float64(l.n))+" "+l.unit)
		}
	}
	if len(parts) == 0 {
		return "no command limits"
	}
	return strings.Join(parts, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return ScriptUnknown
	}
	return s
}

// share is the larger of p's monthly and daily shares of the plan's
// quotas, "unknown" when the plan's quotas are, "-" when it has none.
func (pl Plan) share(p Projection) string {
	switch {
	case pl.CommandsPerMonth > 0 || pl.CommandsPerDay > 0:
		return fmt.Sprintf("%.0f%%", 100*max(p.MonthShare, p.DayShare))
	case !pl.known("commands_month") || !pl.known("commands_day"):
		return ScriptUnknown
	}
	return "-"
}
