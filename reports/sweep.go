package reports

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gonogo/harness/internal/verdict"
)

// Growth is how a cost grows with a sweep's size: flat, linear (any
// growth up to proportional) or worse (faster than proportional).
type Growth string

// The growth classes, in order.
const (
	Flat   Growth = "flat"
	Linear Growth = "linear"
	Worse  Growth = "worse"
)

// Rank is the class as a number a criterion compares: 0 flat, 1 linear,
// 2 worse.
func (g Growth) Rank() int {
	switch g {
	case Flat:
		return 0
	case Linear:
		return 1
	}
	return 2
}

// The classification's thresholds: a fitted log-log slope below flatSlope
// is flat, up to linearSlope linear, above it worse; a series whose largest
// value is within flatRatio of its smallest is flat whatever its slope
// (noise on a near-constant cost).
const (
	flatSlope   = 0.25
	linearSlope = 1.25
	flatRatio   = 1.25
)

// Classify fits how ys grows with xs (xs positive and ascending) and
// returns its class and the fitted exponent: the larger of the log-log
// least-squares slopes over every point and over the upper half (at least
// the last two), so that a cost that only takes off at the largest sizes is
// not averaged away. Values at or below zero count as a thousandth of the
// largest. ok is false with fewer than two usable points.
func Classify(xs, ys []float64) (g Growth, slope float64, ok bool) {
	var lx, ly []float64
	top := 0.0
	for i := range xs {
		if i < len(ys) && xs[i] > 0 && !math.IsNaN(ys[i]) && !math.IsInf(ys[i], 0) {
			top = math.Max(top, ys[i])
		}
	}
	lo, hi := math.Inf(1), 0.0
	for i := range xs {
		if i >= len(ys) || xs[i] <= 0 || math.IsNaN(ys[i]) || math.IsInf(ys[i], 0) {
			continue
		}
		y := math.Max(ys[i], top*1e-3)
		lo, hi = math.Min(lo, y), math.Max(hi, y)
		lx, ly = append(lx, math.Log(xs[i])), append(ly, math.Log(y))
	}
	if len(lx) < 2 {
		return "", 0, false
	}
	if top <= 0 || hi <= lo*flatRatio {
		return Flat, 0, true
	}
	half := min(len(lx)-2, len(lx)/2)
	slope = math.Max(fitSlope(lx, ly), fitSlope(lx[half:], ly[half:]))
	switch {
	case slope < flatSlope:
		return Flat, slope, true
	case slope <= linearSlope:
		return Linear, slope, true
	}
	return Worse, slope, true
}

