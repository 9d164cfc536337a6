package reports

import (
	"testing"

	"github.com/gonogo/harness/internal/exitcode"
)

// FuzzParseGates: whatever a gates file holds, ParseGates never panics,
// and every refusal is bad input (exit 3); what it accepts has named gates
// with criteria. Seeds: the shipped gates file and the test's; corpus:
// testdata/fuzz/FuzzParseGates.
func FuzzParseGates(f *testing.F) {
	f.Add(DefaultGatesYAML())
	f.Add([]byte(gateFile))
	f.Fuzz(func(t *testing.T, data []byte) {
		gs, err := ParseGates("f.yaml", data)
		if err != nil {
			if exitcode.Of(err) != exitcode.BadInput {
				t.Fatalf("refusal with exit %d; want %d: %v", exitcode.Of(err), exitcode.BadInput, err)
			}
			return
		}
		if len(gs.Gates) == 0 {
			t.Fatal("accepted a file without gates")
		}
		for _, g := range gs.Gates {
			if !nameRE.MatchString(g.Name) || len(g.Criteria) == 0 {
				t.Errorf("accepted gate %q with %d criteria", g.Name, len(g.Criteria))
			}
		}
	})
}
