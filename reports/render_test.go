package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"html"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gonogo/harness/internal/verdict"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s\n(run go test ./reports -update after checking the change)", name, got)
	}
}

// writeFixture writes the judged fixture, with its trend, into a temp dir
// and returns the run directory.
func writeFixture(t *testing.T) string {
	t.Helper()
	r := fixtureRun(t)
	tr := Compare(fixturePrevious(t), r)
	r.Trend = &tr
	dir, err := Write(t.TempDir(), r)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRenderingsMatchGoldenFiles(t *testing.T) {
	dir := writeFixture(t)
	for _, name := range []string{ReportJSON, SummaryMD, ReportHTML, JUnitXML} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "golden."+name, got)
	}
}

func TestSummaryFirstLineIsTheVerdict(t *testing.T) {
	got := string(Markdown(fixtureRun(t)))
	first, _, _ := strings.Cut(got, "\n")
	if want := "# NO-GO — release gate (2 of 7 criteria failed, 2 inconclusive)"; first != want {
		t.Errorf("first line: got %q; want %q", first, want)
	}
	for _, want := range []string{"### lost_proxy_down", "### recovered", "still serving from memory", "2 lost: evt-117, evt-118", "No previous run of this gate"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
}

func TestHTMLIsSelfContained(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(writeFixture(t), ReportHTML))
	if err != nil {
		t.Fatal(err)
	}
	page := strings.ToLower(string(b))
	for _, bad := range []string{"http://", "https://", "<script", "<link", "<img", "<iframe", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("report.html contains %q", bad)
		}
	}
	for _, want := range []string{"<svg", "<polyline", `fill="` + faultFill + `"`, "no-go — release gate", "evt-117"} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	// 2 scenarios with series, 2 plots each.
	if got := strings.Count(page, "<svg"); got != 4 {
		t.Errorf("got %d plots; want 4", got)
	}
}

