package hardened_test

import (
	"testing"

	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/hardened"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Constructor(hardened.New))
}
