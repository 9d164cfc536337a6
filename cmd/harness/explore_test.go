package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gonogo/harness/internal/exitcode"
)

// TestExploreBadInput: every flag of explore out of its range, an unknown
// fault or profile and an output that is a file are bad input (exit 3),
// one line, before any run and before anything is written.
func TestExploreBadInput(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "out")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--budget", "1s"}, "--budget 1s: out of range"},
		{[]string{"--budget", "25h"}, "--budget 25h0m0s: out of range"},
		{[]string{"--seed", "-1"}, "--seed -1: out of range"},
		{[]string{"--confirm", "0"}, "--confirm 0: out of range"},
		{[]string{"--confirm", "11"}, "--confirm 11: out of range"},
		{[]string{"--shrink-runs", "0"}, "--shrink-runs 0: out of range"},
		{[]string{"--max-faults", "5"}, "--max-faults 5: out of range"},
		{[]string{"--max-instances", "0"}, "--max-instances 0: out of range"},
		{[]string{"--max-duration", "1s"}, "--max-duration 1s: out of range"},
		{[]string{"--faults", "down,nope"}, `--faults: unknown fault "nope"`},
		{[]string{"--profile", "nope"}, `unknown profile "nope"`},
		{[]string{"--checks", "lost,latency"}, `--checks: explore does not judge with "latency"`},
		{[]string{"--out", file}, "is not a directory"},
		{[]string{"--target", "nope"}, `--target "nope"`},
	} {
		args := append([]string{"explore"}, c.args...)
		if !slices.Contains(c.args, "--out") {
			args = append(args, "--out", out)
		}
		code, stdout, stderr := call(t, nil, args...)
		if code != exitcode.BadInput || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 || stdout != "" {
			t.Errorf("explore %v: exit %d, stderr %q; want exit 3 and one line with %q", c.args, code, stderr, c.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("bad input wrote %s (%v)", out, err)
	}
}