// TestJUnitParses reads junit.xml back with encoding/xml and checks the
// elements and attributes the common JUnit schema requires.
func TestJUnitParses(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(writeFixture(t), JUnitXML))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		Message *string `xml:"message,attr"`
		Type    *string `xml:"type,attr"`
		Text    string  `xml:",chardata"`
	}
	type testcase struct {
		Name      *string   `xml:"name,attr"`
		Classname *string   `xml:"classname,attr"`
		Time      *string   `xml:"time,attr"`
		Failure   *result   `xml:"failure"`
		Error     *result   `xml:"error"`
		Skipped   *xml.Name `xml:"skipped"`
	}
	var doc struct {
		XMLName xml.Name `xml:"testsuites"`
		Suites  []struct {
			Name     *string    `xml:"name,attr"`
			Tests    *string    `xml:"tests,attr"`
			Failures *string    `xml:"failures,attr"`
			Errors   *string    `xml:"errors,attr"`
			Skipped  *string    `xml:"skipped,attr"`
			Time     *string    `xml:"time,attr"`
			Cases    []testcase `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("junit.xml does not parse: %v", err)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("got %d testsuites; want 1 (one per gate)", len(doc.Suites))
	}
	s := doc.Suites[0]
	attrs := map[string]*string{"name": s.Name, "tests": s.Tests, "failures": s.Failures, "errors": s.Errors, "skipped": s.Skipped, "time": s.Time}
	for k, v := range attrs {
		if v == nil {
			t.Errorf("testsuite lacks attribute %s", k)
		}
	}
	if t.Failed() {
		return
	}
	if *s.Name != "release" || *s.Tests != "7" || *s.Failures != "2" || *s.Errors != "2" || *s.Skipped != "0" {
		t.Errorf("testsuite name=%s tests=%s failures=%s errors=%s skipped=%s; want release 7 2 2 0", *s.Name, *s.Tests, *s.Failures, *s.Errors, *s.Skipped)
	}
	if _, err := strconv.ParseFloat(*s.Time, 64); err != nil {
		t.Errorf("testsuite time %q is not a number", *s.Time)
	}
	var failures int
	for _, c := range s.Cases {
		if c.Name == nil || c.Classname == nil || c.Time == nil {
			t.Errorf("testcase lacks name, classname or time: %+v", c)
			continue
		}
		for _, r := range []*result{c.Failure, c.Error} {
			if r != nil && (r.Message == nil || r.Type == nil || r.Text == "") {
				t.Errorf("testcase %s: failure/error without message, type or evidence", *c.Name)
			}
		}
		if c.Failure != nil {
			failures++
			if strings.HasPrefix(*c.Name, "lost_proxy_down") && !strings.Contains(c.Failure.Text, "evt-117") {
				t.Errorf("failure of %s does not carry the evidence: %q", *c.Name, c.Failure.Text)
			}
		}
	}
	if len(s.Cases) != 7 || failures != 2 {
		t.Errorf("got %d testcases, %d failures; want 7, 2", len(s.Cases), failures)
	}
}

// TestPasswordNeverLeaks renders a model whose target URL, command line,
// check evidence, anomaly and metric names all hold the password.
func TestPasswordNeverLeaks(t *testing.T) {
	r := fixtureRun(t)
	r.Scenarios[0].Checks[0].Evidence = append(r.Scenarios[0].Checks[0].Evidence, "dialled "+fixtureURL)
	r.Scenarios[0].Metrics["from "+fixtureURL] = Value(1)
	r.Anomalies[0].Detail = "while " + fixtureURL + " was down"
	r.Criteria[0].Reason = "redis://:" + secret + "@10.0.0.1:6379 " + secret
	tr := Compare(fixturePrevious(t), r)
	r.Trend = &tr
	dir, err := Write(t.TempDir(), r)
	if err != nil {
		t.Fatal(err)
	}
	h := hdrhistogram.New(1, 1_000_000, 3)
	_ = h.RecordValue(1234)
	if err := WriteHgrm(filepath.Join(dir, HgrmName("bench", "publish")), h, 1000); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Errorf("got %d files; want 5 (four renderings and a histogram)", len(entries))
	}
	forms := []string{secret, html.EscapeString(secret), strings.ReplaceAll(secret, "&", `\u0026`), "hunter2"}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range forms {
			if bytes.Contains(b, []byte(f)) {
				t.Errorf("%s contains the password (as %q)", e.Name(), f)
			}
		}
		if e.Name() != "bench-publish.hgrm" && !bytes.Contains(b, []byte("xxxxx")) {
			t.Errorf("%s shows no masked password; was the URL dropped instead of redacted?", e.Name())
		}
	}
}

// TestPartialRunRenders: an interrupted run with one scenario and nothing
// judged yet still renders, says INCOMPLETE and re-loads.
func TestPartialRunRenders(t *testing.T) {
	r := Run{ID: NewRunID(fixtureStart), Gate: "release", Started: fixtureStart, Interrupted: true,
		Scenarios: []Scenario{{Name: "basic", Series: Series{Latency: []LatencySeries{{Op: "publish"}}}}}}
	r.Judge(Gate{Name: "release", Criteria: fixtureGate(t).Criteria})
	if r.Verdict != verdict.Incomplete {
		t.Fatalf("verdict %s; want INCOMPLETE", r.Verdict)
	}
	dir, err := Write(t.TempDir(), r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Verdict != verdict.Incomplete || !back.Interrupted {
		t.Errorf("reloaded verdict %s interrupted %v; want INCOMPLETE true", back.Verdict, back.Interrupted)
	}
	md, _ := os.ReadFile(filepath.Join(dir, SummaryMD))
	if want := "# INCOMPLETE — release gate (run interrupted; 0 of 7 criteria judged)\n"; !strings.HasPrefix(string(md), want) {
		t.Errorf("summary starts %q; want %q", strings.SplitN(string(md), "\n", 2)[0], want)
	}
	// Nothing judged, nothing recorded: the zero Run renders as well.
	if _, err := Write(t.TempDir(), Run{ID: r.ID}); err != nil {
		t.Errorf("empty run: %v", err)
	}
}

func TestLoadRunRoundTrip(t *testing.T) {
	dir := writeFixture(t)
	got, err := LoadRun(filepath.Join(dir, ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	want, err := Redacted(fixtureRun(t))
	if err != nil {
		t.Fatal(err)
	}
	tr := Compare(fixturePrevious(t), fixtureRun(t))
	want.Trend = &tr
	// Positions in the gates file are not part of the report.
	for i := range want.Criteria {
		want.Criteria[i].Criterion.pos = ""
	}
	if !reflect.DeepEqual(got.Criteria, want.Criteria) || got.Verdict != want.Verdict || got.Environment.TargetURL != want.Environment.TargetURL {
		t.Errorf("reloaded run differs:\ngot  %+v\nwant %+v", got.Criteria, want.Criteria)
	}
	// Re-rendering from report.json alone gives the same files.
	if md, _ := os.ReadFile(filepath.Join(dir, SummaryMD)); !bytes.Equal(Markdown(got), md) {
		t.Error("summary.md re-rendered from report.json differs")
	}
	if page, _ := os.ReadFile(filepath.Join(dir, ReportHTML)); !bytes.Equal(HTML(got), page) {
		t.Error("report.html re-rendered from report.json differs")
	}
}

func TestLoadRunRejectsNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), ReportJSON)
	if err := os.WriteFile(path, []byte(`{"schema": 99, "id": "x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRun(path); err == nil || !strings.Contains(err.Error(), "schema 99") {
		t.Errorf("got %v; want a schema error", err)
	}
}

func TestWriteRejectsBadRunID(t *testing.T) {
	for _, id := range []string{"", "../x", "20261128T201500Z"} {
		if _, err := Write(t.TempDir(), Run{ID: id}); err == nil {
			t.Errorf("Write with id %q: got nil error", id)
		}
	}
}

func TestNewRunID(t *testing.T) {
	a := NewRunID(time.Date(2026, 11, 28, 20, 15, 0, 0, time.FixedZone("x", 3600)))
	if !strings.HasPrefix(a, "20261128T191500Z-") || !IsRunID(a) {
		t.Errorf("got %q; want 20261128T191500Z-<4 hex>", a)
	}
	b := NewRunID(time.Date(2026, 11, 28, 20, 15, 1, 0, time.UTC))
	if !(a < b) {
		t.Errorf("ids do not sort by time: %q !< %q", a, b)
	}
}

func TestWriteHgrm(t *testing.T) {
	h := hdrhistogram.New(1, 10_000_000, 3)
	for v := int64(1); v <= 1000; v++ {
		_ = h.RecordValue(v * 100) // 0.1 ms … 100 ms, in µs
	}
	path := filepath.Join(t.TempDir(), HgrmName("proxy_down", "publish/../x"))
	if filepath.Base(path) != "proxy_down-publish_.._x.hgrm" {
		t.Errorf("HgrmName: got %q", filepath.Base(path))
	}
	if err := WriteHgrm(path, h, 1000); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{"Value\tPercentile\tTotalCount", "#[Max     =      100.", "Total count    =         1000]"} {
		if !strings.Contains(got, want) {
			t.Errorf(".hgrm lacks %q:\n%s", want, got)
		}
	}
}

// TestExternalImplementationShown: a run against services reached by URL
// says so, and where, in every rendering's environment.
func TestExternalImplementationShown(t *testing.T) {
	r := fixtureRun(t)
	r.Environment.Implementation, r.Environment.Services = External, []string{"http://service-a:8080", "http://service-b:8080"}
	dir, err := Write(t.TempDir(), r)
	if err != nil {
		t.Fatal(err)
	}
	want := "external: http://service-a:8080, http://service-b:8080"
	for _, f := range []string{SummaryMD, ReportHTML, JUnitXML} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), ":&#47;&#47;", "://") // as HTML writes URLs
		if !strings.Contains(text, want) {
			t.Errorf("%s does not say %q", f, want)
		}
	}
}

