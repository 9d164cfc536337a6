package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/reports"
)

// hostileSpec is a valid scenario file but for its name.
const hostileSpec = "name: %s\nworkload:\n  duration: 2s\n  publish: {rate: 10}\nchecks:\n  - name: lost\n"

// TestHostileInput: hostile and careless files given to run, gates list and
// report are bad input (exit 3) with one clear message, found before
// anything is written: no file appears anywhere under the test's root but
// those it made.
func TestHostileInput(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, root string) []string // the arguments
		want  string
	}{
		{"name with ../", func(t *testing.T, root string) []string {
			f := write(t, root, "evil.yaml", strings.Replace(hostileSpec, "%s", "../../escaped", 1))
			return []string{"run", "--scenario", f, "--out", filepath.Join(root, "out", "reports")}
		}, `evil.yaml:1: name "../../escaped": want lowercase letters`},
		{"absolute name", func(t *testing.T, root string) []string {
			f := write(t, root, "abs.yaml", strings.Replace(hostileSpec, "%s", "/tmp/escaped", 1))
			return []string{"run", "--scenario", f, "--out", filepath.Join(root, "out")}
		}, `name "/tmp/escaped": want`},
		{"file name with a space and no name", func(t *testing.T, root string) []string {
			f := write(t, root, "My Run.yaml", strings.Replace(hostileSpec, "name: %s\n", "", 1))
			return []string{"run", "--scenario", f, "--out", filepath.Join(root, "out")}
		}, `no name, and the file name "My Run" is not one`},
		{"tiny rate", func(t *testing.T, root string) []string {
			f := write(t, root, "r.yaml", strings.Replace(strings.Replace(hostileSpec, "%s", "r", 1), "rate: 10", "rate: 1e-10", 1))
			return []string{"run", "--scenario", f, "--out", filepath.Join(root, "out")}
		}, `r.yaml:4: workload.publish.rate 1e-10: want 0 or 0.1 to 100000 per second`},
		{"second document", func(t *testing.T, root string) []string {
			f := write(t, root, "m.yaml", strings.Replace(hostileSpec, "%s", "m", 1)+"---\nname: other\n")
			return []string{"run", "--scenario", f, "--out", filepath.Join(root, "out")}
		}, `m.yaml:7: a second YAML document (---): a file holds one`},
		{"scenario from /dev/zero", func(t *testing.T, root string) []string {
			return []string{"run", "--scenario", "/dev/zero", "--out", filepath.Join(root, "out")}
		}, `scenario /dev/zero: /dev/zero: file too large: more than 1 MiB`},
		{"gates from /dev/zero", func(t *testing.T, root string) []string {
			return []string{"gates", "list", "--gates", "/dev/zero"}
		}, `read gates file: /dev/zero: file too large: more than 1 MiB`},
		{"gates file is a directory", func(t *testing.T, root string) []string {
			return []string{"run", "--gate", "local", "--gates", root, "--out", filepath.Join(root, "out")}
		}, `is a directory`},
		{"gates file with a second document", func(t *testing.T, root string) []string {
			f := write(t, root, "g.yaml", string(reports.DefaultGatesYAML())+"---\nversion: 1\n")
			return []string{"gates", "list", "--gates", f}
		}, `g.yaml:`},
		{"saved history is /dev/zero", func(t *testing.T, root string) []string {
			dir := filepath.Join(root, "saved")
			write(t, dir, "scenario.yaml", strings.Replace(hostileSpec, "%s", "saved", 1))
			if err := os.Symlink("/dev/zero", filepath.Join(dir, "history.json")); err != nil {
				t.Fatal(err)
			}
			return []string{"report", dir}
		}, `history.json: file too large: more than 256 MiB`},
		{"saved report is /dev/zero", func(t *testing.T, root string) []string {
			dir := filepath.Join(root, "20261206T010203Z-abcd")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/dev/zero", filepath.Join(dir, reports.ReportJSON)); err != nil {
				t.Fatal(err)
			}
			return []string{"report", dir}
		}, `report.json: file too large: more than 64 MiB`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			args := tt.setup(t, root)
			before := files(t, root)
			code, _, errs := call(t, nil, args...)
			if code != exitcode.BadInput || !strings.Contains(errs, tt.want) {
				t.Errorf("got exit %d, stderr %q; want %d with %q", code, errs, exitcode.BadInput, tt.want)
			}
			if after := files(t, root); after != before {
				t.Errorf("files under the root: got\n%s\nwant only\n%s", after, before)
			}
		})
	}
}

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// files lists every path under root, one a line.
func files(t *testing.T, root string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		out = append(out, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, "\n")
}
