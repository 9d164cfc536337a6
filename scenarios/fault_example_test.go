package scenarios_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/scenarios"
	"github.com/gonogo/harness/target"
)

// maxClients is a fault of one's own: for its window the server accepts at
// most n clients. It needs a target the harness owns and can reconfigure,
// an ability found by type assertion.
type maxClients struct{ n, old string }

func newMaxClients(params map[string]string) (chaos.Fault, error) {
	n, err := strconv.Atoi(params["clients"])
	if err != nil || n < 1 || n > 10000 {
		return nil, fmt.Errorf("clients %q: want 1 to 10000", params["clients"])
	}
	return &maxClients{n: strconv.Itoa(n)}, nil
}

func (f *maxClients) Name() string { return "max_clients" }

func (f *maxClients) Available(env chaos.Env) error {
	if _, ok := env.Target.(target.Configurer); !ok || !env.Target.Owned() {
		return errors.New("max_clients needs a target the harness owns and can reconfigure")
	}
	return nil
}

func (f *maxClients) Inject(ctx context.Context, env chaos.Env) error {
	c := env.Target.(target.Configurer)
	old, err := c.ConfigGet(ctx, "maxclients")
	if err != nil {
		return err
	}
	f.old = old
	return c.ConfigSet(ctx, "maxclients", f.n)
}

func (f *maxClients) Undo(ctx context.Context, env chaos.Env) error {
	if f.old == "" { // Inject failed before changing anything
		return nil
	}
	return env.Target.(target.Configurer).ConfigSet(ctx, "maxclients", f.old)
}

// Adding a fault: the scenario files learn its name and check its
// parameters through Known, and the engine builds it through Deps.Fault;
// scenarios.Run with those Deps injects it at its step's time and undoes
// it after, like any catalogue fault.
func Example_addFault() {
	known := scenarios.DefaultKnown(profiles.Default())
	known.Faults = append(known.Faults, "max_clients")
	validate := known.Fault
	known.Fault = func(name string, params map[string]string) error {
		if name == "max_clients" {
			_, err := newMaxClients(params)
			return err
		}
		return validate(name, params)
	}
	deps := scenarios.DefaultDeps()
	build := deps.Fault
	deps.Fault = func(name string, params map[string]string) (chaos.Fault, error) {
		if name == "max_clients" {
			return newMaxClients(params)
		}
		return build(name, params)
	}

	src := `name: crowded
workload:
  duration: 3s
  publish: {rate: 50}
faults:
  - {at: 1s, for: 1s, fault: max_clients, params: {clients: "2"}}
checks:
  - name: lost
`
	spec, err := scenarios.Parse("crowded.yaml", []byte(src), known)
	fmt.Println(spec.Faults[0].Fault, err)
	_, err = scenarios.Parse("crowded.yaml", []byte(strings.Replace(src, `"2"`, `"0"`, 1)), known)
	fmt.Println(err)
	f, _ := deps.Fault("max_clients", map[string]string{"clients": "2"})
	fmt.Println(f.Available(chaos.Env{}))
	// Output:
	// max_clients <nil>
	// crowded.yaml:6: faults[0]: max_clients: clients "0": want 1 to 10000
	// max_clients needs a target the harness owns and can reconfigure
}
