package reports

import (
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/gonogo/harness/internal/verdict"
)

// The JUnit XML elements CI tools read (the common schema: testsuites /
// testsuite / testcase / failure, error, skipped).
type (
	junitSuites struct {
		XMLName  xml.Name     `xml:"testsuites"`
		Name     string       `xml:"name,attr"`
		Tests    int          `xml:"tests,attr"`
		Failures int          `xml:"failures,attr"`
		Errors   int          `xml:"errors,attr"`
		Skipped  int          `xml:"skipped,attr"`
		Time     string       `xml:"time,attr"`
		Suites   []junitSuite `xml:"testsuite"`
	}
	junitSuite struct {
		Name       string          `xml:"name,attr"`
		Tests      int             `xml:"tests,attr"`
		Failures   int             `xml:"failures,attr"`
		Errors     int             `xml:"errors,attr"`
		Skipped    int             `xml:"skipped,attr"`
		Time       string          `xml:"time,attr"`
		Timestamp  string          `xml:"timestamp,attr,omitempty"`
		Properties []junitProperty `xml:"properties>property,omitempty"`
		Cases      []junitCase     `xml:"testcase"`
	}
	junitProperty struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	junitCase struct {
		Name      string       `xml:"name,attr"`
		Classname string       `xml:"classname,attr"`
		Time      string       `xml:"time,attr"`
		Failure   *junitResult `xml:"failure,omitempty"`
		Error     *junitResult `xml:"error,omitempty"`
	}
	junitResult struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
)

// JUnit renders junit.xml: one testsuite for the run's gate, one testcase
// per criterion. A failed criterion is a <failure> and an inconclusive one
// an <error>, each carrying the reason as message and the evidence as text.
func JUnit(r Run) ([]byte, error) {
	secs := fmt.Sprintf("%.3f", r.Finished.Sub(r.Started).Seconds())
	gate := r.Gate
	if gate == "" {
		gate = "gate"
	}
	s := junitSuite{
		Name:      gate,
		Time:      secs,
		Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
	}
	for _, row := range append([][2]string{{"Verdict", string(r.Verdict)}}, envRows(r)...) {
		s.Properties = append(s.Properties, junitProperty{Name: strings.ToLower(strings.ReplaceAll(row[0], " ", "_")), Value: row[1]})
	}
	for _, sc := range r.Scenarios {
		if sc.Timing != "" {
			s.Properties = append(s.Properties, junitProperty{Name: "timing:" + sc.Name, Value: sc.Timing})
		}
		if sc.Episodes != "" {
			s.Properties = append(s.Properties, junitProperty{Name: "episodes:" + sc.Name, Value: sc.Episodes})
		}
	}
	for _, c := range r.Criteria {
		tc := junitCase{
			Name:      c.Criterion.ID + ": " + c.Criterion.Expr() + " " + c.Criterion.Threshold(),
			Classname: "gonogo." + gate,
			Time:      "0",
		}
		res := &junitResult{Message: c.Reason, Type: string(c.Verdict), Text: junitText(c)}
		switch c.Verdict {
		case verdict.Pass:
		case verdict.Fail:
			tc.Failure = res
			s.Failures++
		default:
			tc.Error = res
			s.Errors++
		}
		s.Cases = append(s.Cases, tc)
	}
	s.Tests = len(s.Cases)
	all := junitSuites{Name: "gonogo " + gate, Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Time: secs, Suites: []junitSuite{s}}
	b, err := xml.MarshalIndent(all, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode junit: %w", err)
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}

// junitText is the body of a failure or error: why the criterion matters,
// what was found and the evidence.
func junitText(c CriterionResult) string {
	lines := []string{"why: " + c.Criterion.Why, "found: " + c.Reason}
	for _, e := range c.Evidence {
		lines = append(lines, "evidence: "+e)
	}
	return strings.Join(lines, "\n")
}
