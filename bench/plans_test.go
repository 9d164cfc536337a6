package bench

import (
	"math"
	"strings"
	"testing"
)

// The shipped plans parse, and every number they give is one a source
// gave: what no source gave is listed unknown, never a made-up value.
func TestShippedPlans(t *testing.T) {
	plans := Plans()
	for _, name := range []string{"upstash-free", "upstash-free-2024", "upstash-payg", "upstash-fixed-250mb", "redis-cloud-essentials-free", "self-hosted"} {
		if _, ok := plans[name]; !ok {
			t.Errorf("no plan %s", name)
		}
	}
	free := plans["upstash-free"]
	if free.CommandsPerMonth != 500_000 || free.CommandsPerSec != 10_000 || free.RequestBytes != 10_000_000 ||
		free.ScriptCommands != ScriptUnknown || free.known("connections") || !free.billsServer() {
		t.Errorf("upstash-free %+v", free)
	}
	if p := plans["upstash-payg"]; p.PricePer100K != 0.2 || p.CommandsPerMonth != 0 || !p.known("commands_month") {
		t.Errorf("upstash-payg %+v", p)
	}
	if p := plans["self-hosted"]; p.billsServer() || p.known("price_month_usd") || p.Connections != 10000 {
		t.Errorf("self-hosted %+v", p)
	}
	// Every line with a value carries a comment naming where it is from.
	for i, line := range strings.Split(string(defaultPlans), "\n") {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "#") || l == "" || strings.HasSuffix(l, ":") || strings.HasPrefix(l, "version:") || strings.HasPrefix(l, "description:") {
			continue
		}
		if !strings.Contains(l, "# ") {
			t.Errorf("plans.yaml:%d %q: no source comment", i+1, l)
		}
	}
}

func TestParsePlansRejects(t *testing.T) {
	good := string(defaultPlans)
	for _, c := range []struct{ name, from, to, want string }{
		{"negative", "commands_month: 500000 ", "commands_month: -1 ", `commands_month "-1"`},
		{"not a number", "commands_month: 500000 ", "commands_month: lots ", `commands_month "lots"`},
		{"too large", "commands_month: 500000 ", "commands_month: 1e99 ", `commands_month "1e99"`},
		{"unknown field", "commands_month: 500000 ", "commands_year: 500000 ", `unknown field "commands_year"`},
		{"script billing", "script_commands: unknown ", "script_commands: maybe ", `script_commands "maybe"`},
		{"version", "version: 1", "version: 2", "version 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(good, c.from, c.to, 1)
			if text == good {
				t.Fatalf("%q not in plans.yaml", c.from)
			}
			_, err := ParsePlans("p.yaml", []byte(text))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "p.yaml") {
				t.Errorf("err %v; want one naming the file and %q", err, c.want)
			}
		})
	}
	missing := strings.Replace(good, "    request_bytes: 10000000 ", "    #", 1)
	if _, err := ParsePlans("p.yaml", []byte(missing)); err == nil || !strings.Contains(err.Error(), `missing "request_bytes"`) {
		t.Errorf("a plan without request_bytes: err %v", err)
	}
	if _, err := ParsePlans("p.yaml", []byte(good+"\n---\nversion: 2\n")); err == nil || !strings.Contains(err.Error(), "a second YAML document") {
		t.Errorf("a second document: err %v; want it refused", err)
	}
}

// Pay-as-you-go costs its price per 100K commands; a quota plan has no
// cost over its quota (it stops), an unknown price none at all.
func TestProjectCost(t *testing.T) {
	payg := Plan{Name: "payg", PricePer100K: 0.2, CommandsPerSec: 10_000}
	p := Project("publish", "hardened", 1, 3, payg) // 7,776,000 a month
	if p.CostPerMonth == nil || math.Abs(*p.CostPerMonth-15.552) > 1e-9 {
		t.Errorf("payg cost %v; want 15.552", p.CostPerMonth)
	}
	if p := Project("publish", "", 1, 3, Plan{Name: "free", CommandsPerMonth: 500_000}); p.CostPerMonth != nil {
		t.Errorf("over the free quota: cost %v; want none", *p.CostPerMonth)
	}
	if p := Project("publish", "", 1, 3, Plan{Name: "day", CommandsPerDay: 10_000}); p.DayShare != 25.92 || !strings.Contains(p.Warning, "commands/day") {
		t.Errorf("daily quota: share %g warning %q", p.DayShare, p.Warning)
	}
	if p := Project("publish", "", 1, 3, Plan{Name: "u", Unknown: []string{"price_month_usd"}}); p.CostPerMonth != nil {
		t.Errorf("unknown price: cost %v; want none", *p.CostPerMonth)
	}
}

// The projection counts what the server executed unless the plan is known
// not to bill script-internal commands, and what the client sent where
// the server did not report.
func TestProjectionBasis(t *testing.T) {
	three := 3.0
	rows := func() []Result {
		return []Result{{Op: OpPublish, Profile: "hardened", Ops: 10, CommandsPerOp: 1, ServerCommandsPerOp: &three},
			{Op: OpPublish, Profile: "seed", Ops: 10, CommandsPerOp: 3}}
	}
	for _, c := range []struct {
		script    string
		cmds      float64
		basis     string
		seedBasis string
	}{{ScriptUnknown, 3, "server", "client"}, {ScriptBilled, 3, "server", "client"}, {ScriptFree, 1, "client", "client"}} {
		r := &Report{Results: rows(), Plan: Plan{Name: "p", ScriptCommands: c.script}}
		r.finish([]string{"hardened", "seed"}, 1)
		if len(r.Project) != 2 || r.Project[0].CommandsPerOp != c.cmds || r.Project[0].Basis != c.basis || r.Project[1].Basis != c.seedBasis {
			t.Errorf("script_commands %s: projections %+v; want hardened %g (%s)", c.script, r.Project, c.cmds, c.basis)
		}
	}
}
