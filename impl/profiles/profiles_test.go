package profiles_test

import (
	"context"
	"testing"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefault(t *testing.T) {
	p := profiles.Default()
	assert.Equal(t, []string{"hardened", "seed"}, p.Names())
	for _, name := range p.Names() {
		l, err := p.New(context.Background(), name, impl.Config{})
		require.NoError(t, err, "profile %s with REDIS_ENABLED=false", name)
		assert.Equal(t, name, l.Profile, "profile name of the layer")
		assert.Equal(t, "memory", l.Manager.Mode(), "mode of %s", name)
		require.NoError(t, l.Close())
	}
	_, err := p.New(context.Background(), "nope", impl.Config{})
	assert.ErrorContains(t, err, `unknown profile "nope"`)
}
