package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gonogo/harness/conform"
	"github.com/gonogo/harness/internal/exitcode"
)

// runConform checks a running implementation against the HTTP contract
// (docs/http.md), printing each rule with PASS, FAIL or SKIP; exit 0 when
// none fails, 1 when one does, 3 for bad input or a service that does not
// answer.
func runConform(ctx context.Context, args []string, e env) (int, error) {
	fs := newFlags("conform", "conform --service URL [--origin URL] [--timeout 5s] [--json]", e)
	svc := fs.String("service", "", "base URL of the implementation to check (required), e.g. http://127.0.0.1:8080")
	origin := fs.String("origin", "", "an origin the service allows by CORS (its --cors-origins), for the CORS rules; without it they are skipped")
	timeout := fs.Duration("timeout", 5*time.Second, "bound of each request and of each wait for a stream's next block (100ms to 1m)")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	if err := parse(fs, args); err != nil {
		return 0, err
	}
	if *svc == "" {
		return 0, usageErr(fs, exitcode.Configf("--service is required"))
	}
	if err := inRange("timeout", *timeout, 100*time.Millisecond, time.Minute); err != nil {
		return 0, err
	}
	rs, err := conform.Check(ctx, conform.Options{Service: *svc, Origin: *origin, Timeout: *timeout})
	switch {
	case errors.Is(err, context.Canceled):
		return exitcode.Inconclusive, nil
	case err != nil:
		return 0, exitcode.Config(err)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rs); err != nil {
			return 0, exitcode.Harness(err)
		}
	} else {
		counts := map[string]int{}
		for _, r := range rs {
			counts[r.Verdict]++
			fmt.Fprintf(e.stdout, "%-4s  %-20s %s\n", r.Verdict, r.Rule, r.Text)
			if r.Detail != "" {
				fmt.Fprintf(e.stdout, "      %s %s\n", map[string]string{conform.Fail: "got:", conform.Pass: "saw:", conform.Skip: "why:"}[r.Verdict], strings.TrimSpace(r.Detail))
			}
		}
		fmt.Fprintf(e.stdout, "conform %s: %d rules, %d pass, %d fail, %d skipped\n", *svc, len(rs), counts[conform.Pass], counts[conform.Fail], counts[conform.Skip])
	}
	if conform.Failed(rs) > 0 {
		return exitcode.NoGo, nil
	}
	return exitcode.Go, nil
}
