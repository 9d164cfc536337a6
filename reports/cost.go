package reports

import (
	"bytes"
	"fmt"
	"strings"
)

// Cost is what the expected traffic costs (harness cost), as a gate with
// the cost benchmark measured it: the traffic, each profile's measured
// costs, and the projection for each profile and plan. Plan is the plan
// the gate's cost criteria are judged against.
type Cost struct {
	Traffic  string        `json:"traffic"`
	Plan     string        `json:"plan"`
	Profiles []CostProfile `json:"profiles"`
	Rows     []CostRow     `json:"rows"`
	// Inconclusive, when set, says why nothing could be measured.
	Inconclusive string `json:"inconclusive,omitempty"`
}

// CostProfile is one profile's measured costs: a publish's commands as
// the client sent them and as the server executed them, one idle
// instance's commands per second (server's count, else the client's) over
// IdleWindowMs, and its connections idle and after the measured ops.
type CostProfile struct {
	Profile         string   `json:"profile"`
	PublishClient   float64  `json:"publish_client_commands"`
	PublishServer   *float64 `json:"publish_server_commands,omitempty"`
	IdlePerSec      float64  `json:"idle_commands_per_sec"`
	IdleWindowMs    float64  `json:"idle_window_ms"`
	ConnectionsIdle *int     `json:"connections_idle,omitempty"`
	ConnectionsLoad *int     `json:"connections_under_load,omitempty"`
}

// CostRow is a profile's traffic under one plan.
type CostRow struct {
	Profile          string   `json:"profile"`
	Plan             string   `json:"plan"`
	Basis            string   `json:"basis"` // server or client
	CommandsPerSec   float64  `json:"commands_per_sec"`
	CommandsPerMonth float64  `json:"commands_per_month"`
	IdlePerMonth     float64  `json:"idle_commands_per_month"`
	USDMonth         *float64 `json:"usd_month,omitempty"`
	IdleUSDMonth     *float64 `json:"idle_usd_month,omitempty"`
	Quota            string   `json:"quota"`
	DaysToQuota      *float64 `json:"days_to_quota,omitempty"`
	OverRate         bool     `json:"over_rate,omitempty"`
	Connections      *int     `json:"connections,omitempty"`
	ConnectionCap    int64    `json:"connection_cap,omitempty"`
}

// CostBench is the benchmark name that makes a gate measure and project
// the cost of its traffic (Run.Cost).
const CostBench = "cost"

// costFields are the metrics cost:<field> a criterion may name: for the
// run's profile, under Cost.Plan where a plan matters.
var costFields = []string{"idle_commands_per_sec", "connections_idle", "connections_under_load",
	"publish_server_commands", "commands_per_month", "days_to_quota", "connections_share"}

// costMeasurements adds cost:<field> for profile (any profile when empty)
// to m; a field not measured is missing evidence with the reason.
func costMeasurements(m Measurements, c *Cost, profile string) {
	missing := func(why string) {
		for _, f := range costFields {
			m["cost:"+f] = Measurement{Missing: why}
		}
	}
	switch {
	case c == nil:
		missing("the cost benchmark did not run")
		return
	case c.Inconclusive != "":
		missing("cost: " + c.Inconclusive)
		return
	}
	var p *CostProfile
	for i := range c.Profiles {
		if profile == "" || c.Profiles[i].Profile == profile {
			p = &c.Profiles[i]
			break
		}
	}
	if p == nil {
		missing("cost: profile " + profile + " was not measured")
		return
	}
	var row *CostRow
	for i := range c.Rows {
		if c.Rows[i].Profile == p.Profile && c.Rows[i].Plan == c.Plan {
			row = &c.Rows[i]
		}
	}
	ev := []string{fmt.Sprintf("cost of %s: %s commands/s idle over %s ms, publish %s sent / %s executed", p.Profile,
		fmtNum(p.IdlePerSec), fmtNum(p.IdleWindowMs), fmtNum(p.PublishClient), optNum(p.PublishServer))}
	put := func(field string, v *float64, why string) {
		if v == nil {
			m["cost:"+field] = Measurement{Missing: "cost: " + why, Evidence: ev}
			return
		}
		m["cost:"+field] = Measurement{Stat: Value(*v), Evidence: ev}
	}
	idle := p.IdlePerSec
	put("idle_commands_per_sec", &idle, "")
	put("connections_idle", intF(p.ConnectionsIdle), "CLIENT LIST not answered")
	put("connections_under_load", intF(p.ConnectionsLoad), "CLIENT LIST not answered")
	put("publish_server_commands", p.PublishServer, "INFO commandstats not answered")
	if row == nil {
		for _, f := range []string{"commands_per_month", "days_to_quota", "connections_share"} {
			put(f, nil, "plan "+c.Plan+" not projected")
		}
		return
	}
	ev = append(ev, fmt.Sprintf("under %s (%s basis): %s commands/month, quota %s", row.Plan, row.Basis, fmtNum(row.CommandsPerMonth), row.Quota))
	month := row.CommandsPerMonth
	put("commands_per_month", &month, "")
	put("days_to_quota", row.DaysToQuota, "plan "+row.Plan+" has no known command quota ("+row.Quota+")")
	var share *float64
	if row.Connections != nil && row.ConnectionCap > 0 {
		s := float64(*row.Connections) / float64(row.ConnectionCap)
		share = &s
	}
	put("connections_share", share, "plan "+row.Plan+" states no connection cap, or connections were not counted")
}

