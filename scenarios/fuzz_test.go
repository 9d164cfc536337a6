package scenarios

import (
	"io/fs"
	"testing"
	"time"

	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
)

// FuzzParse: whatever a scenario file holds, Parse never panics, and every
// refusal is bad input (exit 3); what it accepts has a safe name and
// numbers within their limits. Seeds: the catalogue; corpus:
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, err := fs.Glob(catalogueFS, "catalogue/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("catalogue: %v", err)
	}
	for _, file := range files {
		b, err := catalogueFS.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(validSpec))
	k := DefaultKnown(profiles.Default())
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("f.yaml", data, k)
		if err != nil {
			if exitcode.Of(err) != exitcode.BadInput {
				t.Fatalf("refusal with exit %d; want %d: %v", exitcode.Of(err), exitcode.BadInput, err)
			}
			return
		}
		if !ValidName(s.Name) {
			t.Errorf("accepted name %q", s.Name)
		}
		if d := s.Workload.Duration.D(); d <= 0 || d > maxDuration {
			t.Errorf("accepted workload.duration %s", d)
		}
		if p := s.Workload.Publish; p.Rate < 0 || p.Payload > 1<<20 || p.Flows > 1000 {
			t.Errorf("accepted publish %+v", p)
		}
	})
}

// maxDuration is workload.duration's upper limit.
var maxDuration = func() time.Duration {
	l, _ := limitFor("workload.duration")
	return time.Duration(l.max)
}()
