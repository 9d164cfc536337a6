package inputfile

import (
	"os"
	"strings"
	"testing"
)

// TestSizesDoc: docs/limits.md states each maximum file size as the code
// has it.
func TestSizesDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/limits.md")
	if err != nil {
		t.Fatal(err)
	}
	for what, max := range map[string]int64{
		"scenario file, gates file (YAML)":                      MaxYAML,
		"a saved run's `history.json`":                          MaxHistory,
		"a saved run's `report.json`":                           MaxReport,
		"a PEM file (`--ca-file`, `--cert-file`, `--key-file`)": MaxPEM,
	} {
		if row := "| " + what + " | " + Size(max) + " |\n"; !strings.Contains(string(doc), row) {
			t.Errorf("docs/limits.md lacks the row %q", row)
		}
	}
}
