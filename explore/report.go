package explore

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/history"
)

// The summary's files in Options.Out.
const (
	SummaryJSON = "summary.json"
	SummaryMD   = "summary.md"
)

func writeFile(path string, data []byte) error {
	if err := history.WriteFileAtomic(path, data); err != nil {
		return exitcode.Harnessf("explore: writing %s: %w", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return exitcode.Harnessf("explore: %w", err)
	}
	return writeFile(path, append(b, '\n'))
}

// writeSummary writes summary.json and summary.md.
func (x *explorer) writeSummary() error {
	if err := writeJSON(filepath.Join(x.o.Out, SummaryJSON), x.sum); err != nil {
		return err
	}
	var b strings.Builder
	x.sum.Write(&b)
	return writeFile(filepath.Join(x.o.Out, SummaryMD), []byte(b.String()))
}

// Write writes the summary as text (Markdown): what ran, what it covered,
// what failed and where the minimal files are.
func (s Summary) Write(w io.Writer) {
	verdict := "nothing failed"
	switch {
	case len(s.Failures) > 0:
		verdict = fmt.Sprintf("%d distinct failure(s)", len(s.Failures))
	case s.Errors > 0:
		verdict = fmt.Sprintf("%d run(s) could not be judged", s.Errors)
	}
	if s.Interrupted {
		verdict += " (INTERRUPTED: what was found so far)"
	}
	fmt.Fprintf(w, "explore %s, seed %d: %s\n\n", s.Profile, s.Seed, verdict)
	fmt.Fprintf(w, "- %d generated runs, %d shrink runs in %s (budget %s); %d not runnable on this target, %d not judged\n",
		s.Runs, s.ShrinkRuns, s.Elapsed.Round(time.Second), s.Budget, s.Unavailable, s.Errors)
	fmt.Fprintf(w, "- fault kinds covered (%d): %s\n", len(s.Kinds), counts(s.Kinds))
	fmt.Fprintf(w, "- fault pairs covered (%d): %s\n", len(s.Pairs), counts(s.Pairs))
	if len(s.Ignored) > 0 {
		fmt.Fprintf(w, "- failed checks not explored (--checks): %s\n", counts(s.Ignored))
	}
	for _, l := range s.ErrorLines {
		fmt.Fprintf(w, "- not judged: %s\n", l)
	}
	if len(s.Failures) == 0 {
		return
	}
	fmt.Fprintf(w, "\n| checker | found after | runs needed | minimal: faults | workload | status | file |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, f := range s.Failures {
		status := fmt.Sprintf("%s (%d steps, %d runs)", f.Status(), f.ShrinkSteps, f.ShrinkRuns)
		if f.Seen > 1 {
			status += fmt.Sprintf("; seen in %d runs", f.Seen)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s |\n", f.Checker, f.FoundAfter.Round(time.Second), f.FoundAtRun+1,
			f.FaultList(), f.Duration, status, f.File)
	}
	fmt.Fprintln(w)
	for _, f := range s.Failures {
		fmt.Fprintf(w, "- %s: %s\n  replay: %s\n", f.Checker, firstLine(f.Error), f.Replay)
	}
}

// counts lists "name×n" sorted by name.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
