package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/counter"
)

// maxShards bounds --shard's N.
const maxShards = 1000

// Shard is one share of a run's load: Index of Count, 0 ≤ Index < Count.
// Index -1 claims an index from the target (auto): the first share to
// INCR the run's claim key gets 0, and so on.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// ParseShard reads i/N (0 ≤ i < N ≤ 1000) or auto/N.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(b)
	if !ok || err != nil || n < 1 || n > maxShards {
		return Shard{}, fmt.Errorf("shard %q: want i/N or auto/N with 1 ≤ N ≤ %d", s, maxShards)
	}
	if a == "auto" {
		return Shard{Index: -1, Count: n}, nil
	}
	i, err := strconv.Atoi(a)
	if err != nil || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("shard %q: index must be 0 to %d (or auto)", s, n-1)
	}
	return Shard{Index: i, Count: n}, nil
}

// shardRunRE is what a --shard-run name may be.
var shardRunRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// String is the shard as --shard takes it.
func (sh Shard) String() string {
	if sh.Index < 0 {
		return "auto/" + strconv.Itoa(sh.Count)
	}
	return strconv.Itoa(sh.Index) + "/" + strconv.Itoa(sh.Count)
}

// split is this share's part of l: the rate and the op count divided by
// the share count (the first shares take the remainder of the ops), the
// workers too (at least one each).
func (sh Shard) split(l Load) Load {
	n := int64(sh.Count)
	l.Rate /= float64(n)
	if l.Ops > 0 {
		l.Ops = l.Ops/n + b2i(int64(sh.Index) < l.Ops%n)
		l.Ops = max(l.Ops, 1)
	}
	if l.WarmupOps > 0 {
		l.WarmupOps = max(l.WarmupOps/n, 1)
	}
	if l.Workers > 0 {
		l.Workers = max((l.Workers+sh.Count-1-sh.Index)/sh.Count, 1)
	}
	return l
}

