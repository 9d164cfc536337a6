// Package fastapi keeps the Python example honest cheaply: its files
// compile, and the app builds its routes (the HTTP contract and the control
// API) for both layers. The gate run itself is `make fastapi-test`.
package fastapi

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
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
