package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/scriptkeys"
)

const scriptkeysSynopsis = `scriptkeys [--profile hardened] [--json]`

// runScriptkeys is `harness scriptkeys`: every script a profile runs must
// name every key it touches in KEYS, checked on a three-node Redis Cluster
// (package scriptkeys). Exit 0 when none touches an undeclared key, 1 when
// one does.
func runScriptkeys(ctx context.Context, args []string, e env) (int, error) {
	fs := newFlags("scriptkeys", scriptkeysSynopsis, e)
	prof := fs.String("profile", "hardened", "the profile whose scripts are checked")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of the table")
	if err := parse(fs, args); err != nil {
		return 0, err
	}
	reg := profiles.Default()
	if !slices.Contains(reg.Names(), *prof) {
		return 0, exitcode.Configf("--profile %q: unknown (known: %s)", *prof, strings.Join(reg.Names(), ", "))
	}
	removeStale(e.stderr, "scriptkeys")
	k, err := scriptkeys.NewChecker(ctx)
	if err != nil {
		return 0, err
	}
	defer k.Close()
	rep, err := k.Check(ctx, reg, *prof)
	if err != nil {
		return 0, err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return 0, exitcode.Harness(err)
		}
	} else {
		fmt.Fprintf(e.stdout, "%s: %d commands replayed on a %d-node Redis Cluster\n", *prof, rep.Commands, scriptkeys.ClusterNodes)
		rep.WriteTable(e.stdout)
	}
	if rep.Failed() {
		return exitcode.NoGo, nil
	}
	return exitcode.Go, nil
}