func intF(n *int) *float64 {
	if n == nil {
		return nil
	}
	f := float64(*n)
	return &f
}

func optNum(f *float64) string {
	if f == nil {
		return "-"
	}
	return fmtNum(*f)
}

func optUSD(f *float64) string {
	if f == nil {
		return "unknown"
	}
	return fmt.Sprintf("%.2f", *f)
}

// costTables are the cost section's two tables (head, rows) for the
// renderings: measured costs per profile, projections per plan.
func costTables(c *Cost) (measured, projected [][]string) {
	measured = [][]string{{"profile", "publish cmds sent", "publish cmds executed", "idle cmds/s", "idle window ms", "connections idle", "connections after ops"}}
	for _, p := range c.Profiles {
		measured = append(measured, []string{p.Profile, fmtNum(p.PublishClient), optNum(p.PublishServer), fmtNum(p.IdlePerSec),
			fmtNum(p.IdleWindowMs), optNum(intF(p.ConnectionsIdle)), optNum(intF(p.ConnectionsLoad))})
	}
	projected = [][]string{{"profile", "plan", "basis", "cmds/s", "cmds/month", "of which idle", "USD/month", "idle USD/month", "quota", "cmds/s cap", "connections (cap)"}}
	for _, r := range c.Rows {
		rate := "ok"
		if r.OverRate {
			rate = "OVER"
		}
		conns := optNum(intF(r.Connections))
		if r.ConnectionCap > 0 {
			conns += fmt.Sprintf(" (%d)", r.ConnectionCap)
		}
		projected = append(projected, []string{r.Profile, r.Plan, r.Basis, fmtNum(r.CommandsPerSec), fmtNum(r.CommandsPerMonth),
			fmtNum(r.IdlePerMonth), optUSD(r.USDMonth), optUSD(r.IdleUSDMonth), r.Quota, rate, conns})
	}
	return measured, projected
}

// mdCost writes the cost section in Markdown.
func mdCost(b *bytes.Buffer, c *Cost) {
	if c == nil {
		return
	}
	fmt.Fprintf(b, "## Cost\n\nTraffic: %s. Criteria judged under plan %s.\n\n", mdCell(c.Traffic), mdCell(c.Plan))
	if c.Inconclusive != "" {
		fmt.Fprintf(b, "Not measured: %s\n\n", mdCell(c.Inconclusive))
		return
	}
	measured, projected := costTables(c)
	for _, t := range [][][]string{measured, projected} {
		fmt.Fprintf(b, "| %s |\n|%s\n", strings.Join(t[0], " | "), strings.Repeat("---|", len(t[0])))
		for _, row := range t[1:] {
			fmt.Fprintf(b, "| %s |\n", strings.Join(mdCells(row), " | "))
		}
		b.WriteString("\n")
	}
}

// htmlCost writes the cost section in HTML.
func htmlCost(b *bytes.Buffer, c *Cost) {
	if c == nil {
		return
	}
	fmt.Fprintf(b, "<section>\n<h2>Cost</h2>\n<p>Traffic: %s. Criteria judged under plan %s.</p>\n", esc(c.Traffic), esc(c.Plan))
	if c.Inconclusive != "" {
		fmt.Fprintf(b, "<p>Not measured: %s</p>\n</section>\n", esc(c.Inconclusive))
		return
	}
	measured, projected := costTables(c)
	for _, t := range [][][]string{measured, projected} {
		b.WriteString("<table>\n<tr>")
		for _, h := range t[0] {
			fmt.Fprintf(b, "<th>%s</th>", esc(h))
		}
		b.WriteString("</tr>\n")
		for _, row := range t[1:] {
			htmlRow(b, row, 3)
		}
		b.WriteString("</table>\n")
	}
	b.WriteString("</section>\n")
}