// fitSlope is the least-squares slope of y over x (0 when x does not vary).
func fitSlope(x, y []float64) float64 {
	n := float64(len(x))
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
		sxx += x[i] * x[i]
		sxy += x[i] * y[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// The fields of a sweep point.
const (
	FieldOpsPerSec      = "ops_per_sec"
	FieldP50            = "p50_ms"
	FieldP99            = "p99_ms"
	FieldP999           = "p999_ms"
	FieldRoundTrips     = "round_trips_per_op"
	FieldCommands       = "commands_per_op"
	FieldServerCommands = "server_commands_per_op"
	FieldBytesOut       = "bytes_out_per_op"
	FieldBytesIn        = "bytes_in_per_op"
	FieldErrors         = "errors"
	FieldRSS            = "rss_bytes"
	FieldRSSPerConn     = "rss_per_conn_bytes"
	FieldFDs            = "fds"
	FieldOutboxPeak     = "outbox_peak"
	FieldOverflow       = "overflow"
	FieldReplayed       = "replayed"
	FieldDrained        = "drained_ms"
)

// SweepFields are the fields a sweep point may have, in table order, with
// their column headings.
var SweepFields = []struct{ Name, Head string }{
	{FieldOpsPerSec, "ops/s"}, {FieldP50, "p50 ms"}, {FieldP99, "p99 ms"}, {FieldP999, "p99.9 ms"},
	{FieldRoundTrips, "RTT/op"}, {FieldCommands, "cmds/op"}, {FieldServerCommands, "server cmds/op"},
	{FieldBytesOut, "B/op out"}, {FieldBytesIn, "B/op in"}, {FieldErrors, "errors"},
	{FieldRSS, "RSS MB"}, {FieldRSSPerConn, "RSS/conn KB"}, {FieldFDs, "fds"},
	{FieldOutboxPeak, "outbox peak"}, {FieldOverflow, "overflow"}, {FieldReplayed, "replayed"},
	{FieldDrained, "drained ms"},
}

func isSweepField(name string) bool {
	for _, f := range SweepFields {
		if f.Name == name {
			return true
		}
	}
	return false
}

// Sweep is one op of one profile measured at each value of a swept size.
type Sweep struct {
	Param   string `json:"param"`
	Unit    string `json:"unit,omitempty"`
	Op      string `json:"op"`
	Profile string `json:"profile,omitempty"`
	// Promise is the growth DESIGN.md allows per field.
	Promise map[string]Growth `json:"promise,omitempty"`
	Points  []SweepPoint      `json:"points"`
}

// SweepPoint is one value of the sweep and what was measured there.
type SweepPoint struct {
	X            float64            `json:"x"`
	Values       map[string]float64 `json:"values"`
	Inconclusive string             `json:"inconclusive,omitempty"`
	// TimingOnly says the inconclusive reason concerns latency and
	// throughput only (an open loop that missed its rate): the point's
	// counts (round trips, commands, bytes, memory) still stand.
	TimingOnly bool `json:"timing_only,omitempty"`
}

// timingFields are the fields an open loop's missed rate makes
// untrustworthy.
var timingFields = []string{FieldOpsPerSec, FieldP50, FieldP99, FieldP999}

// missing is why field f of the sweep lacks evidence ("" when every point
// can be trusted for it).
func (s Sweep) missing(f string) string {
	for _, p := range s.Points {
		if p.Inconclusive != "" && (!p.TimingOnly || slices.Contains(timingFields, f)) {
			return fmt.Sprintf("sweep %s at %s %s: %s", s.title(), s.Param, fmtNum(p.X), p.Inconclusive)
		}
	}
	return ""
}

// series is the field's values over the points that have it.
func (s Sweep) series(field string) (xs, ys []float64) {
	for _, p := range s.Points {
		if v, ok := p.Values[field]; ok {
			xs, ys = append(xs, p.X), append(ys, v)
		}
	}
	return xs, ys
}

// GrowthOf classifies the field's growth over the sweep.
func (s Sweep) GrowthOf(field string) (Growth, float64, bool) {
	xs, ys := s.series(field)
	return Classify(xs, ys)
}

// GrowthLine is one field's fitted growth next to the promised one.
type GrowthLine struct {
	Field    string  `json:"field"`
	Measured Growth  `json:"measured"`
	Slope    float64 `json:"slope"`
	Promised Growth  `json:"promised,omitempty"`
	// Flagged is set when the measured growth is faster than promised.
	Flagged bool `json:"flagged,omitempty"`
}

// Growths classifies the promised fields and p99 latency, in field order.
func (s Sweep) Growths() []GrowthLine {
	var out []GrowthLine
	for _, f := range SweepFields {
		promised, has := s.Promise[f.Name]
		if !has && f.Name != FieldP99 {
			continue
		}
		g, slope, ok := s.GrowthOf(f.Name)
		if !ok {
			continue
		}
		out = append(out, GrowthLine{Field: f.Name, Measured: g, Slope: slope, Promised: promised,
			Flagged: has && g.Rank() > promised.Rank()})
	}
	return out
}

// title names the sweep in headings.
func (s Sweep) title() string {
	t := s.Op + " over " + s.Param
	if s.Profile != "" {
		t += " (" + s.Profile + ")"
	}
	return t
}

// fields are the sweep's fields present in any point, in table order.
func (s Sweep) fields() []string {
	var out []string
	for _, f := range SweepFields {
		for _, p := range s.Points {
			if _, ok := p.Values[f.Name]; ok {
				out = append(out, f.Name)
				break
			}
		}
	}
	return out
}

func fieldHead(name string) string {
	for _, f := range SweepFields {
		if f.Name == name {
			return f.Head
		}
	}
	return name
}

// fmtField formats a field's value in its column's unit.
func fmtField(name string, v float64) string {
	switch name {
	case FieldRSS:
		return fmt.Sprintf("%.1f", v/(1<<20))
	case FieldRSSPerConn:
		return fmt.Sprintf("%.1f", v/1024)
	case FieldRoundTrips, FieldCommands, FieldServerCommands:
		return fmt.Sprintf("%.2f", v)
	}
	return fmtNum(v)
}

// sweepRows is the sweep's table: a header and a row per point.
func sweepRows(s Sweep) (head []string, rows [][]string) {
	fs := s.fields()
	head = append([]string{s.Param}, make([]string, len(fs))...)
	for i, f := range fs {
		head[i+1] = fieldHead(f)
	}
	head = append(head, "note")
	for _, p := range s.Points {
		row := []string{fmtNum(p.X)}
		for _, f := range fs {
			if v, ok := p.Values[f]; ok {
				row = append(row, fmtField(f, v))
			} else {
				row = append(row, "-")
			}
		}
		rows = append(rows, append(row, p.Inconclusive))
	}
	return head, rows
}

// growthText says one field's growth: "round_trips_per_op: flat (slope
// 0.01; promised flat)", with "WORSE THAN PROMISED" when flagged.
func growthText(g GrowthLine) string {
	t := fmt.Sprintf("%s: %s (slope %.2f", g.Field, g.Measured, g.Slope)
	if g.Promised != "" {
		t += "; promised " + string(g.Promised)
	}
	t += ")"
	if g.Flagged {
		t += " — WORSE THAN PROMISED"
	}
	return t
}

// mdSweeps writes summary.md's sweep section.
func mdSweeps(w io.Writer, ss []Sweep) {
	if len(ss) == 0 {
		return
	}
	fmt.Fprint(w, "## Sweeps\n\nLatency in ms; growth fitted on a log-log scale (flat: slope < 0.25, linear: ≤ 1.25, worse above).\n\n")
	for _, s := range ss {
		fmt.Fprintf(w, "### %s\n\n", mdLine(s.title()))
		head, rows := sweepRows(s)
		fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(mdCells(head), " | "), strings.Repeat("---|", len(head)))
		for _, r := range rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(mdCells(r), " | "))
		}
		fmt.Fprintln(w)
		for _, g := range s.Growths() {
			fmt.Fprintf(w, "- %s\n", mdLine(growthText(g)))
		}
		fmt.Fprintln(w)
	}
}

