package bench

import (
	"context"
	"encoding/json"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

func TestParseShard(t *testing.T) {
	for in, want := range map[string]Shard{"0/1": {0, 1}, "2/3": {2, 3}, "auto/3": {-1, 3}} {
		if got, err := ParseShard(in); err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "3", "3/3", "-1/3", "0/0", "0/1001", "x/2", "auto/0", "1/2/3"} {
		if _, err := ParseShard(in); err == nil {
			t.Errorf("%q: accepted", in)
		}
	}
}

// The shares of a load add up to the load.
func TestShardSplitAddsUp(t *testing.T) {
	l := Load{Workers: 10, Ops: 1003, Rate: 900, WarmupOps: 30}
	var ops, workers int64
	var rate float64
	for i := 0; i < 3; i++ {
		s := Shard{Index: i, Count: 3}.split(l)
		ops += s.Ops
		workers += int64(s.Workers)
		rate += s.Rate
	}
	if ops != l.Ops || workers != int64(l.Workers) || rate != l.Rate {
		t.Errorf("shares sum to %d ops, %d workers, %g/s; want %d, %d, %g", ops, workers, rate, l.Ops, l.Workers, l.Rate)
	}
}

// shareRows are one row per share whose histograms split samples at
// random: the merge must equal the histogram of them all.
func TestMergeOfSharesEqualsTheWhole(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	const n = 3
	whole := newHist()
	parts := make([]*hdrhistogram.Histogram, n)
	for i := range parts {
		parts[i] = newHist()
	}
	for i := 0; i < 30000; i++ {
		// Log-normal-ish latency: mostly around a millisecond, a long tail.
		d := time.Duration(float64(time.Millisecond) * (0.2 + rng.ExpFloat64()*rng.ExpFloat64()))
		recordHist(whole, d)
		recordHist(parts[rng.Intn(n)], d)
	}
	var files []ShardFile
	for i, h := range parts {
		enc, err := encodeHist(h)
		if err != nil {
			t.Fatal(err)
		}
		r := Result{Op: OpPublish, Profile: "hardened", Model: "open", Workers: 2, Ops: h.TotalCount(),
			OpsPerSec: float64(h.TotalCount()) / 10, RoundTripsPerOp: 1, CommandsPerOp: float64(i + 1), Latency: summarize(h), Hist: enc}
		// Through JSON, as the files travel.
		b, err := json.Marshal(NewShardFile(&Report{Results: []Result{r}}, Shard{Index: i, Count: n}, "t"))
		if err != nil {
			t.Fatal(err)
		}
		f, err := ParseShardFile("share", b)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	rep, err := Merge(files)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d rows; want 1", len(rep.Results))
	}
	got := rep.Results[0]
	if want := summarize(whole); got.Latency != want {
		t.Errorf("merged latency %+v; want the whole's %+v", got.Latency, want)
	}
	merged, err := hdrhistogram.Decode([]byte(got.Hist))
	if err != nil || !merged.Equals(whole) {
		t.Errorf("merged histogram differs from the whole's (%v)", err)
	}
	if got.Ops != whole.TotalCount() || got.Workers != 2*n {
		t.Errorf("ops %d, workers %d; want %d, %d", got.Ops, got.Workers, whole.TotalCount(), 2*n)
	}
	var wantCmds float64
	for i, h := range parts {
		wantCmds += float64(i+1) * float64(h.TotalCount())
	}
	if wantCmds /= float64(whole.TotalCount()); got.CommandsPerOp < wantCmds-1e-9 || got.CommandsPerOp > wantCmds+1e-9 {
		t.Errorf("commands per op %g; want the ops-weighted %g", got.CommandsPerOp, wantCmds)
	}
}

func TestMergeRefusesAnIncompleteOrMixedSet(t *testing.T) {
	file := func(i, n int, run string) ShardFile {
		return ShardFile{Schema: shardSchema, Shard: Shard{Index: i, Count: n}, Run: run, Report: &Report{}}
	}
	for name, tc := range map[string]struct {
		files []ShardFile
		want  string
	}{
		"missing share": {[]ShardFile{file(0, 3, "r"), file(2, 3, "r")}, "missing 1"},
		"twice":         {[]ShardFile{file(0, 2, "r"), file(0, 2, "r")}, "given twice"},
		"other run":     {[]ShardFile{file(0, 2, "r"), file(1, 2, "s")}, "does not belong"},
		"other count":   {[]ShardFile{file(0, 2, "r"), file(1, 3, "r")}, "does not belong"},
		"none":          {nil, "no shard files"},
		"no histogram": {[]ShardFile{{Schema: shardSchema, Shard: Shard{0, 1}, Run: "r",
			Report: &Report{Results: []Result{{Op: OpXAdd, Profile: Raw, Ops: 5}}}}}, "no histogram"},
	} {
		if _, err := Merge(tc.files); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v; want one saying %q", name, err, tc.want)
		}
	}
	for _, bad := range []string{`{`, `{"schema":2,"shard":{"index":0,"count":1},"report":{}}`,
		`{"schema":1,"shard":{"index":0,"count":1}}`, `{"schema":1,"shard":{"index":2,"count":2},"report":{}}`} {
		if _, err := ParseShardFile("f", []byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// Two shares against one Redis claim their indexes there, wait for each
// other, run half the load each, and merge into the whole load.
func TestSharesMeetOnTheTargetAndMerge(t *testing.T) {
	p := startRedis(t)
	run := "t" + strconv.FormatInt(time.Now().UnixNano(), 36)
	const ops = 400
	files := make([]ShardFile, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range files {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cfg := Config{Target: "url", URL: p.URL(), Preset: "baseline", Shard: &Shard{Index: -1, Count: 2}, ShardRun: run,
				ShardWait: 20 * time.Second, Load: Load{Workers: 4, Ops: ops}}
			rep, err := Run(context.Background(), cfg)
			errs[i] = err
			if rep != nil {
				files[i] = NewShardFile(rep, *cfg.Shard, run)
			}
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("share %d: %v", i, err)
		}
	}
	if a, b := files[0].Shard.Index, files[1].Shard.Index; a+b != 1 || a == b {
		t.Fatalf("claimed indexes %d and %d; want 0 and 1", a, b)
	}
	rep, err := Merge(files)
	if err != nil {
		t.Fatal(err)
	}
	x := rep.Results[0]
	if x.Ops != ops || x.Latency.Count != ops || x.Workers != 4 {
		t.Errorf("merged %d ops, %d samples, %d workers; want %d, %d, 4", x.Ops, x.Latency.Count, x.Workers, ops, ops)
	}
	if x.ServerCommandsPerOp != nil {
		t.Error("merged row has server-side counts; each share's INFO saw every share's traffic")
	}
	// A third share of the same run finds both places taken.
	_, err = Run(context.Background(), Config{Target: "url", URL: p.URL(), Preset: "baseline", Shard: &Shard{Index: -1, Count: 2},
		ShardRun: run, ShardWait: time.Second, Load: Load{Workers: 1, Ops: 10}})
	if err == nil || !strings.Contains(err.Error(), "claimed already") {
		t.Errorf("third share: err %v; want the run's places taken", err)
	}
}
