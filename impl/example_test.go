package impl_test

import (
	"context"
	"fmt"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/impl/seed"
)

// A profile is a named constructor of the layer. Registered beside the
// harness's own, it is what `--profile` names; here a variant of seed with a
// small connection pool. With REDIS_ENABLED=false (the zero Config) the
// layer serves from memory and needs no Redis.
func ExampleProfiles_Register() {
	reg := profiles.Default()
	reg.Register("seed-small-pool", func(ctx context.Context, cfg impl.Config) (*impl.Layer, error) {
		cfg.PoolSize = 5
		l, err := seed.New(ctx, cfg)
		if err != nil {
			return nil, err
		}
		l.Profile = "seed-small-pool"
		return l, nil
	})
	fmt.Println(reg.Names())
	l, err := reg.New(context.Background(), "seed-small-pool", impl.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	fmt.Println(l.Profile, l.Manager.Mode())
	// Output:
	// [hardened seed seed-small-pool]
	// seed-small-pool memory
}