// htmlSweeps writes report.html's sweep section: per param and op a log-x
// plot of each promised field (and p99) with a line per profile, then each
// sweep's table and growth lines.
func htmlSweeps(w io.Writer, ss []Sweep) {
	if len(ss) == 0 {
		return
	}
	fmt.Fprint(w, "<section>\n<h2>Sweeps</h2>\n<p>Latency in ms; x on a log scale; growth fitted on a log-log scale (flat: slope &lt; 0.25, linear: ≤ 1.25, worse above).</p>\n")
	type group struct {
		param, op string
		ss        []Sweep
	}
	var groups []group
	for _, s := range ss {
		i := slices.IndexFunc(groups, func(g group) bool { return g.param == s.Param && g.op == s.Op })
		if i < 0 {
			groups = append(groups, group{param: s.Param, op: s.Op})
			i = len(groups) - 1
		}
		groups[i].ss = append(groups[i].ss, s)
	}
	for _, g := range groups {
		fields := map[string]bool{FieldP99: true}
		for _, s := range g.ss {
			for f := range s.Promise {
				fields[f] = true
			}
		}
		names := make([]string, 0, len(fields))
		for f := range fields {
			names = append(names, f)
		}
		sort.Strings(names)
		for _, f := range names {
			var lines []plotLine
			for i, s := range g.ss {
				xs, ys := s.series(f)
				if len(xs) > 0 {
					lines = append(lines, plotLine{label: orNone(s.Profile), color: palette[i%len(palette)], xs: xs, ys: ys})
				}
			}
			if len(lines) > 0 {
				fmt.Fprint(w, logXPlot(fmt.Sprintf("%s: %s over %s", g.op, f, g.param), g.ss[0].Unit, f, lines))
			}
		}
	}
	for _, s := range ss {
		fmt.Fprintf(w, "<h3>%s</h3>\n<table>\n<tr>", esc(s.title()))
		head, rows := sweepRows(s)
		for _, h := range head {
			fmt.Fprintf(w, "<th>%s</th>", esc(h))
		}
		fmt.Fprint(w, "</tr>\n")
		for _, r := range rows {
			htmlRow(w, r, 0)
		}
		fmt.Fprint(w, "</table>\n")
		var lines []string
		for _, g := range s.Growths() {
			lines = append(lines, growthText(g))
		}
		htmlList(w, lines)
	}
	fmt.Fprint(w, "</section>\n")
}

