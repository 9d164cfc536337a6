package target

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestCleanStale: only a directory whose recorded owner is gone is
// removed; a live owner's, one without an owner file, a file and other
// names are left alone.
func TestCleanStale(t *testing.T) {
	tmp := t.TempDir()
	mk := func(name, owner string) string {
		t.Helper()
		d := filepath.Join(tmp, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(owner), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	live := mk(tempPrefix+"live", "")
	if err := writeOwner(live); err != nil {
		t.Fatal(err)
	}
	start, err := startTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := os.Readlink("/proc/self/ns/pid")
	// This pid, but another start time: the pid was reused, its run is gone.
	reused := mk(tempPrefix+"reused", fmt.Sprintf("pid %d\nstart %d\npidns %s\n", os.Getpid(), start+1, ns))
	// A pid no process has (above pid_max).
	gone := mk(tempPrefix+"gone", fmt.Sprintf("pid %d\nstart 1\npidns %s\n", 1<<23, ns))
	noOwner := mk(tempPrefix+"legacy", "")
	otherNS := mk(tempPrefix+"otherns", fmt.Sprintf("pid %d\nstart 1\npidns pid:[1]\n", 1<<23))
	garbage := mk(tempPrefix+"garbage", "pid x\n")
	notOurs := mk("other-prefix", fmt.Sprintf("pid %d\nstart 1\npidns %s\n", 1<<23, ns))
	file := filepath.Join(tmp, tempPrefix+"file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	removed, unknown, err := cleanStale(tmp)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{gone, reused}; !slices.Equal(removed, want) {
		t.Errorf("removed %v; want %v", removed, want)
	}
	slices.Sort(unknown)
	if want := []string{garbage, noOwner, otherNS}; !slices.Equal(unknown, want) {
		t.Errorf("unknown %v; want %v", unknown, want)
	}
	for _, p := range []string{live, noOwner, otherNS, garbage, notOurs, file} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v; want it left alone", p, err)
		}
	}
	for _, p := range []string{gone, reused} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there (%v); want it removed", p, err)
		}
	}
}

// TestStartProcessRecordsOwner: a process target's directory names this
// process as its owner, so no clean removes it while the run lives.
func TestStartProcessRecordsOwner(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	p := start(t, ProcessOptions{})
	known, alive := ownerAlive(p.Dir())
	if !known || !alive {
		t.Fatalf("owner of %s: known %v alive %v; want this live process", p.Dir(), known, alive)
	}
	removed, _, err := cleanStale(filepath.Dir(p.Dir()))
	if err != nil || slices.Contains(removed, p.Dir()) {
		t.Fatalf("cleanStale removed %v (%v): a live run's directory", removed, err)
	}
}
