package reports

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/gonogo/harness/internal/verdict"
)

// Markdown renders summary.md: the verdict on line one, then the criteria
// table, failed and inconclusive criteria with their evidence, scenarios,
// benchmarks, anomalies, trend and environment.
func Markdown(r Run) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", Headline(r))
	if r.GateDescription != "" {
		fmt.Fprintf(&b, "Gate **%s**: %s.\n\n", r.Gate, mdCell(r.GateDescription))
	}
	if r.Interrupted {
		b.WriteString("**The run was interrupted; the results below are partial.**\n\n")
	}
	b.WriteString("## Criteria\n\n")
	if len(r.Criteria) == 0 {
		b.WriteString("No criteria were judged.\n\n")
	} else {
		b.WriteString("| Criterion | Threshold | Measured | Margin | Result |\n|---|---|---|---|---|\n")
		for _, c := range r.Criteria {
			fmt.Fprintf(&b, "| **%s** %s | %s | %s | %s | %s |\n", mdCell(c.Criterion.ID), mdCell(c.Criterion.Expr()),
				mdCell(c.Criterion.Threshold()), mdCell(fmtMeasured(c)), mdCell(fmtMargin(c)), c.Verdict)
		}
		b.WriteString("\n")
	}
	mdDetails(&b, "Failed criteria", criteriaWith(r.Criteria, verdict.Fail))
	mdDetails(&b, "Inconclusive criteria", criteriaWith(r.Criteria, verdict.Inconclusive))
	if len(r.Scenarios) > 0 {
		b.WriteString("## Scenarios\n\n| Scenario | Profile | Verdict | Duration | Faults | Failed checks |\n|---|---|---|---|---|---|\n")
		for _, s := range r.Scenarios {
			var faults, failed []string
			for _, f := range s.Faults {
				faults = append(faults, fmt.Sprintf("%s %s–%s", f.Name, fmtMs(f.StartMs), fmtMs(f.EndMs)))
			}
			for _, c := range s.Checks {
				if c.Verdict != verdict.Pass {
					failed = append(failed, c.Name+" "+string(c.Verdict))
				}
			}
			verdict := string(s.Verdict)
			if s.Inconclusive != "" {
				verdict += " (" + s.Inconclusive + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", mdCell(s.Name), mdCell(s.Profile), mdCell(verdict),
				fmtMs(s.DurationMs), mdCell(strings.Join(faults, ", ")), mdCell(strings.Join(failed, ", ")))
		}
		b.WriteString("\n")
	}
	mdSensitivity(&b, r.Scenarios)
	mdTiming(&b, r.Scenarios)
	if len(r.Benchmarks) > 0 {
		b.WriteString("## Benchmarks\n\nLatency in ms.\n\n")
		server := hasServerSide(r.Benchmarks)
		head := benchHeader(server)
		fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
		for _, x := range r.Benchmarks {
			fmt.Fprintf(&b, "| %s |\n", strings.Join(mdCells(benchRow(x, server)), " | "))
		}
		b.WriteString("\n")
	}
	mdSweeps(&b, r.Sweeps)
	mdCost(&b, r.Cost)
	if len(r.Anomalies) > 0 {
		b.WriteString("## Anomalies\n\n")
		for _, a := range r.Anomalies {
			fmt.Fprintf(&b, "- %s: %d %s: %s", mdCell(a.Scenario), len(a.IDs), mdCell(a.Kind), mdCell(elide(a.IDs, 50)))
			if a.Detail != "" {
				fmt.Fprintf(&b, " (%s)", mdCell(a.Detail))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	b.WriteString("## Trend\n\n")
	mdTrend(&b, r.Trend)
	b.WriteString("## Environment\n\n| | |\n|---|---|\n")
	for _, row := range envRows(r) {
		fmt.Fprintf(&b, "| %s | %s |\n", row[0], mdCell(row[1]))
	}
	return b.Bytes()
}

// mdSensitivity lists what each check that states its sensitivity could
// have caught, so that a GO says how rare a violation may be and still
// slip through.
func mdSensitivity(w io.Writer, ss []Scenario) {
	var rows []string
	for _, s := range ss {
		for _, c := range s.Checks {
			if c.Sensitivity != "" {
				rows = append(rows, fmt.Sprintf("| %s | %s | %s |\n", mdCell(s.Name), mdCell(c.Name), mdCell(c.Sensitivity)))
			}
		}
	}
	mdSection(w, "## Sensitivity\n\n| Scenario | Check | What it would have caught |\n|---|---|---|\n", rows)
}

// mdSection writes head and rows, nothing when there is no row.
func mdSection(w io.Writer, head string, rows []string) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprint(w, head)
	for _, row := range rows {
		fmt.Fprint(w, row)
	}
	fmt.Fprintln(w)
}

// mdTiming states how each scenario's intervals stand to production's,
// and the power of a scenario that repeated its fault episode.
func mdTiming(w io.Writer, ss []Scenario) {
	var rows []string
	for _, s := range ss {
		if s.Timing != "" || s.Episodes != "" {
			rows = append(rows, fmt.Sprintf("| %s | %s | %s |\n", mdCell(s.Name), mdCell(orNone(s.Timing)), mdCell(orNone(s.Episodes))))
		}
	}
	mdSection(w, "## Timing\n\n| Scenario | Timing against production | Episodes |\n|---|---|---|\n", rows)
}

func mdDetails(w io.Writer, title string, rs []CriterionResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(w, "## %s\n\n", title)
	for _, c := range rs {
		fmt.Fprintf(w, "### %s: %s %s\n\n", c.Criterion.ID, c.Criterion.Expr(), c.Criterion.Threshold())
		fmt.Fprintf(w, "- Why it matters: %s\n- Found: %s\n", mdLine(c.Criterion.Why), mdLine(c.Reason))
		if len(c.Evidence) > 0 {
			fmt.Fprintf(w, "- Evidence:\n")
			for _, e := range c.Evidence {
				fmt.Fprintf(w, "  - %s\n", mdLine(e))
			}
		}
		fmt.Fprintln(w)
	}
}

// TrendMarkdown renders a comparison as summary.md's trend section does,
// for `harness report --compare`.
func TrendMarkdown(t Trend) []byte {
	var b bytes.Buffer
	mdTrend(&b, &t)
	return b.Bytes()
}

func mdTrend(w io.Writer, t *Trend) {
	if t == nil {
		fmt.Fprint(w, "No previous run of this gate to compare with.\n\n")
		return
	}
	fmt.Fprintf(w, "Compared with run %s (%s).\n\n", t.PreviousID, t.PreviousVerdict)
	if len(t.Flipped) == 0 {
		fmt.Fprint(w, "No criterion changed verdict.\n\n")
	} else {
		fmt.Fprint(w, "Criteria that changed verdict:\n\n")
		for _, f := range t.Flipped {
			fmt.Fprintf(w, "- **%s** %s: %s → %s\n", mdCell(f.ID), mdCell(f.Expr), f.From, f.To)
		}
		fmt.Fprintln(w)
	}
	if len(t.Moved) == 0 {
		fmt.Fprint(w, "No metric moved beyond noise.\n\n")
	} else {
		fmt.Fprint(w, "| Metric | Previous | Now | Change | |\n|---|---|---|---|---|\n")
		for _, m := range t.Moved {
			fmt.Fprintf(w, "| %s |\n", strings.Join(mdCells(moveRow(m)), " | "))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Noise rule: %s.\n\n", t.Rule)
}

// benchHeader is the benchmark table's header; server adds the server's
// side (ServerCells).
func benchHeader(server bool) []string {
	h := []string{"Op", "Profile", "Target", "ops/s", "p50", "p90", "p99", "p99.9", "max", "round trips/op", "commands/op", "bytes/op out", "bytes/op in", "errors"}
	if server {
		h = append(h, "server commands/op", "server commands by name", "instances", "connections idle", "connections under load")
	}
	return h
}

// hasServerSide reports whether any benchmark has server-side accounting
// or connection counts (the table has their columns only then).
func hasServerSide(bs []Bench) bool {
	for _, x := range bs {
		if x.ServerCommandsPerOp != nil || x.Connections != nil {
			return true
		}
	}
	return false
}

// ServerCells are the server's side of a benchmark, "-" where not
// measured: commands per op, by name ("evalsha 1, publish 1, xadd 1",
// most first), the layer instances, and connections idle and under load.
func (x Bench) ServerCells() []string {
	cells := []string{"-", "-", "-", "-", "-"}
	if x.ServerCommandsPerOp != nil {
		cells[0] = fmtNum(*x.ServerCommandsPerOp)
	}
	if len(x.ServerByCommand) > 0 {
		names := make([]string, 0, len(x.ServerByCommand))
		for n := range x.ServerByCommand {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			a, b := x.ServerByCommand[names[i]], x.ServerByCommand[names[j]]
			return a > b || a == b && names[i] < names[j]
		})
		for i, n := range names {
			names[i] = n + " " + fmtNum(x.ServerByCommand[n])
		}
		cells[1] = strings.Join(names, ", ")
	}
	if c := x.Connections; c != nil {
		cells[2] = strconv.Itoa(c.Instances)
		for i, n := range []*int{c.Idle, c.Load} {
			if n != nil {
				cells[3+i] = strconv.Itoa(*n)
			}
		}
	}
	return cells
}

// benchRow is a benchmark's table row.
func benchRow(x Bench, server bool) []string {
	l := x.Latency
	row := []string{x.Op, x.Profile, x.Target, fmtNum(x.OpsPerSec), fmtNum(l.P50), fmtNum(l.P90), fmtNum(l.P99),
		fmtNum(l.P999), fmtNum(l.Max), fmtNum(x.RoundTripsPerOp), fmtNum(x.CommandsPerOp), fmtNum(x.BytesOutPerOp),
		fmtNum(x.BytesInPerOp), fmt.Sprint(x.Errors)}
	if server {
		row = append(row, x.ServerCells()...)
	}
	if x.Inconclusive != "" {
		row[0] += " (inconclusive: " + x.Inconclusive + ")"
	}
	return row
}

// moveRow is a moved metric's table row.
func moveRow(m Move) []string {
	change := fmtSigned(m.Delta, m.Unit)
	if m.DeltaPct != nil {
		change += " (" + fmtSigned(*m.DeltaPct, "%") + ")"
	}
	dir := "worse"
	if m.Better {
		dir = "better"
	}
	return []string{m.Metric, withUnit(m.Old, m.Unit), withUnit(m.New, m.Unit), change, dir}
}

func mdCells(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = mdCell(x)
	}
	return out
}

// mdCell makes s safe inside a table cell: one line, pipes escaped.
func mdCell(s string) string {
	return strings.ReplaceAll(mdLine(s), "|", `\|`)
}

// mdLine makes s one line.
func mdLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
