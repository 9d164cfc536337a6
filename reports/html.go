package reports

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/gonogo/harness/internal/verdict"
)

// css is report.html's whole style sheet.
const css = `body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 16px 40px;color:#222}
.banner{padding:14px 18px;margin:16px 0;border-radius:6px;color:#fff}
.banner h1{margin:0;font-size:24px}.banner p{margin:4px 0 0}
.v-GO,.PASS{background:#2e7d32}.v-NO-GO,.FAIL{background:#c62828}
.v-INCONCLUSIVE,.INCONCLUSIVE{background:#ef6c00}.v-INCOMPLETE,.INCOMPLETE{background:#6d4c41}
table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
span.PASS,span.FAIL,span.INCONCLUSIVE,span.INCOMPLETE{color:#fff;padding:1px 6px;border-radius:3px;font-size:12px}
code{background:#f3f3f3;padding:0 3px}ul.evidence{margin:2px 0 10px}
svg.plot{display:block;margin:6px 0;font-size:11px;background:#fff;border:1px solid #eee}
svg text.fault{fill:#a33}section.scenario{border-top:1px solid #ddd;margin-top:18px}`

// HTML renders report.html: one self-contained page (inline CSS and SVG, no
// scripts, nothing fetched) with the verdict banner, criteria, per-scenario
// plots with fault windows shaded, benchmarks, anomalies, trend and
// environment.
func HTML(r Run) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>%s</title>\n<style>\n%s\n</style>\n</head>\n<body>\n",
		esc(Headline(r)), css)
	fmt.Fprintf(&b, "<header class=\"banner v-%s\">\n<h1>%s</h1>\n", esc(string(r.Verdict)), esc(Headline(r)))
	if r.GateDescription != "" {
		fmt.Fprintf(&b, "<p>Gate %s: %s.</p>\n", esc(r.Gate), esc(r.GateDescription))
	}
	if r.Interrupted {
		b.WriteString("<p><strong>The run was interrupted; the results below are partial.</strong></p>\n")
	}
	b.WriteString("</header>\n")

	b.WriteString("<section>\n<h2>Criteria</h2>\n")
	if len(r.Criteria) == 0 {
		b.WriteString("<p>No criteria were judged.</p>\n")
	} else {
		b.WriteString("<table>\n<tr><th>Criterion</th><th>Threshold</th><th>Measured</th><th>Margin</th><th>Result</th></tr>\n")
		for _, c := range r.Criteria {
			fmt.Fprintf(&b, "<tr><td><strong>%s</strong> <code>%s</code><br><small>%s</small></td><td>%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td>%s</td></tr>\n",
				esc(c.Criterion.ID), esc(c.Criterion.Expr()), esc(c.Criterion.Why), esc(c.Criterion.Threshold()),
				esc(fmtMeasured(c)), esc(fmtMargin(c)), badge(c.Verdict))
		}
		b.WriteString("</table>\n")
	}
	b.WriteString("</section>\n")
	htmlDetails(&b, "Failed criteria", criteriaWith(r.Criteria, verdict.Fail))
	htmlDetails(&b, "Inconclusive criteria", criteriaWith(r.Criteria, verdict.Inconclusive))

	for _, s := range r.Scenarios {
		htmlScenario(&b, r, s)
	}
	if len(r.Benchmarks) > 0 {
		b.WriteString("<section>\n<h2>Benchmarks</h2>\n<p>Latency in ms.</p>\n<table>\n<tr>")
		server := hasServerSide(r.Benchmarks)
		for _, h := range benchHeader(server) {
			fmt.Fprintf(&b, "<th>%s</th>", h)
		}
		b.WriteString("</tr>\n")
		for _, x := range r.Benchmarks {
			htmlRow(&b, benchRow(x, server), 3)
		}
		b.WriteString("</table>\n</section>\n")
	}
	htmlSweeps(&b, r.Sweeps)
	htmlCost(&b, r.Cost)
	if len(r.Anomalies) > 0 {
		b.WriteString("<section>\n<h2>Anomalies</h2>\n<ul>\n")
		for _, a := range r.Anomalies {
			fmt.Fprintf(&b, "<li><strong>%s</strong>: %d %s", esc(a.Scenario), len(a.IDs), esc(a.Kind))
			if a.Detail != "" {
				fmt.Fprintf(&b, " (%s)", esc(a.Detail))
			}
			fmt.Fprintf(&b, "<br><code>%s</code></li>\n", esc(elide(a.IDs, 200)))
		}
		b.WriteString("</ul>\n</section>\n")
	}
	htmlTrend(&b, r.Trend)
	b.WriteString("<section>\n<h2>Environment</h2>\n<table>\n")
	for _, row := range envRows(r) {
		fmt.Fprintf(&b, "<tr><th>%s</th><td>%s</td></tr>\n", esc(row[0]), esc(row[1]))
	}
	b.WriteString("</table>\n</section>\n</body>\n</html>\n")
	return b.Bytes()
}