// TestSensitivityRendered: a check's stated sensitivity gets its own table
// in summary.md and its line in report.html's check table.
func TestSensitivityRendered(t *testing.T) {
	r := fixtureRun(t)
	const sens = "judged 7000 events acknowledged on Redis and 6500 from memory: a violation rate of 1 in 2336 (Redis) and 1 in 2169 (memory) shows with 95 % probability"
	r.Scenarios[0].Checks = append(r.Scenarios[0].Checks, Check{Name: "lost", Verdict: verdict.Pass, Sensitivity: sens, Evidence: []string{"sensitivity: " + sens}})
	md := string(Markdown(r))
	if want := "## Sensitivity\n\n| Scenario | Check | What it would have caught |\n|---|---|---|\n| " + r.Scenarios[0].Name + " | lost | " + sens + " |\n"; !strings.Contains(md, want) {
		t.Errorf("summary.md lacks the sensitivity table %q", want)
	}
	if h := string(HTML(r)); !strings.Contains(h, html.EscapeString("sensitivity: "+sens)) {
		t.Errorf("report.html lacks the sensitivity line")
	}
}

// TestTimingRendered: a scenario's timing against production and its
// episodes appear in summary.md's timing table, on report.html's scenario
// line, as junit.xml properties and in report.json.
func TestTimingRendered(t *testing.T) {
	r := fixtureRun(t)
	const timing = "scaled (health_interval 200ms ×1/150, probe_interval 100ms ×1/2.5); ratios broken: health_interval/probe_interval 2 (production 120)"
	const episodes = "5 episodes, 0 failed: a defect that shows in 1 episode of 2 is missed with probability 3.1 %"
	r.Scenarios[0].Timing, r.Scenarios[0].Episodes = timing, episodes
	name := r.Scenarios[0].Name
	if md, want := string(Markdown(r)), "## Timing\n\n| Scenario | Timing against production | Episodes |\n|---|---|---|\n| "+name+" | "+timing+" | "+episodes+" |\n"; !strings.Contains(md, want) {
		t.Errorf("summary.md lacks the timing table %q", want)
	}
	h := string(HTML(r))
	for _, want := range []string{"Timing: " + html.EscapeString(timing) + ".", "Episodes: " + html.EscapeString(episodes) + "."} {
		if !strings.Contains(h, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	j, err := JUnit(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`name="timing:` + name + `"`, `name="episodes:` + name + `"`} {
		if !strings.Contains(string(j), want) {
			t.Errorf("junit.xml lacks the property %s", want)
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"timing":`) || !strings.Contains(string(b), `"episodes":`) {
		t.Errorf("report.json lacks timing or episodes")
	}
}

// TestServerSideRendered: benchmarks with server-side accounting and
// connection counts get their columns in summary.md and report.html;
// "-" marks what a row did not measure.
func TestServerSideRendered(t *testing.T) {
	r := fixtureRun(t)
	three, idle := 3.02, 19
	r.Benchmarks[0].ServerCommandsPerOp = &three
	r.Benchmarks[0].ServerByCommand = map[string]float64{"xadd": 1, "evalsha": 1, "publish": 1, "pexpire": 0.02}
	r.Benchmarks[0].Connections = &Connections{Instances: 1, Idle: &idle}
	cells := "3.02 | evalsha 1, publish 1, xadd 1, pexpire 0.02 | 1 | 19 | - |"
	md := string(Markdown(r))
	if !strings.Contains(md, "| server commands/op | server commands by name | instances | connections idle | connections under load |") ||
		!strings.Contains(md, cells) || !strings.Contains(md, "| - | - | - | - | - |") {
		t.Errorf("summary.md lacks the server columns or cells %q:\n%s", cells, md)
	}
	h := string(HTML(r))
	if !strings.Contains(h, "<th>server commands/op</th>") || !strings.Contains(h, "evalsha 1, publish 1, xadd 1, pexpire 0.02") {
		t.Errorf("report.html lacks the server columns")
	}
}
