package service_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/seed"
	"github.com/gonogo/harness/impl/service"
)

// A service over a memory-only seed layer, started on a free port.
func Example() {
	ctx := context.Background()
	layer, err := seed.New(ctx, impl.Config{}) // REDIS_ENABLED=false
	if err != nil {
		panic(err)
	}
	defer layer.Close()
	svc := service.New(layer, service.Options{})
	base, err := svc.Start(ctx, "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer svc.Shutdown(ctx)

	resp, err := http.Post(base+"/flows/f1/events", "application/json",
		strings.NewReader(`{"id":"ev-1","event_type":"STEP","payload":{"n":1}}`))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output: 201
}
