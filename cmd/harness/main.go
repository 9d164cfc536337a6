// Command harness decides, with evidence, whether a Redis-backed real-time
// layer (event bus, SSE registry, flow-state cache) is ready to ship.
//
// Exit codes: 0 GO, 1 NO-GO, 2 INCONCLUSIVE, 3 bad input or configuration,
// 4 harness failure.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/target"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal cancels the command, which cleans up and
		// writes what it has; a second one does not wait for that.
		<-sigs
		fmt.Fprintln(os.Stderr, interruptMessage(os.Args[1:]))
		cancel()
		<-sigs
		closeTargets()
		os.Exit(exitcode.Inconclusive)
	}()
	code := run(ctx, os.Args[1:], env{
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
	})
	cancel()
	// Backstop: no redis-server or container outlives the harness,
	// whatever a command did.
	closeTargets()
	os.Exit(code)
}

// interruptMessage says what the first signal does for the command args
// run: serve stops serving (and saves what it acknowledged), the others
// finish their report.
func interruptMessage(args []string) string {
	if len(args) > 0 && args[0] == "serve" {
		return "harness: interrupted; stopping: closing streams, writing acknowledged events (again to quit now)"
	}
	return "harness: interrupted; finishing the report and cleaning up (again to quit now)"
}

func closeTargets() {
	target.CloseAll()
	if err := target.CloseContainers(); err != nil {
		fmt.Fprintln(os.Stderr, "harness: removing containers:", err)
	}
}
