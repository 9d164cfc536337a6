//go:build race

package scenarios

import "time"

// raceTolerance makes room for the race detector. Under it CPU-bound code
// runs many times slower (Go's TLS handshake: 60 ms against 3 ms on
// loopback), and the layer's first calls on a cold pool, its health PINGs
// and the workload share two cores with other test packages. The layer's
// call budgets are scaled by 4 and the checkers' timing tolerances widened
// accordingly; every other guarantee stays as the scenario says, and the
// real timing goals live in benchmarks. A profile that blocks for seconds
// (the seed under a blackhole) is still far past the scaled budget.
func raceTolerance(spec *Spec) {
	scale := func(d *Duration, def time.Duration) {
		if *d == 0 {
			*d = Duration(def)
		}
		*d *= 4
	}
	scale(&spec.Config.PublishBudget, 50*time.Millisecond)
	scale(&spec.Config.CallBudget, 50*time.Millisecond)
	spec.Bounds.HealthLag = Duration(2 * time.Second)
	spec.Bounds.BudgetSlack = Duration(500 * time.Millisecond)
}
