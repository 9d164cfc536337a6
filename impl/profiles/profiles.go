// Package profiles registers the harness's own implementations of the layer
// by name: "seed" (the tracker's design, flaws included) and "hardened"
// (every DESIGN.md guarantee kept).
package profiles

import (
	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/gonogo/harness/impl/seed"
)

// Default returns a registry holding "seed" and "hardened".
func Default() *impl.Profiles {
	p := &impl.Profiles{}
	p.Register("seed", seed.New)
	p.Register("hardened", hardened.New)
	return p
}
