package scenarios

import "testing"

func needRedis(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs redis-server")
	}
}
