// Package servicetest serves a layer over HTTP for tests: on a free
// loopback port, shut down (streams ended, connections unregistered) and
// its current layer closed when the test ends.
package servicetest

import (
	"context"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/service"
)

// Start serves l with opts and returns the service and its base URL. At
// cleanup the service must shut down within 10 s; then the layer it holds
// then (a control reset may have replaced l) is closed.
func Start(t testing.TB, l *impl.Layer, opts service.Options) (*service.Service, string) {
	t.Helper()
	svc := service.New(l, opts)
	base, err := svc.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("starting the service: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); err != nil {
			t.Errorf("service shutdown: %v", err)
		}
		svc.Layer().Close()
	})
	return svc, base
}
