package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/redact"
)

// env is everything a command may touch of the OS, injected for tests.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is one subcommand: its one-line summary and its body. A body
// returns an error whose exit code exitcode.Of decides, or a verdict code.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, e env) (int, error)
}

// commands is the table of subcommands.
var commands = map[string]command{
	"doctor": {"report what this machine offers: redis-server, TLS, Docker, ports, usable targets", runDoctor},
	"serve":  {"serve a profile of the layer over HTTP (contract: docs/http.md)", runServe},
	"run":    {"run a gate (--gate local|eventbus|production|release) or scenarios, judge, write reports", runRun},
	"report": {"re-judge a saved run offline and re-render its reports; --compare old new: the trend", runReport},
	"gates":  {"list the gates and their criteria: harness gates list [--gates FILE]", runGates},
	"bench":  {"concurrency benchmarks: raw Redis baselines and each profile's ops, with command accounting", runBench},
}

const usageHead = `harness — go/no-go verdicts for a Redis-backed real-time layer

Usage:
  harness <command> [flags]

Commands:
`

const usageTail = `
Exit codes: 0 GO, 1 NO-GO, 2 INCONCLUSIVE, 3 bad input/config, 4 harness failure;
serve: 5 acknowledged events lost at stop.
Run 'harness <command> -h' for a command's flags.
`

func usage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, usageTail)
}

// run dispatches args to a subcommand and turns its result into an exit
// code. Every error is printed as one line, with secrets masked.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitcode.BadInput
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(e.stdout)
		return exitcode.Go
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "harness: unknown command %q\n", args[0])
		usage(e.stderr)
		return exitcode.BadInput
	}
	code, err := cmd.run(ctx, args[1:], e)
	if errors.Is(err, flag.ErrHelp) {
		return exitcode.Go
	}
	if err != nil {
		msg := redact.Text(err.Error(), redact.Password(e.getenv("REDIS_URL")))
		fmt.Fprintf(e.stderr, "harness %s: %s\n", args[0], strings.TrimSpace(msg))
		return exitcode.Of(err)
	}
	return code
}

// newFlags makes a FlagSet that reports its errors as bad input.
func newFlags(name, synopsis string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Parse errors are reported once, by run; -h prints usage to stdout.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "Usage: harness %s\n\n", synopsis)
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags; a parse error is bad input, -h is not an error.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitcode.Configf("%w (see 'harness %s -h')", err, fs.Name())
	}
	if fs.NArg() > 0 {
		return exitcode.Configf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
