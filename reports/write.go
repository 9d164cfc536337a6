package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/gonogo/harness/internal/history"
	"github.com/gonogo/harness/internal/redact"
)

// The files Write puts in a run's directory.
const (
	ReportJSON = "report.json"
	SummaryMD  = "summary.md"
	ReportHTML = "report.html"
	JUnitXML   = "junit.xml"
)

// Write renders r into dir/<r.ID>/ — report.json, summary.md, report.html and
// junit.xml, each written atomically, report.json first — and returns that
// directory. Before rendering, every string in r is redacted: redis URL
// passwords (including Environment.TargetURL's) and each literal secret are
// masked, so no rendering can leak them. A partial run (interrupted, no
// criteria yet) renders too.
func Write(dir string, r Run, secrets ...string) (string, error) {
	if !IsRunID(r.ID) {
		return "", fmt.Errorf("write report: run id %q is not of the form NewRunID makes", r.ID)
	}
	if r.Schema == 0 {
		r.Schema = SchemaVersion
	}
	r, err := Redacted(r, secrets...)
	if err != nil {
		return "", err
	}
	js, err := EncodeJSON(r)
	if err != nil {
		return "", err
	}
	ju, err := JUnit(r)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, r.ID)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{ReportJSON, js},
		{SummaryMD, Markdown(r)},
		{ReportHTML, HTML(r)},
		{JUnitXML, ju},
	} {
		if err := history.WriteFileAtomic(filepath.Join(out, f.name), f.data); err != nil {
			return "", fmt.Errorf("write report: %w", err)
		}
	}
	return out, nil
}

// EncodeJSON is report.json's content: r as indented JSON.
func EncodeJSON(r Run) ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return append(b, '\n'), nil
}

// Redacted returns a copy of r in which every string — field, list element
// or map key — has redis URL passwords and the given literal secrets masked,
// and Environment.TargetURL's password (whatever its scheme) is masked and
// also treated as a literal secret.
func Redacted(r Run, secrets ...string) (Run, error) {
	secrets = append(secrets, redact.Password(r.Environment.TargetURL))
	r.Environment.TargetURL = redact.URL(r.Environment.TargetURL)
	b, err := json.Marshal(r)
	if err != nil {
		return r, fmt.Errorf("redact report: %w", err)
	}
	var tree any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&tree); err != nil {
		return r, fmt.Errorf("redact report: %w", err)
	}
	b, err = json.Marshal(redactTree(tree, secrets))
	if err != nil {
		return r, fmt.Errorf("redact report: %w", err)
	}
	var out Run
	if err := json.Unmarshal(b, &out); err != nil {
		return r, fmt.Errorf("redact report: %w", err)
	}
	return out, nil
}

func redactTree(v any, secrets []string) any {
	switch x := v.(type) {
	case string:
		return redact.Text(x, secrets...)
	case []any:
		for i := range x {
			x[i] = redactTree(x[i], secrets)
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[redact.Text(k, secrets...)] = redactTree(e, secrets)
		}
		return out
	}
	return v
}

// WriteHgrm writes h's percentile distribution in HdrHistogram's .hgrm text
// format to path, atomically. valueScale divides recorded values for output
// (1000 turns µs into ms).
func WriteHgrm(path string, h *hdrhistogram.Histogram, valueScale float64) error {
	var b bytes.Buffer
	if _, err := h.PercentilesPrint(&b, 5, valueScale); err != nil {
		return fmt.Errorf("write histogram: %w", err)
	}
	if err := history.WriteFileAtomic(path, b.Bytes()); err != nil {
		return fmt.Errorf("write histogram: %w", err)
	}
	return nil
}

// HgrmName is a safe file name for a histogram of op in a scenario or
// benchmark: "bench-publish.hgrm".
func HgrmName(parts ...string) string {
	name := strings.Join(parts, "-")
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, name)
	return strings.TrimLeft(name, ".") + ".hgrm"
}
