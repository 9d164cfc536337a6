package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/target"
)

func TestRunServiceBadInput(t *testing.T) {
	port, err := target.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("http://127.0.0.1:%d", port)
	plain := filepath.Join(t.TempDir(), "serve.py")
	if err := os.WriteFile(plain, []byte("print()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"unreachable service", []string{"--service", dead, "--url", "redis://127.0.0.1:1/0"}, "--service: service " + dead + ": GET /health: dial tcp"},
		{"not a URL", []string{"--service", "service-a:8080", "--url", "redis://127.0.0.1:1/0"}, "want an http:// or https:// URL"},
		{"with --profile", []string{"--service", dead, "--profile", "seed"}, "--profile picks an in-process profile"},
		{"with --target", []string{"--service", dead, "--target", "container"}, "--target chooses where an in-process profile's Redis comes from"},
		{"no redis", []string{"--service", dead}, "--service needs the services' Redis"},
		{"proxy name alone", []string{"--service", dead, "--url", "redis://127.0.0.1:1/0", "--toxiproxy-proxy", "r"}, "--toxiproxy-proxy needs --toxiproxy"},
		{"instance command alone", []string{"--instance-cmd", "sh"}, "--instance-cmd needs --service"},
		{"empty instance command", []string{"--service", dead, "--url", "redis://127.0.0.1:1/0", "--instance-cmd", " "}, "--instance-cmd: empty"},
		{"instance command not found", []string{"--service", dead, "--url", "redis://127.0.0.1:1/0", "--instance-cmd", "no-such-gonogo-server --port 1"}, "--instance-cmd: no-such-gonogo-server: not found or not executable"},
		{"instance command not executable", []string{"--service", dead, "--url", "redis://127.0.0.1:1/0", "--instance-cmd", plain + " --port 1"}, "--instance-cmd: " + plain + ": not found or not executable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := call(t, nil, append([]string{"run", "--scenario", "basic"}, tt.args...)...)
			if code != exitcode.BadInput {
				t.Errorf("exit: got %d; want %d (stderr %q)", code, exitcode.BadInput, errs)
			}
			if !strings.Contains(errs, tt.want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
				t.Errorf("stderr: got %q; want one line containing %q", errs, tt.want)
			}
		})
	}
}

// TestRunService puts a `harness serve -control` under basic and fanout_2
// by URL: basic passes, fanout_2 (two instances; one given) is
// INCONCLUSIVE with the reason, the run exits 2, and the report says the
// implementation is external and where.
func TestRunService(t *testing.T) {
	p, s, tok := serviceUnderTest(t)
	port, err := target.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("127.0.0.1:%d", port)
	if code, _, errs := call(t, nil, "run", "--service", s.base, "--url", p.URL()); code != exitcode.BadInput || !strings.Contains(errs, "HARNESS_CONTROL_TOKEN is not set") {
		t.Errorf("no token: exit %d, stderr %q; want %d, HARNESS_CONTROL_TOKEN is not set", code, errs, exitcode.BadInput)
	}
	if code, _, errs := call(t, tok, "run", "--service", s.base, "--toxiproxy", dead); code != exitcode.BadInput || !strings.Contains(errs, "toxiproxy API "+dead) {
		t.Errorf("unreachable toxiproxy: exit %d, stderr %q; want %d, toxiproxy API %s", code, errs, exitcode.BadInput, dead)
	}
	out := t.TempDir()
	code, stdout, errs := call(t, tok, "run", "--service", s.base, "--url", p.URL(), "--scenario", "basic,fanout_2", "--seed", "5", "--out", out)
	if code != exitcode.Inconclusive {
		t.Fatalf("exit %d; want %d\n%s\n%s", code, exitcode.Inconclusive, stdout, errs)
	}
	for _, want := range []string{"basic     hardened  PASS", "fanout_2  hardened  INCONCLUSIVE", "needs 2 service instances; --service gave 1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout: got\n%s\nwant it to contain %q", stdout, want)
		}
	}
	if want := "service: " + s.base + " (profile hardened; control API)"; !strings.Contains(errs, want) {
		t.Errorf("stderr: got %q; want %q", errs, want)
	}
	r, err := reports.LoadRun(newestRun(t, out))
	if err != nil {
		t.Fatal(err)
	}
	e := r.Environment
	if e.Implementation != reports.External || len(e.Services) != 1 || e.Services[0] != s.base || e.Profile != "hardened" || e.TargetKind != "url" {
		t.Errorf("environment: %+v; want implementation external at %s, profile hardened, target url", e, s.base)
	}
}

// serviceUnderTest starts a redis-server and a `harness serve -control`
// of hardened on it, and returns them with the environment that gives the
// harness the service's control token. It skips in -short.
func serviceUnderTest(t *testing.T) (*target.Process, *serving, map[string]string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	p, err := target.StartProcess(context.Background(), target.ProcessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	s := startServe(t, map[string]string{"REDIS_ENABLED": "true", "REDIS_URL": p.URL(), "HARNESS_CONTROL_TOKEN": testToken}, "-profile", "hardened", "-addr", "127.0.0.1:0", "-control")
	return p, s, map[string]string{"HARNESS_CONTROL_TOKEN": testToken}
}

func TestProxyAddr(t *testing.T) {
	for _, c := range []struct{ api, listen, want string }{
		{"http://toxiproxy:8474", "[::]:26379", "toxiproxy:26379"},
		{"127.0.0.1:8474", "127.0.0.1:31000", "127.0.0.1:31000"},
	} {
		if got, err := proxyAddr(c.api, c.listen); err != nil || got != c.want {
			t.Errorf("proxyAddr(%q, %q) = %q, %v; want %q", c.api, c.listen, got, err, c.want)
		}
	}
}

// TestRunServiceBadProfile: the profile a service names in GET /health
// becomes part of the run's directory names, so one that is not a safe
// name is bad input before anything is written.
func TestRunServiceBadProfile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"profile": "../../escaped", "services": {"redis": {}}}`)
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "reports")
	code, _, errs := call(t, nil, "run", "--scenario", "basic", "--service", srv.URL, "--url", "redis://127.0.0.1:1/0", "--out", out)
	if want := `GET /health names profile "../../escaped": want lowercase letters`; code != exitcode.BadInput || !strings.Contains(errs, want) {
		t.Errorf("got exit %d, stderr %q; want %d with %q", code, errs, exitcode.BadInput, want)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("report dir: %v; want nothing written", err)
	}
}