// logXPlot draws lines over a log-scaled x axis (decades marked) and a
// linear y axis from 0, as an inline SVG.
func logXPlot(title, xUnit, yUnit string, lines []plotLine) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		plotW, plotH, plotW, plotH, esc(title))
	fmt.Fprintf(&b, "<title>%s</title>\n", esc(title))
	fmt.Fprintf(&b, `<text x="%d" y="18" text-anchor="end">%s</text>`+"\n", plotW-padR, esc(title))
	xMin, xMax, yMax := math.Inf(1), 0.0, 0.0
	for _, l := range lines {
		for i := range l.xs {
			xMin, xMax = math.Min(xMin, l.xs[i]), math.Max(xMax, l.xs[i])
			yMax = math.Max(yMax, l.ys[i])
		}
	}
	lo := math.Pow(10, math.Floor(math.Log10(math.Max(xMin, 1e-9))))
	hi := math.Pow(10, math.Ceil(math.Log10(math.Max(xMax, lo*10))))
	if hi <= lo {
		hi = lo * 10
	}
	yMax = niceCeil(math.Max(yMax*1.05, 1e-9))
	px := func(x float64) float64 {
		return padL + (math.Log10(math.Max(x, lo))-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))*innerW
	}
	py := func(y float64) float64 { return padTop + innerH - y/yMax*innerH }
	yStep := niceStep(yMax / 4)
	for y := 0.0; y <= yMax*1.0001; y += yStep {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`, padL, py(y), padL+innerW, py(y), gridColour)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-4, py(y)+4, axisNum(y))
	}
	for x := lo; x <= hi*1.0001; x *= 10 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`, px(x), padTop, px(x), padTop+innerH, gridColour)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(x), padTop+innerH+16, fmtNum(x))
	}
	fmt.Fprintf(&b, `<path d="M%d %d V%d H%d" fill="none" stroke="#000"/>`+"\n", padL, padTop, padTop+innerH, padL+innerW)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s (log scale)</text>`, padL+innerW/2, plotH-4, esc(xUnit))
	fmt.Fprintf(&b, `<text x="12" y="%d" text-anchor="middle" transform="rotate(-90 12 %d)">%s</text>`+"\n",
		padTop+innerH/2, padTop+innerH/2, esc(yUnit))
	lx := float64(padL)
	for _, l := range lines {
		var pts []string
		for i := range l.xs {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(l.xs[i]), py(l.ys[i])))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s at %s: %s</title></circle>`,
				px(l.xs[i]), py(l.ys[i]), l.color, esc(l.label), fmtNum(l.xs[i]), fmtNum(l.ys[i]))
		}
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", l.color, strings.Join(pts, " "))
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="14" x2="%.1f" y2="14" stroke="%s" stroke-width="2"/>`, lx, lx+16, l.color)
		fmt.Fprintf(&b, `<text x="%.1f" y="18">%s</text>`+"\n", lx+20, esc(l.label))
		lx += 28 + 6.5*float64(len(l.label))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// axisNum is a tick label short enough for the axis: 250k, 1.5M, 2G.
func axisNum(v float64) string {
	for _, u := range []struct {
		from, div float64
		suffix    string
	}{{1e9, 1e9, "G"}, {1e6, 1e6, "M"}, {1e4, 1e3, "k"}} {
		if math.Abs(v) >= u.from {
			return strconv.FormatFloat(v/u.div, 'g', 4, 64) + u.suffix
		}
	}
	return fmtNum(v)
}

// measureSweeps adds sweep:<param>:<op>:<field> for every field of every
// sweep of the run's profile (any profile when the run has none): Count
// the points, Value the value at the largest size, Max the largest value,
// Growth the class's rank. A sweep with an inconclusive point is missing
// evidence (for latency and throughput only, when the point only missed
// its rate).
func measureSweeps(r Run, m Measurements) {
	for _, s := range r.Sweeps {
		if r.Environment.Profile != "" && s.Profile != "" && s.Profile != r.Environment.Profile {
			continue
		}
		for _, f := range s.fields() {
			missing := s.missing(f)
			xs, ys := s.series(f)
			st := Stat{Count: int64(len(xs)), Value: ys[len(ys)-1], Max: slices.Max(ys)}
			g, slope, ok := Classify(xs, ys)
			ev := []string{fmt.Sprintf("sweep %s: %s at %s = %s", s.title(), f, s.Param, pairs(xs, ys))}
			if ok {
				st.Growth = float64(g.Rank())
				ev = append(ev, fmt.Sprintf("growth %s (log-log slope %.2f)", g, slope))
			}
			m["sweep:"+s.Param+":"+s.Op+":"+f] = Measurement{Stat: st, Missing: missing, Evidence: ev}
		}
	}
}

// pairs lists x→y pairs: "10→1, 100→1".
func pairs(xs, ys []float64) string {
	out := make([]string, len(xs))
	for i := range xs {
		out[i] = fmtNum(xs[i]) + "→" + fmtNum(ys[i])
	}
	return strings.Join(out, ", ")
}

// SweepGate is the gate name of a PromiseRun.
const SweepGate = "sweep"

// PromiseRun is the result model of a sweep run outside a gate (`harness
// bench --sweep --report`): its criteria are the design's promises, one
// per promised field of each sweep, growth ≤ the promised class; a sweep
// with an inconclusive point leaves its criteria INCONCLUSIVE (only those
// on latency and throughput when the point only missed its rate).
func PromiseRun(r Run) Run {
	r.Gate = SweepGate
	r.GateDescription = "every swept cost grows no faster than DESIGN.md promises"
	r.Criteria = nil
	var vs []verdict.Verdict
	for _, s := range r.Sweeps {
		for _, g := range s.Growths() {
			if g.Promised == "" {
				continue
			}
			missing := s.missing(g.Field)
			xs, ys := s.series(g.Field)
			c := CriterionResult{
				Criterion: Criterion{ID: orNone(s.Profile) + "." + s.Op + "." + g.Field, Metric: "sweep:" + s.Param + ":" + s.Op + ":" + g.Field,
					Aggregation: AggGrowth, Comparator: "<=", Bound: float64(g.Promised.Rank()), Unit: "(0 flat, 1 linear, 2 worse)",
					Why: fmt.Sprintf("DESIGN.md: %s of %s grows %s or slower with %s", g.Field, s.Op, g.Promised, s.Param)},
				Measured: float64(g.Measured.Rank()), Samples: int64(len(xs)),
				Margin:   float64(g.Promised.Rank() - g.Measured.Rank()),
				Evidence: []string{fmt.Sprintf("%s at %s = %s", g.Field, s.Param, pairs(xs, ys)), growthText(g)},
			}
			switch {
			case missing != "":
				c.Verdict, c.Reason = verdict.Inconclusive, missing
			case g.Flagged:
				c.Verdict, c.Reason = verdict.Fail, growthText(g)
			default:
				c.Verdict, c.Reason = verdict.Pass, growthText(g)
			}
			r.Criteria = append(r.Criteria, c)
			vs = append(vs, c.Verdict)
		}
	}
	r.Verdict = verdict.Fold(vs...).Gate(r.Interrupted)
	return r
}

// SweepsMarkdown is the sweeps' tables and growth lines as summary.md
// shows them (for a terminal too).
func SweepsMarkdown(ss []Sweep) []byte {
	var b strings.Builder
	mdSweeps(&b, ss)
	return []byte(b.String())
}
