package main

import (
	"context"

	"github.com/gonogo/harness/gate"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/reports"
	"github.com/gonogo/harness/scenarios"
)

// runGates is `harness gates list`: the gates of a gates file and their
// criteria, after validating the file against what the harness produces.
func runGates(_ context.Context, args []string, e env) (int, error) {
	fs := newFlags("gates", "gates list [--gates FILE] [--yaml]", e)
	file := fs.String("gates", "", "gates file (default: the one shipped with the harness)")
	asYAML := fs.Bool("yaml", false, "print the shipped gates file as YAML, to copy and edit")
	if len(args) == 0 || args[0] != "list" {
		// -h prints the usage; anything else is not a subcommand.
		if err := parseFlags(fs, args); err != nil {
			return 0, err
		}
		return 0, usageErr(fs, exitcode.Configf("gates needs a subcommand: list"))
	}
	if err := parse(fs, args[1:]); err != nil {
		return 0, err
	}
	if *asYAML {
		_, err := e.stdout.Write(reports.DefaultGatesYAML())
		return exitcode.Go, err
	}
	gs, _, err := gate.LoadGates(*file, scenarios.DefaultKnown(profiles.Default()))
	if err != nil {
		return 0, err
	}
	if err := gs.Describe(e.stdout); err != nil {
		return 0, exitcode.Harness(err)
	}
	return exitcode.Go, nil
}
