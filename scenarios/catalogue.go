package scenarios

import (
	"embed"
	"errors"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/inputfile"
)

// catalogueFS holds the scenario files the binary carries.
//
//go:embed catalogue/*.yaml
var catalogueFS embed.FS

// catalogueDir is where the embedded scenario files are, and the
// directory in the File of a catalogue spec.
const catalogueDir = "catalogue"

// Catalogue lists the names of the embedded scenarios, sorted.
func Catalogue() []string {
	entries, _ := fs.ReadDir(catalogueFS, "catalogue")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// isPath reports whether ref names a file rather than a catalogue entry.
func isPath(ref string) bool {
	return strings.ContainsRune(ref, os.PathSeparator) || strings.HasSuffix(ref, ".yaml") || strings.HasSuffix(ref, ".yml")
}

// Load reads and validates one scenario: ref is a catalogue name ("basic")
// or a path to a YAML file.
func Load(ref string, k Known) (Spec, error) {
	if isPath(ref) {
		b, err := inputfile.Read(ref, inputfile.MaxYAML)
		if err != nil {
			return Spec{}, exitcode.Configf("scenario %s: %w", ref, err)
		}
		return Parse(ref, b, k)
	}
	file := path.Join(catalogueDir, ref+".yaml")
	b, err := catalogueFS.ReadFile(file)
	if err != nil {
		return Spec{}, exitcode.Configf("unknown scenario %q (catalogue: %s; or pass a path to a .yaml file)", ref, strings.Join(Catalogue(), ", "))
	}
	return Parse(file, b, k)
}

// LoadAll loads and validates every ref (the whole catalogue when refs is
// empty). It reports all invalid files at once, before anything runs.
func LoadAll(refs []string, k Known) ([]Spec, error) {
	if len(refs) == 0 {
		refs = Catalogue()
	}
	var specs []Spec
	var errs []error
	seen := map[string]bool{}
	for _, r := range refs {
		s, err := Load(r, k)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[s.Name] {
			errs = append(errs, exitcode.Configf("scenario %q selected twice", s.Name))
			continue
		}
		seen[s.Name] = true
		specs = append(specs, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, exitcode.Config(err)
	}
	return specs, nil
}
