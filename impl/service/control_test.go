package service

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestResetRanges: every numeric field of a reset accepts 0 (keep), its
// minimum and its maximum, and refuses one past either end and negatives,
// naming the field and its range; the names are the JSON fields.
func TestResetRanges(t *testing.T) {
	for _, f := range (Reset{}).ranges() {
		for _, c := range []struct {
			v  int64
			ok bool
		}{{0, true}, {f.min, true}, {f.max, true}, {f.max + 1, false}, {-1, false}, {f.min - 1, f.min == 1}} {
			var r Reset
			if err := json.Unmarshal([]byte(fmt.Sprintf(`{%q: %d}`, f.name, c.v)), &r); err != nil {
				t.Fatalf("%s %d: %v", f.name, c.v, err)
			}
			err := r.Validate()
			switch {
			case c.ok && err != nil:
				t.Errorf("%s %d: %v; want accepted", f.name, c.v, err)
			case !c.ok && err == nil:
				t.Errorf("%s %d accepted; want refused", f.name, c.v)
			case !c.ok && !strings.Contains(err.Error(), fmt.Sprintf("%s %d: want 0 (keep) or %d-%d", f.name, c.v, f.min, f.max)):
				t.Errorf("%s %d: %q; want the field and its range", f.name, c.v, err)
			}
		}
	}
}
