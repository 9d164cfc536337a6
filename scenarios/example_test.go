package scenarios_test

import (
	"fmt"

	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/scenarios"
)

// A scenario file is validated before any traffic: a typo is an error
// naming the file and line.
func ExampleParse() {
	src := []byte(`name: demo
workload:
  duration: 3s
  publish: {rate: 50}
faults:
  - {at: 1s, for: 1s, fault: latency, params: {latency: 100ms, jiter: 5ms}}
checks:
  - name: lost
`)
	_, err := scenarios.Parse("demo.yaml", src, scenarios.DefaultKnown(profiles.Default()))
	fmt.Println(err)
	// Output:
	// demo.yaml:6: faults[0]: latency: bad fault parameter: fault latency has no parameter "jiter" (known: latency, jitter, stream, toxicity)
}
