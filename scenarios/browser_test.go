package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/scenarios/check"
)

// noCORSEnv, set in a test's environment, makes the instance processes of
// this test binary ignore CORS_ORIGINS: a service without CORS.
const noCORSEnv = "GONOGO_TEST_NO_CORS"

// needChromium skips a test when no Chromium is installed, saying so.
func needChromium(t *testing.T) {
	t.Helper()
	needRedis(t)
	r := &run{deps: DefaultDeps()}
	if _, err := r.chromium(); err != nil {
		t.Skipf("browser clients need Chromium: %v (make test-browser installs it)", err)
	}
}

// TestBrowserWithoutChromium: a scenario with browser clients where there
// is no Chromium is not run: every check INCONCLUSIVE, naming why.
func TestBrowserWithoutChromium(t *testing.T) {
	needRedis(t)
	reg := profiles.Default()
	spec, err := Load("browser_outage", DefaultKnown(reg))
	if err != nil {
		t.Fatal(err)
	}
	deps := DefaultDeps()
	deps.Browser = filepath.Join(t.TempDir(), "chromium")
	o := runSpecDeps(t, spec, "hardened", reg, deps)
	if o.Verdict != verdict.Inconclusive {
		t.Fatalf("verdict: got %s; want INCONCLUSIVE", o.Verdict)
	}
	for _, r := range o.Results {
		if !errors.Is(r.Err, ErrUnavailable) || !strings.Contains(r.Error, "workload.sse.browser not available") {
			t.Errorf("%s: got %s %q; want INCONCLUSIVE naming the missing browser", r.Check, r.Verdict, r.Error)
		}
	}
}

// TestBrowserRestart runs real Chromium pages through an instance restart
// (the browser's own reconnect with Last-Event-ID): hardened passes,
// seed fails session_chain (it ignores Last-Event-ID: events published
// while the page was away never arrive). Shortened, and at a publish rate
// a loaded machine reaches, so that make test stays fast.
func TestBrowserRestart(t *testing.T) {
	needChromium(t)
	reg := profiles.Default()
	restart, err := Load("browser_restart", DefaultKnown(reg))
	if err != nil {
		t.Fatal(err)
	}
	restart.Workload.Duration = Duration(4e9)
	restart.Workload.Publish.Rate = 40
	restart.Faults[0].At = Duration(15e8)
	t.Run("hardened", func(t *testing.T) {
		o := runSpec(t, restart, "hardened", reg, 1)
		if o.Verdict != verdict.Pass {
			t.Errorf("verdict: got %s; want PASS", o.Verdict)
		}
		r, _ := result(o, "session_chain")
		if r.Metrics["chain_connections"] < 3 {
			t.Errorf("chain_connections %v: want the restarted page's reconnect too (at least 3)", r.Metrics["chain_connections"])
		}
		if _, err := os.Stat(filepath.Join(o.Dir, "browser-1.png")); err != nil {
			t.Errorf("screenshot of the page: %v", err)
		}
	})
	t.Run("seed", func(t *testing.T) {
		o := runSpec(t, restart, "seed", reg, 1)
		r, _ := result(o, "session_chain")
		if r.Verdict != verdict.Fail || !errors.Is(r.Err, check.ErrChainMissing) {
			t.Errorf("session_chain: got %s (%v); want FAIL: %v", r.Verdict, r.Err, check.ErrChainMissing)
		}
	})
}

// TestBrowserCrossOrigin: a page on another origin follows its flow when
// the instances allow it by CORS, and never connects when they do not
// (session_chain fails). Run by make test-browser (GONOGO_BROWSER_ALL=1):
// make test keeps to TestBrowserRestart.
func TestBrowserCrossOrigin(t *testing.T) {
	needChromium(t)
	if os.Getenv("GONOGO_BROWSER_ALL") == "" {
		t.Skip("set GONOGO_BROWSER_ALL=1 (make test-browser) to run it")
	}
	reg := profiles.Default()
	cross, err := Load("browser_cross_origin", DefaultKnown(reg))
	if err != nil {
		t.Fatal(err)
	}
	cross.Faults = nil // the origin alone
	cross.Workload.Duration = Duration(3e9)
	t.Run("cors", func(t *testing.T) {
		o := runSpec(t, cross, "hardened", reg, 1)
		if o.Verdict != verdict.Pass {
			t.Errorf("verdict: got %s; want PASS", o.Verdict)
		}
	})
	t.Run("no_cors", func(t *testing.T) {
		t.Setenv(noCORSEnv, "1")
		o := runSpec(t, cross, "hardened", reg, 1)
		r, _ := result(o, "session_chain")
		if r.Verdict != verdict.Fail || r.Metrics["chain_never_connected"] != 2 {
			t.Errorf("session_chain: got %s, never connected %v (%v); want FAIL with both pages never connected", r.Verdict, r.Metrics["chain_never_connected"], r.Err)
		}
	})
}
