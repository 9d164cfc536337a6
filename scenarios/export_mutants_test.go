package scenarios

import "github.com/gonogo/harness/impl"

// ExploreMutant is one of the mutation tests' broken implementations, for
// the explore demonstration (explore_mutants_test.go, package
// scenarios_test, which may import package explore): Wrap breaks the
// hardened layer as the mutation test does, and Check is the checker that
// test expects to catch it.
type ExploreMutant struct {
	Name, Check string
	Wrap        func(l *impl.Layer)
}

// Profiles registers the mutant as profile "mutant".
func (m ExploreMutant) Profiles() *impl.Profiles { return mutant(m.Wrap) }

// ExploreMutants are the mutants explore can catch: those whose checker
// it judges generated scenarios with. (registry_count's and the latency
// check's mutants are not among them: explore judges neither.)
var ExploreMutants = []ExploreMutant{
	{"drop 1 in 1000", "lost", func(l *impl.Layer) { l.Bus = &dropBus{Bus: l.Bus} }},
	{"duplicate on replay", "duplicated", func(l *impl.Layer) { l.Bus = dupBus{l.Bus} }},
	{"reorder", "reordered", func(l *impl.Layer) { l.Bus = reorderBus{l.Bus} }},
	{"skip heartbeat refresh", "registry", func(l *impl.Layer) { l.Registry = lazyRegistry{l.Registry} }},
	{"ignore invalidate", "stale_read", func(l *impl.Layer) { l.Cache = deafCache{l.Cache} }},
	{"block past budget", "budget", func(l *impl.Layer) { l.Bus = &blockBus{Bus: l.Bus} }},
	{"re-deliver after resume", "session_chain", func(l *impl.Layer) { l.Bus = redeliverBus{l.Bus} }},
	{"skip the catch-up", "session_chain", func(l *impl.Layer) { l.Bus = liveOnlyBus{l.Bus} }},
	{"lose a queued event", "session_chain", func(l *impl.Layer) { l.Bus = dropQueuedBus{l.Bus} }},
	{"near cache", "stale_read", func(l *impl.Layer) { l.Cache = &nearCache{Cache: l.Cache, local: map[string]map[string]any{}} }},
	{"drop 1 in 500 from memory", "lost", func(l *impl.Layer) { l.Bus = &fallbackDropBus{Bus: l.Bus, mode: l.Manager.Mode} }},
}
