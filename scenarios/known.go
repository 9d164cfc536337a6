package scenarios

import "github.com/gonogo/harness/scenarios/check"

func checkNames() []string { return append(check.Names(), sortedKeys(localChecks)...) }

func metricNames() []string {
	out := make([]string, len(check.Metrics))
	for i, m := range check.Metrics {
		out[i] = m.Name
	}
	return append(out, localMetrics()...)
}
