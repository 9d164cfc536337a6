package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// ErrBudget is returned for a command the budget guard refused to send.
var ErrBudget = errors.New("command budget reached")

// Guard is a go-redis hook that enforces a command budget: it reserves each
// command (or pipeline) before it is sent and refuses, without sending, any
// that would take the total past Max. The first refusal calls the stop
// functions registered with OnExhaust, so a run stops issuing instead of
// spinning on refusals. Add it to every client that talks to a metered
// target, before any counting hook.
type Guard struct {
	max  int64
	used atomic.Int64

	mu      sync.Mutex
	refused bool
	next    int
	stops   map[int]func()
}

// NewGuard returns a guard allowing max commands.
func NewGuard(max int64) *Guard { return &Guard{max: max} }

var _ redis.Hook = (*Guard)(nil)

// Max is the budget.
func (g *Guard) Max() int64 { return g.max }

// Used is the number of commands sent so far.
func (g *Guard) Used() int64 { return g.used.Load() }

// Exhausted reports whether a command was refused.
func (g *Guard) Exhausted() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refused
}

// OnExhaust registers stop to be called at the first refusal (at once if
// a command was already refused). It returns a function that unregisters
// it.
func (g *Guard) OnExhaust(stop func()) (remove func()) {
	g.mu.Lock()
	if g.refused {
		g.mu.Unlock()
		stop()
		return func() {}
	}
	if g.stops == nil {
		g.stops = map[int]func(){}
	}
	id := g.next
	g.next++
	g.stops[id] = stop
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		delete(g.stops, id)
		g.mu.Unlock()
	}
}

// reserve takes n commands from the budget, or refuses.
func (g *Guard) reserve(n int64) error {
	for {
		u := g.used.Load()
		if u+n > g.max {
			g.exhaust()
			return fmt.Errorf("%w (%d of %d used)", ErrBudget, u, g.max)
		}
		if g.used.CompareAndSwap(u, u+n) {
			return nil
		}
	}
}

func (g *Guard) exhaust() {
	g.mu.Lock()
	first := !g.refused
	g.refused = true
	stops := g.stops
	g.stops = nil
	g.mu.Unlock()
	if first {
		for _, s := range stops {
			s()
		}
	}
}

// DialHook passes dials through: they cost no command.
func (g *Guard) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

// ProcessHook reserves one command before sending it.
func (g *Guard) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := g.reserve(1); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook reserves the pipeline's commands before sending it.
func (g *Guard) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := g.reserve(int64(len(cmds))); err != nil {
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		return next(ctx, cmds)
	}
}
