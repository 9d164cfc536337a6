package target

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// killedNodes are the data nodes a replicated target's KillPrimary killed,
// until its RestartKilled starts them again.
type killedNodes struct {
	mu sync.Mutex
	ps []*Process
}

// kill kills p with SIGKILL and remembers it.
func (k *killedNodes) kill(ctx context.Context, p *Process) error {
	if err := p.Kill(ctx); err != nil {
		return err
	}
	k.mu.Lock()
	k.ps = append(k.ps, p)
	k.mu.Unlock()
	return nil
}

// list is the killed nodes not restarted yet.
func (k *killedNodes) list() []*Process {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]*Process(nil), k.ps...)
}

// restart starts every killed node again on its port and directory, after
// prepare (nil: none) has set its options; it forgets them either way.
func (k *killedNodes) restart(ctx context.Context, prepare func(*Process)) error {
	k.mu.Lock()
	ps := k.ps
	k.ps = nil
	k.mu.Unlock()
	var errs []error
	for _, p := range ps {
		if prepare != nil {
			prepare(p)
		}
		if err := p.Restart(ctx); err != nil {
			errs = append(errs, fmt.Errorf("restarting %s: %w", p.Addr(), err))
		}
	}
	return errors.Join(errs...)
}
