package main

import (
	"strings"
	"testing"

	"github.com/gonogo/harness/internal/exitcode"
)

// TestConformAgainstServe: `harness conform` against `harness serve`
// (hardened, memory only): every rule passes with CORS on for the origin
// (exit 0); without CORS the CORS rules fail, each named (exit 1).
func TestConformAgainstServe(t *testing.T) {
	const origin = "http://app.example:3000"
	on := startServe(t, nil, "-addr", "127.0.0.1:0", "--cors-origins", origin)
	code, out, errs := call(t, nil, "conform", "--service", on.base, "--origin", origin)
	if code != exitcode.Go || !strings.Contains(out, " 0 fail, 0 skipped") {
		t.Errorf("with CORS: exit %d; want 0, every rule passing\n%s%s", code, out, errs)
	}
	off := startServe(t, nil, "-addr", "127.0.0.1:0")
	code, out, _ = call(t, nil, "conform", "--service", off.base, "--origin", origin)
	if code != exitcode.NoGo {
		t.Errorf("without CORS: exit %d; want 1", code)
	}
	for _, rule := range []string{"cors.origin", "cors.expose", "cors.preflight.post", "cors.preflight.sse"} {
		if !strings.Contains(out, "FAIL  "+rule) {
			t.Errorf("without CORS: %s does not fail:\n%s", rule, out)
		}
	}
	if strings.Count(out, "FAIL  ") != 4 {
		t.Errorf("without CORS: want exactly the 4 CORS rules failing:\n%s", out)
	}
}

func TestConformBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"conform"},
		{"conform", "--service", "ftp://x"},
		{"conform", "--service", "http://127.0.0.1:1", "--timeout", "0s"},
		{"conform", "--service", "http://127.0.0.1:1"}, // nothing listens
		{"conform", "--service", "http://127.0.0.1:1", "--origin", "nope"},
	} {
		if code, _, errs := call(t, nil, args...); code != exitcode.BadInput || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 3 and one line", args, code, errs)
		}
	}
}
