package reports

import (
	"fmt"
	"math"
	"strings"
)

// plotLine is one line of a plot: x in ms since the scenario's base time.
type plotLine struct {
	label  string
	color  string
	dashed bool
	xs, ys []float64
}

// palette colours the lines of a plot, one per op kind.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#7f7f7f"}

const (
	plotW, plotH                    = 720, 240
	padL, padR, padTop, padBottom   = 64, 16, 30, 34
	innerW, innerH                  = plotW - padL - padR, plotH - padTop - padBottom
	faultFill, errColor, gridColour = "#f4cccc", "#d62728", "#e5e5e5"
)

// svgPlot draws lines over time as an inline SVG with axes, ticks, a legend
// and the fault windows shaded. The x axis (seconds) spans at least spanMs,
// so a scenario's plots share one time axis; y starts at 0.
func svgPlot(title, yUnit string, lines []plotLine, faults []Fault, spanMs float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		plotW, plotH, plotW, plotH, esc(title))
	fmt.Fprintf(&b, "<title>%s</title>\n", esc(title))
	xMax, yMax := spanMs, 0.0
	points := 0
	for _, l := range lines {
		for i := range l.xs {
			xMax = math.Max(xMax, l.xs[i])
			yMax = math.Max(yMax, l.ys[i])
			points++
		}
	}
	for _, f := range faults {
		xMax = math.Max(xMax, f.EndMs)
	}
	xMax = niceCeil(math.Max(xMax/1000, 1)) // seconds
	yMax = niceCeil(math.Max(yMax*1.05, 1e-9))
	if yMax <= 1e-9 {
		yMax = 1
	}
	px := func(ms float64) float64 { return padL + ms/1000/xMax*innerW }
	py := func(y float64) float64 { return padTop + innerH - y/yMax*innerH }
	for _, f := range faults {
		x0, x1 := px(math.Max(f.StartMs, 0)), px(math.Min(f.EndMs, xMax*1000))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="0.7"><title>fault %s</title></rect>`+"\n",
			x0, padTop, math.Max(x1-x0, 1), innerH, faultFill, esc(f.Name))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="fault">%s</text>`+"\n", x0+2, padTop+11, esc(f.Name))
	}
	yStep := niceStep(yMax / 4)
	for y := 0.0; y <= yMax*1.0001; y += yStep {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`, padL, py(y), padL+innerW, py(y), gridColour)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-4, py(y)+4, fmtNum(y))
	}
	xStep := niceStep(xMax / 6)
	for x := 0.0; x <= xMax*1.0001; x += xStep {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#000"/>`, px(x*1000), padTop+innerH, px(x*1000), padTop+innerH+4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(x*1000), padTop+innerH+16, fmtNum(x))
	}
	fmt.Fprintf(&b, `<path d="M%d %d V%d H%d" fill="none" stroke="#000"/>`+"\n", padL, padTop, padTop+innerH, padL+innerW)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">time (s)</text>`, padL+innerW/2, plotH-4)
	fmt.Fprintf(&b, `<text x="12" y="%d" text-anchor="middle" transform="rotate(-90 12 %d)">%s</text>`+"\n",
		padTop+innerH/2, padTop+innerH/2, esc(yUnit))
	if points == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">no samples</text>`+"\n", padL+innerW/2, padTop+innerH/2)
	}
	lx := float64(padL)
	for _, l := range lines {
		dash := ""
		if l.dashed {
			dash = ` stroke-dasharray="5 3"`
		}
		var pts []string
		for i := range l.xs {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(l.xs[i]), py(l.ys[i])))
		}
		if len(pts) == 1 {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`, px(l.xs[0]), py(l.ys[0]), l.color)
		} else if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5"%s points="%s"/>`+"\n", l.color, dash, strings.Join(pts, " "))
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="14" x2="%.1f" y2="14" stroke="%s" stroke-width="2"%s/>`, lx, lx+16, l.color, dash)
		fmt.Fprintf(&b, `<text x="%.1f" y="18">%s</text>`+"\n", lx+20, esc(l.label))
		lx += 28 + 6.5*float64(len(l.label))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// niceCeil rounds x up to a multiple of a nice step.
func niceCeil(x float64) float64 {
	s := niceStep(x / 4)
	return math.Ceil(x/s) * s
}

// latencyPlot draws p99 (solid) and p50 (dashed) latency per op kind.
func latencyPlot(s Scenario) string {
	var lines []plotLine
	for i, ls := range s.Series.Latency {
		c := palette[i%len(palette)]
		p99 := plotLine{label: ls.Op + " p99", color: c}
		p50 := plotLine{label: ls.Op + " p50", color: c, dashed: true}
		for _, p := range ls.Points {
			p99.xs, p99.ys = append(p99.xs, p.TMs), append(p99.ys, p.P99)
			p50.xs, p50.ys = append(p50.xs, p.TMs), append(p50.ys, p.P50)
		}
		lines = append(lines, p99, p50)
	}
	return svgPlot(s.Name+": latency over time", "latency (ms)", lines, s.Faults, s.DurationMs)
}

// throughputPlot draws successful ops/s per op kind, and failed ops/s dashed red.
func throughputPlot(s Scenario) string {
	var lines []plotLine
	for i, rs := range s.Series.Throughput {
		lines = append(lines, rateLine(rs, rs.Op+" ok/s", palette[i%len(palette)], false))
	}
	for _, rs := range s.Series.Errors {
		lines = append(lines, rateLine(rs, rs.Op+" errors/s", errColor, true))
	}
	return svgPlot(s.Name+": throughput over time", "ops/s", lines, s.Faults, s.DurationMs)
}

func rateLine(rs RateSeries, label, color string, dashed bool) plotLine {
	l := plotLine{label: label, color: color, dashed: dashed}
	for _, p := range rs.Points {
		l.xs, l.ys = append(l.xs, p.TMs), append(l.ys, p.PerSec)
	}
	return l
}
