package scenarios

import "github.com/gonogo/harness/scenarios/check"

func checkNames() []string { return check.Names() }

func metricNames() []string {
	out := make([]string, len(check.Metrics))
	for i, m := range check.Metrics {
		out[i] = m.Name
	}
	return out
}
