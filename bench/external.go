package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/gonogo/harness/internal/exitcode"
)

// External is redis-benchmark's result for the command the raw xadd op
// sends, measured against the same server in the same run: before each
// round of the harness's own xadd and once after the last, so a change in
// machine load shows and no single run decides the ratio.
type External struct {
	Command   string    `json:"command"`
	Clients   int       `json:"clients"`
	Requests  int64     `json:"requests"`
	OpsPerSec []float64 `json:"ops_per_sec"`
	// HarnessRuns are the harness's xadd ops/s, one per round.
	HarnessRuns []float64 `json:"harness_ops_per_sec_runs"`
	// Median is the median of the redis-benchmark runs, Harness that of
	// the harness's rounds, and Ratio Harness/Median (the goal is ≥ 0.9).
	Median  float64 `json:"median_ops_per_sec"`
	Harness float64 `json:"harness_ops_per_sec"`
	Ratio   float64 `json:"ratio"`
}

// addRun records a redis-benchmark run.
func (e *External) addRun(opsPerSec float64) {
	e.OpsPerSec = append(e.OpsPerSec, opsPerSec)
	e.Median = median(e.OpsPerSec)
	e.Ratio = ratio(e.Harness, e.Median)
}

// addHarness records a round of the harness's xadd.
func (e *External) addHarness(opsPerSec float64) {
	e.HarnessRuns = append(e.HarnessRuns, opsPerSec)
	e.Harness = median(e.HarnessRuns)
	e.Ratio = ratio(e.Harness, e.Median)
}

// median is the middle of xs (the mean of the middle two for an even
// count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// redisBenchmark runs redis-benchmark -c clients -n n XADD key * k v
// against addr (a server without password or TLS) and returns its ops/s.
func redisBenchmark(ctx context.Context, addr string, clients int, n int64, key string) (float64, string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, "", err
	}
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return 0, "", exitcode.Harnessf("redis-benchmark not found: apt-get install -y redis-tools")
	}
	args := []string{"-h", host, "-p", port, "-c", strconv.Itoa(clients), "-n", strconv.FormatInt(n, 10), "--csv", "XADD", key, "*", "k", "v"}
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	shown := "redis-benchmark " + strings.Join(args, " ")
	if err != nil {
		return 0, shown, fmt.Errorf("%s: %w", shown, err)
	}
	rps, err := parseBenchmarkCSV(out)
	if err != nil {
		return 0, shown, fmt.Errorf("%s: %w", shown, err)
	}
	return rps, shown, nil
}

// parseBenchmarkCSV reads the rps column of redis-benchmark --csv output.
func parseBenchmarkCSV(out []byte) (float64, error) {
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		return 0, err
	}
	if len(recs) < 2 || len(recs[0]) < 2 || recs[0][1] != "rps" {
		return 0, fmt.Errorf("unexpected output %q", out)
	}
	return strconv.ParseFloat(recs[1][1], 64)
}
