// Command harness decides, with evidence, whether a Redis-backed real-time
// layer (event bus, SSE registry, flow-state cache) is ready to ship.
//
// Exit codes: 0 GO, 1 NO-GO, 2 INCONCLUSIVE, 3 bad input or configuration,
// 4 harness failure.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
	})
	stop()
	os.Exit(code)
}
