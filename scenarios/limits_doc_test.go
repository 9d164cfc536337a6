package scenarios

import (
	"os"
	"strings"
	"testing"
)

// TestLimitsDoc: docs/limits.md carries the limits table as the code has
// it. On failure it prints the table to paste after the marker.
func TestLimitsDoc(t *testing.T) {
	doc, err := os.ReadFile("../docs/limits.md")
	if err != nil {
		t.Fatal(err)
	}
	want := "<!-- scenario limits -->\n\n" + limitsMarkdown()
	if !strings.Contains(string(doc), want) {
		t.Errorf("docs/limits.md does not carry the scenario limits as scenarios/limits.go has them; want after its marker:\n%s", want)
	}
}
