package history

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	r := NewRecorder()
	r.Add(Op{Client: "p1", Kind: Publish, Flow: "f1", EventID: "e2", Seq: 2, Call: 20, Return: 25, OK: true})
	r.Add(Op{Client: "p1", Kind: Publish, Flow: "f1", EventID: "e1", Seq: 1, Call: 10, Return: 15, OK: true})
	r.AddFault(Fault{Name: "down", Start: time.Second, End: 2 * time.Second})
	r.AddStall(Stall{Start: 3 * time.Second, End: 3*time.Second + 300*time.Millisecond})
	r.SetMeta("seed", "7")
	h := r.History()
	if h.Ops[0].EventID != "e1" {
		t.Fatalf("ops not sorted by call: got first %q; want e1", h.Ops[0].EventID)
	}
	path := filepath.Join(t.TempDir(), "sub", "history.json")
	if err := Save(path, h); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Ops) != 2 || got.Meta["seed"] != "7" || got.Faults[0].End != 2*time.Second || len(got.Stalls) != 1 || got.Stalls[0].End != 3300*time.Millisecond {
		t.Fatalf("round trip lost data: %+v", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
}

func TestLoadRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.json")
	os.WriteFile(path, []byte("{not json"), 0o644)
	if _, err := Load(path); err == nil {
		t.Fatal("Load accepted garbage")
	}
}
