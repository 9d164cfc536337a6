// Package targettest starts Redis targets for the tests of other packages.
package targettest

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/target"
)

// PasswordRedis spawns a redis-server that requires password (a target the
// harness reaches only by its URL, which carries the password) and returns
// it with an admin client; both are closed when the test ends. In -short
// mode it skips the test.
func PasswordRedis(t testing.TB, password string) (*target.Process, *redis.Client) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	p, err := target.StartProcess(context.Background(), target.ProcessOptions{Password: password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), Password: password})
	t.Cleanup(func() { rdb.Close() })
	return p, rdb
}