func htmlScenario(w io.Writer, r Run, s Scenario) {
	fmt.Fprintf(w, "<section class=\"scenario\">\n<h2>Scenario %s %s</h2>\n", esc(s.Name), badge(s.Verdict))
	fmt.Fprintf(w, "<p>Profile %s, %s.", esc(orNone(s.Profile)), esc(fmtMs(s.DurationMs)))
	if s.Inconclusive != "" {
		fmt.Fprintf(w, " Inconclusive: %s.", esc(s.Inconclusive))
	}
	if s.Timing != "" {
		fmt.Fprintf(w, " Timing: %s.", esc(s.Timing))
	}
	if s.Episodes != "" {
		fmt.Fprintf(w, " Episodes: %s.", esc(s.Episodes))
	}
	for _, f := range s.Faults {
		fmt.Fprintf(w, " Fault <strong>%s</strong> from %s to %s.", esc(f.Name), esc(fmtMs(f.StartMs)), esc(fmtMs(f.EndMs)))
	}
	fmt.Fprint(w, "</p>\n")
	if len(s.Checks) > 0 {
		fmt.Fprint(w, "<table>\n<tr><th>Check</th><th>Guarantee</th><th>Result</th><th>Evidence</th></tr>\n")
		for _, c := range s.Checks {
			g := ""
			if c.Guarantee > 0 {
				g = fmt.Sprint(c.Guarantee)
			}
			ev := c.Evidence
			if c.Error != "" {
				ev = append([]string{c.Error}, ev...)
			}
			fmt.Fprintf(w, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", esc(c.Name), g, badge(c.Verdict), esc(strings.Join(ev, "; ")))
		}
		fmt.Fprint(w, "</table>\n")
	}
	if len(s.Series.Latency)+len(s.Series.Throughput) > 0 {
		fmt.Fprint(w, latencyPlot(s), throughputPlot(s))
	}
	var lines []string
	for _, a := range r.Anomalies {
		if a.Scenario == s.Name {
			lines = append(lines, fmt.Sprintf("%d %s: %s", len(a.IDs), a.Kind, elide(a.IDs, 20)))
		}
	}
	if len(lines) > 0 {
		fmt.Fprint(w, "<p>Anomalies:</p>\n")
		htmlList(w, lines)
	}
	fmt.Fprint(w, "</section>\n")
}

func htmlDetails(w io.Writer, title string, rs []CriterionResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(w, "<section>\n<h2>%s</h2>\n", esc(title))
	for _, c := range rs {
		fmt.Fprintf(w, "<h3>%s: <code>%s %s</code></h3>\n<p>%s<br>Found: %s</p>\n", esc(c.Criterion.ID),
			esc(c.Criterion.Expr()), esc(c.Criterion.Threshold()), esc(c.Criterion.Why), esc(c.Reason))
		htmlList(w, c.Evidence)
	}
	fmt.Fprint(w, "</section>\n")
}

func htmlTrend(w io.Writer, t *Trend) {
	fmt.Fprint(w, "<section>\n<h2>Trend</h2>\n")
	if t == nil {
		fmt.Fprint(w, "<p>No previous run of this gate to compare with.</p>\n</section>\n")
		return
	}
	fmt.Fprintf(w, "<p>Compared with run %s (%s).</p>\n", esc(t.PreviousID), badge(t.PreviousVerdict))
	if len(t.Flipped) == 0 {
		fmt.Fprint(w, "<p>No criterion changed verdict.</p>\n")
	} else {
		fmt.Fprint(w, "<table>\n<tr><th>Criterion</th><th>Was</th><th>Now</th></tr>\n")
		for _, f := range t.Flipped {
			fmt.Fprintf(w, "<tr><td><strong>%s</strong> <code>%s</code></td><td>%s</td><td>%s</td></tr>\n", esc(f.ID), esc(f.Expr), badge(f.From), badge(f.To))
		}
		fmt.Fprint(w, "</table>\n")
	}
	if len(t.Moved) == 0 {
		fmt.Fprint(w, "<p>No metric moved beyond noise.</p>\n")
	} else {
		fmt.Fprint(w, "<table>\n<tr><th>Metric</th><th>Previous</th><th>Now</th><th>Change</th><th></th></tr>\n")
		for _, m := range t.Moved {
			htmlRow(w, moveRow(m), 1)
		}
		fmt.Fprint(w, "</table>\n")
	}
	fmt.Fprintf(w, "<p><small>Noise rule: %s.</small></p>\n</section>\n", esc(t.Rule))
}

// htmlRow writes a table row; cells from index num on are numeric.
func htmlRow(w io.Writer, cells []string, num int) {
	fmt.Fprint(w, "<tr>")
	for i, c := range cells {
		if i >= num {
			fmt.Fprintf(w, "<td class=\"num\">%s</td>", esc(c))
		} else {
			fmt.Fprintf(w, "<td>%s</td>", esc(c))
		}
	}
	fmt.Fprint(w, "</tr>\n")
}

func htmlList(w io.Writer, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprint(w, "<ul class=\"evidence\">\n")
	for _, it := range items {
		fmt.Fprintf(w, "<li>%s</li>\n", esc(it))
	}
	fmt.Fprint(w, "</ul>\n")
}

func badge(v verdict.Verdict) string {
	return fmt.Sprintf("<span class=\"%s\">%s</span>", esc(string(v)), esc(orNone(string(v))))
}

// esc escapes s for HTML text and attributes, and breaks "://" so that no
// text in the page (a redacted target URL, say) reads as a link to fetch.
func esc(s string) string {
	return strings.ReplaceAll(html.EscapeString(s), "://", ":&#47;&#47;")
}
