package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"

	"github.com/gonogo/harness/internal/exitcode"
)

// External is redis-benchmark's result for the command the raw xadd op
// sends, measured against the same server in the same run: once before and
// once after the harness's own xadd, so a change in machine load between
// the two shows.
type External struct {
	Command   string    `json:"command"`
	Clients   int       `json:"clients"`
	Requests  int64     `json:"requests"`
	OpsPerSec []float64 `json:"ops_per_sec"`
	// Mean is the mean of the runs; Harness the harness's xadd ops/s and
	// Ratio Harness/Mean (the goal is ≥ 0.9).
	Mean    float64 `json:"mean_ops_per_sec"`
	Harness float64 `json:"harness_ops_per_sec"`
	Ratio   float64 `json:"ratio"`
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
