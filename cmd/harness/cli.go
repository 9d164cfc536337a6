package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

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
	"doctor":     {"report what this machine offers: redis-server, TLS, Docker, ports, usable targets", runDoctor},
	"serve":      {"serve a profile of the layer over HTTP (contract: docs/http.md)", runServe},
	"run":        {"run a gate (--gate local|eventbus|production|release) or scenarios, judge, write reports", runRun},
	"report":     {"re-judge a saved run offline and re-render its reports; --compare old new: the trend", runReport},
	"gates":      {"list the gates and their criteria: harness gates list [--gates FILE]", runGates},
	"bench":      {"concurrency benchmarks: raw Redis baselines and each profile's ops, with command accounting", runBench},
	"scriptkeys": {"check that every script a profile runs names every key it touches in KEYS, on a Redis Cluster", runScriptkeys},
	"cost":       {"project the expected traffic's commands, cost and quota per profile and plan, idle cost measured", runCost},

	// conform is in a group of its own so that the table above keeps its
	// alignment.
	"conform": {"check a running implementation against the HTTP contract, rule by rule: harness conform --service URL", runConform},
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
// code. Every error is printed as one line, with secrets masked: those of
// every URL-like argument and of the environment variables a URL may come
// from are masked in all the command prints, whatever path prints them.
func run(ctx context.Context, args []string, e env) int {
	secrets := argSecrets(args, e.getenv)
	e.stdout = redactWriter{e.stdout, func() []string { return secrets }}
	e.stderr = redactWriter{e.stderr, func() []string { return secrets }}
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
		fmt.Fprintf(e.stderr, "harness: unknown command %q; run 'harness -h' for the commands\n", args[0])
		return exitcode.BadInput
	}
	code, err := cmd.run(ctx, args[1:], e)
	if errors.Is(err, flag.ErrHelp) {
		return exitcode.Go
	}
	if err != nil {
		msg := redact.Text(err.Error(), secrets...)
		fmt.Fprintf(e.stderr, "harness %s: %s\n", args[0], strings.TrimSpace(msg))
		return exitcode.Of(err)
	}
	return code
}

// argSecrets are the secrets of every URL-like argument (a flag's value,
// also as --flag=value), of $REDIS_URL and of the variable each --url-env
// names.
func argSecrets(args []string, getenv func(string) string) []string {
	urls := []string{getenv(redisURLEnv)}
	for i, a := range args {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && hasVal {
			a = val
		}
		urls = append(urls, a)
		if name == "url-env" && strings.HasPrefix(args[i], "-") {
			if !hasVal && i+1 < len(args) {
				val = args[i+1]
			}
			urls = append(urls, getenv(val))
		}
	}
	var out []string
	for _, u := range urls {
		for _, s := range redact.Secrets(u) {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// newFlags makes a FlagSet that reports its errors as bad input; -h
// prints its usage to stdout.
func newFlags(name, synopsis string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "Usage: harness %s\n\n", synopsis)
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parse parses flags; a parse error is bad input, -h is not an error.
func parse(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr(fs, exitcode.Configf("unexpected argument %q", fs.Arg(0)))
	}
	return nil
}

// parseFlags parses args with fs. A parse error is one line of bad input
// with a hint to -h, never the usage; -h prints the usage and returns
// flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	help := fs.Usage
	fs.Usage = func() {} // the flag package calls it on errors too
	err := fs.Parse(args)
	fs.Usage = help
	switch {
	case errors.Is(err, flag.ErrHelp):
		help()
		return err
	case err != nil:
		return usageErr(fs, exitcode.Config(err))
	}
	return nil
}

// usageErr adds to err the hint where the usage of fs's command is.
func usageErr(fs *flag.FlagSet, err error) error {
	return fmt.Errorf("%w; run 'harness %s -h' for usage", err, fs.Name())
}

// inRange is nil when lo <= v <= hi, else bad input that names the flag
// and its range (NaN is in no range).
func inRange[T int | int64 | float64 | time.Duration](name string, v, lo, hi T) error {
	if v >= lo && v <= hi {
		return nil
	}
	return exitcode.Configf("--%s %v: out of range, want %v to %v", name, v, lo, hi)
}

// firstErr is the first error that is not nil.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// isSet reports whether flag name was given on fs's command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
