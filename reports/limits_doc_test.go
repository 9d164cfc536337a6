package reports

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestGateLimitsDoc: docs/limits.md states every GateLimits range as the
// code has it.
func TestGateLimitsDoc(t *testing.T) {
	doc, err := os.ReadFile("../docs/limits.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range GateLimits {
		row := fmt.Sprintf("| `%s` | %g to %g |", l.Key, l.Min, l.Max)
		if l.Count {
			row = fmt.Sprintf("| `%s` | at most %g entries |", l.Key, l.Max)
		}
		if !strings.Contains(string(doc), row+"\n") {
			t.Errorf("docs/limits.md lacks the row %s", row)
		}
	}
}