// share is steps with each load split for sh.
func share(steps []Step, sh Shard) []Step {
	out := slices.Clone(steps)
	for i := range out {
		out[i].Load = sh.split(out[i].Load)
	}
	return out
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Shares that meet on the target: each claims an index (auto) and then
// waits, polling every shardPoll, until Count shares are ready, so that
// their loads overlap. The keys expire after shardKeyTTL.
const (
	shardPoll   = 500 * time.Millisecond
	shardKeyTTL = 30 * time.Minute
	// DefaultShardWait is how long a share waits for the others.
	DefaultShardWait = time.Minute
)

// shardCommands is what meeting costs a metered target at most.
func shardCommands(wait time.Duration) int64 { return 6 + int64(wait/shardPoll) + 1 }

// meet claims the share's index when it is auto and waits for every
// share, on keys gonogo:shard:<run>:… that expire after shardKeyTTL.
func (s *session) meet(ctx context.Context, run string, wait time.Duration) error {
	sh := s.cfg.Shard
	var hooks []redis.Hook
	if s.guard != nil {
		hooks = []redis.Hook{s.guard}
	}
	rdb, err := impl.NewClient(impl.Config{URL: s.tg.URL(), TLS: s.tg.TLS(), Hooks: hooks, PoolSize: 1},
		func(o *redis.Options) { o.MaxRetries = -1 })
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx = counter.WithOp(ctx, "shard")
	// Outside the run's own key prefix (a url target's is random per
	// run), so that every share finds it; the keys expire.
	key := "gonogo:shard:" + run
	incr := func(k string) (int64, error) {
		cctx, cancel := context.WithTimeout(ctx, meterCallTimeout)
		defer cancel()
		pipe := rdb.TxPipeline()
		n := pipe.Incr(cctx, k)
		pipe.Expire(cctx, k, shardKeyTTL)
		if _, err := pipe.Exec(cctx); err != nil {
			return 0, err
		}
		return n.Val(), nil
	}
	if sh.Index < 0 {
		n, err := incr(key + ":claimed")
		if err != nil {
			return fmt.Errorf("shard: claim an index: %w", err)
		}
		if n > int64(sh.Count) {
			return fmt.Errorf("shard: %d shares of run %q claimed already (of %d): use a new --shard-run", n-1, run, sh.Count)
		}
		sh.Index = int(n - 1)
	}
	if _, err := incr(key + ":ready"); err != nil {
		return fmt.Errorf("shard: ready: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		cctx, cancel := context.WithTimeout(ctx, meterCallTimeout)
		n, err := rdb.Get(cctx, key+":ready").Int()
		cancel()
		switch {
		case err != nil:
			return fmt.Errorf("shard: wait for the others: %w", err)
		case n >= sh.Count:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("shard: %d of %d shares ready after %s", n, sh.Count, wait)
		}
		select {
		case <-time.After(shardPoll):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// encodeHist is h in HdrHistogram's compressed V2 form (base64), "" for
// nil.
func encodeHist(h *hdrhistogram.Histogram) (string, error) {
	if h == nil {
		return "", nil
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	return string(b), err
}

// ShardFile is what one share writes: its place, its run name and its
// report, each row with its latency histogram.
type ShardFile struct {
	Schema int     `json:"schema"`
	Shard  Shard   `json:"shard"`
	Run    string  `json:"run"`
	Report *Report `json:"report"`
}

// shardSchema is the version of ShardFile this harness writes and reads.
const shardSchema = 1

// NewShardFile wraps a share's report.
func NewShardFile(rep *Report, sh Shard, run string) ShardFile {
	return ShardFile{Schema: shardSchema, Shard: sh, Run: run, Report: rep}
}

// ParseShardFile reads a share's file.
func ParseShardFile(name string, data []byte) (ShardFile, error) {
	var f ShardFile
	if err := json.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("%s: not a shard file: %w", name, err)
	}
	switch {
	case f.Schema != shardSchema:
		return f, fmt.Errorf("%s: shard file schema %d, this harness reads %d", name, f.Schema, shardSchema)
	case f.Report == nil:
		return f, fmt.Errorf("%s: shard file without a report", name)
	case f.Shard.Count < 1 || f.Shard.Count > maxShards || f.Shard.Index < 0 || f.Shard.Index >= f.Shard.Count:
		return f, fmt.Errorf("%s: shard %d/%d out of range", name, f.Shard.Index, f.Shard.Count)
	}
	return f, nil
}

// Merge merges the shares of one run into one report: per row (op,
// profile, model, sweep point) the latency histograms are merged (not
// averaged) and the percentiles taken from the merge; counts, errors and
// throughput are summed (the shares ran at the same time); per-op
// accounting is weighted by ops. Server-side counts are dropped (each
// share's INFO saw every share's traffic). A share missing, given twice,
// or of another run or share count is an error; a row without a
// histogram too.
func Merge(files []ShardFile) (*Report, error) {
	if len(files) == 0 {
		return nil, errors.New("merge: no shard files")
	}
	n, run := files[0].Shard.Count, files[0].Run
	seen := map[int]bool{}
	for _, f := range files {
		switch {
		case f.Shard.Count != n || f.Run != run:
			return nil, fmt.Errorf("merge: share %s of run %q does not belong with %d shares of run %q", f.Shard, f.Run, n, run)
		case seen[f.Shard.Index]:
			return nil, fmt.Errorf("merge: share %s given twice", f.Shard)
		}
		seen[f.Shard.Index] = true
	}
	if len(seen) != n {
		var missing []string
		for i := 0; i < n; i++ {
			if !seen[i] {
				missing = append(missing, strconv.Itoa(i))
			}
		}
		return nil, fmt.Errorf("merge: %d of %d shares of run %q; missing %s", len(seen), n, run, strings.Join(missing, ", "))
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Shard.Index < files[j].Shard.Index })
	first := files[0].Report
	out := &Report{Target: first.Target, Kind: first.Kind, TLS: first.TLS, RTT: first.RTT, Started: first.Started,
		Plan: first.Plan, Sweep: first.Sweep, CPUs: first.CPUs, ClientProcs: first.ClientProcs, EventRate: first.EventRate}
	type acc struct {
		row               Result
		hist              *hdrhistogram.Histogram
		rt, cmds, out, in float64
		by                map[string]float64
	}
	var order []string
	rows := map[string]*acc{}
	var profiles []string
	for _, f := range files {
		r := f.Report
		out.Started = minTime(out.Started, r.Started)
		out.Elapsed = max(out.Elapsed, r.Elapsed)
		for _, w := range r.Warnings {
			out.Warnings = append(out.Warnings, "share "+f.Shard.String()+": "+w)
		}
		for _, x := range r.Results {
			if x.Hist == "" && x.Ops > 0 {
				return nil, fmt.Errorf("merge: share %s: row %s/%s has no histogram (not written with --shard)", f.Shard, x.Op, x.Profile)
			}
			k := rowKey(x)
			a := rows[k]
			if a == nil {
				a = &acc{row: Result{Op: x.Op, Profile: x.Profile, Target: x.Target, Model: x.Model, Point: x.Point,
					Baseline: "", FirstErr: x.FirstErr}, hist: newHist(), by: map[string]float64{}}
				rows[k] = a
				order = append(order, k)
				if x.Profile != Raw && !contains(profiles, x.Profile) {
					profiles = append(profiles, x.Profile)
				}
			}
			if x.Hist != "" {
				h, err := hdrhistogram.Decode([]byte(x.Hist))
				if err != nil {
					return nil, fmt.Errorf("merge: share %s: row %s/%s: histogram: %w", f.Shard, x.Op, x.Profile, err)
				}
				if dropped := a.hist.Merge(h); dropped > 0 {
					return nil, fmt.Errorf("merge: share %s: row %s/%s: %d samples outside the histogram's range", f.Shard, x.Op, x.Profile, dropped)
				}
			}
			m := &a.row
			m.Workers += x.Workers
			m.Ops += x.Ops
			m.Errors += x.Errors
			m.Elapsed = max(m.Elapsed, x.Elapsed)
			m.OpsPerSec += x.OpsPerSec
			m.Offered += x.Offered
			m.OfferedRate += x.OfferedRate
			m.Late += x.Late
			m.Dropped += x.Dropped
			m.Dials += x.Dials
			m.ConnInitCmds += x.ConnInitCmds
			m.RedisErrors += x.RedisErrors
			m.Delivered += x.Delivered
			m.Expected += x.Expected
			if m.FirstErr == "" {
				m.FirstErr = x.FirstErr
			}
			m.inconclusiveFrom(x, "share "+f.Shard.String()+": ")
			ops := float64(x.Ops)
			a.rt += x.RoundTripsPerOp * ops
			a.cmds += x.CommandsPerOp * ops
			a.out += x.BytesOutPerOp * ops
			a.in += x.BytesInPerOp * ops
			for c, v := range x.ByCommand {
				a.by[c] += v * ops
			}
		}
	}
	for _, k := range order {
		a := rows[k]
		m := a.row
		m.Latency = summarize(a.hist)
		if m.Ops > 0 {
			n := float64(m.Ops)
			m.RoundTripsPerOp, m.CommandsPerOp, m.BytesOutPerOp, m.BytesInPerOp = a.rt/n, a.cmds/n, a.out/n, a.in/n
			m.ByCommand = map[string]float64{}
			for c, v := range a.by {
				m.ByCommand[c] = v / n
			}
		}
		if m.Hist, _ = encodeHist(a.hist); m.Latency.Count == 0 {
			m.Hist = ""
		}
		out.Results = append(out.Results, m)
	}
	out.Warnings = append(out.Warnings, fmt.Sprintf("merged %d shares of run %q: histograms merged, counts and throughput summed; server-side counts left out (each share's INFO saw every share's traffic)", n, run))
	sortResults(out.Results, append([]string{Raw}, profiles...))
	out.finish(profiles, max(out.EventRate, 0.001))
	return out, nil
}

func rowKey(x Result) string {
	k := x.Op + "\x00" + x.Profile + "\x00" + x.Model
	if x.Point != nil {
		k += "\x00" + strconv.FormatInt(*x.Point, 10)
	}
	return k
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
