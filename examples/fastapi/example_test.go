// Package fastapi keeps the Python example honest cheaply: its files
// compile, and the app builds its routes (the HTTP contract and the control
// API) for both layers. The gate run itself is `make fastapi-test`.
package fastapi

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// python is the interpreter the example runs on: Debian's, whose packages
// it uses (PYTHON overrides).
func python(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PYTHON")
	if p == "" {
		p = "/usr/bin/python3"
	}
	if _, err := exec.LookPath(p); err != nil {
		t.Skipf("no %s (%v): the Python example is not checked here", p, err)
	}
	return p
}

func pyFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".py") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// run runs the interpreter with args, byte-code written under a temporary
// directory (never into the tree).
func run(t *testing.T, py string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(py, args...)
	cmd.Env = append(append(os.Environ(), "PYTHONPYCACHEPREFIX="+t.TempDir(), "PYTHONPATH=."), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", py, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestCompiles(t *testing.T) {
	py := python(t)
	files := pyFiles(t)
	if len(files) < 10 {
		t.Fatalf("found %d Python files, want the plan's modules, the glue and the fixed layer: %v", len(files), files)
	}
	run(t, py, nil, append([]string{"-m", "py_compile"}, files...)...)
}

// TestRoutes imports the app (no Redis is reached at import) for the plan's
// layer and the fixed one, control API on, and checks it serves every path
// of the contract.
func TestRoutes(t *testing.T) {
	py := python(t)
	if err := exec.Command(py, "-c", "import fastapi, uvicorn, redis.asyncio").Run(); err != nil {
		t.Skipf("%s cannot import fastapi, uvicorn and redis (make fastapi-deps installs them): %v", py, err)
	}
	want := []string{
		"/_harness", "/_harness/registry/cleanup", "/_harness/registry/connections",
		"/_harness/registry/connections/{conn}", "/_harness/registry/connections/{conn}/heartbeat",
		"/_harness/registry/flows/{flow_id}", "/_harness/reset", "/flows/{flow_id}/events",
		"/flows/{flow_id}/events/history", "/flows/{flow_id}/state", "/health", "/health/redis", "/metrics/redis",
	}
	for _, fixes := range []string{"", "all"} {
		out := run(t, py, []string{"GONOGO_FIXES=" + fixes, "HARNESS_CONTROL=true", "HARNESS_CONTROL_TOKEN=0123456789abcdef"},
			"-c", "import app.main as m; print(type(m.STATE.layer).__name__); print('\\n'.join(sorted({r.path for r in m.app.routes})))")
		lines := strings.Fields(out)
		layer, paths := lines[0], map[string]bool{}
		for _, p := range lines[1:] {
			paths[p] = true
		}
		wantLayer := map[string]string{"": "PlanLayer", "all": "FixedLayer"}[fixes]
		if layer != wantLayer {
			t.Errorf("GONOGO_FIXES=%q: layer %s, want %s", fixes, layer, wantLayer)
		}
		for _, p := range want {
			if !paths[p] {
				t.Errorf("GONOGO_FIXES=%q: no route %s (routes: %v)", fixes, p, lines[1:])
			}
		}
	}
}

// TestControlOffWithoutFlag: without HARNESS_CONTROL=true the control API is
// not served; with it and a short token the app refuses to start (exit 3).
func TestControlOffWithoutFlag(t *testing.T) {
	py := python(t)
	if err := exec.Command(py, "-c", "import fastapi, uvicorn, redis.asyncio").Run(); err != nil {
		t.Skipf("%s cannot import fastapi, uvicorn and redis (make fastapi-deps installs them): %v", py, err)
	}
	out := run(t, py, []string{"HARNESS_CONTROL="}, "-c", "import app.main as m; print(any(r.path.startswith('/_harness') for r in m.app.routes))")
	if strings.TrimSpace(out) != "False" {
		t.Errorf("control routes served without HARNESS_CONTROL=true: %s", out)
	}
	cmd := exec.Command(py, "-c", "import app.main")
	cmd.Env = append(os.Environ(), "PYTHONPYCACHEPREFIX="+t.TempDir(), "PYTHONPATH=.", "HARNESS_CONTROL=true", "HARNESS_CONTROL_TOKEN=short")
	out2, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("short token: err %v, want exit 3; output %s", err, out2)
	}
	if strings.Contains(string(out2), "short") {
		t.Errorf("the refusal shows the token: %s", out2)
	}
}

// TestJournal: the fixed layer's outbox journal keeps what it was given in
// order, cuts off a line a kill left unfinished (never acknowledged), and
// is empty after clear; one directory per key prefix.
func TestJournal(t *testing.T) {
	py := python(t)
	if err := exec.Command(py, "-c", "import fastapi, uvicorn, redis.asyncio").Run(); err != nil {
		t.Skipf("%s cannot import fastapi, uvicorn and redis (make fastapi-deps installs them): %v", py, err)
	}
	dir := t.TempDir()
	script := `
import sys, os
from app.fixed.layer import Journal
root = sys.argv[1]
j = Journal(root, "p1:")
j.append("f", {"id": "a"})
j.append("f", {"id": "b"})
j.close()
path = [os.path.join(d, "outbox.jsonl") for d, _, fs in os.walk(root) if "outbox.jsonl" in fs][0]
with open(path, "ab") as f:
    f.write(b'{"flow": "f", "event": {"id": "c"')
j = Journal(root, "p1:")
print(",".join(e["id"] for _, e in j.load()))
j.append("f", {"id": "d"})
print(",".join(e["id"] for _, e in j.load()))
print(len(Journal(root, "p2:").load()))
j.clear()
print(len(j.load()))
`
	got := strings.Fields(run(t, py, nil, "-c", script, dir))
	want := []string{"a,b", "a,b,d", "0", "0"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("journal: got %q; want %q", got, want)
	}
}

// TestServeOnHarnessAddr: started as the harness starts an instance
// (--instance-cmd: no flags, HARNESS_ADDR in the environment), serve.py
// serves there and stops on SIGTERM with exit 0; a bad HARNESS_ADDR is
// exit 3.
func TestServeOnHarnessAddr(t *testing.T) {
	py := python(t)
	if err := exec.Command(py, "-c", "import fastapi, uvicorn, redis.asyncio").Run(); err != nil {
		t.Skipf("%s cannot import fastapi, uvicorn and redis (make fastapi-deps installs them): %v", py, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := append(os.Environ(), "PYTHONPYCACHEPREFIX="+t.TempDir(), "REDIS_ENABLED=false", "HARNESS_CONTROL=", "HARNESS_ADDR="+addr)
	cmd := exec.Command(py, "serve.py")
	cmd.Env = env
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	up := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !up; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/health"); err == nil {
			up = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
	}
	if !up {
		t.Fatalf("serve.py did not answer on HARNESS_ADDR %s within 30s: %s", addr, out.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve.py after SIGTERM: %v; want exit 0: %s", err, out.String())
	}
	bad := exec.Command(py, "serve.py")
	bad.Env = append(env[:len(env)-1], "HARNESS_ADDR=no-port")
	if err := bad.Run(); err == nil || bad.ProcessState.ExitCode() != 3 {
		t.Errorf("HARNESS_ADDR=no-port: %v; want exit 3", err)
	}
}
