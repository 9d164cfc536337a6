package chaos

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gonogo/harness/target"
)

// destructive says whether env allows a fault that changes the server.
func destructive(env Env) error {
	if env.Target == nil {
		return errors.New("needs a target")
	}
	if !env.Target.Owned() && !env.AllowDestructive {
		return fmt.Errorf("refused on a %s target the harness does not own (allow destructive faults explicitly)", env.Target.Kind())
	}
	return nil
}

// ability returns env's target as T, or an error naming what is missing.
func ability[T any](env Env, what string) (T, error) {
	var zero T
	if err := destructive(env); err != nil {
		return zero, err
	}
	a, ok := env.Target.(T)
	if !ok {
		return zero, fmt.Errorf("a %s target cannot %s", env.Target.Kind(), what)
	}
	return a, nil
}

// killRestarter is what Kill needs.
type killRestarter interface {
	target.Killer
	target.Restarter
}

// running is implemented by targets that know whether the server runs.
type running interface{ Pid() int }

// down reports whether the target's server is known not to run.
func down(t target.Target) bool {
	r, ok := t.(running)
	return ok && r.Pid() == 0
}

// Kill kills the server with SIGKILL; Undo starts it again on the same
// port and data dir (what survives depends on AOF).
type Kill struct{}

// Name is "kill".
func (Kill) Name() string { return "kill" }

// Available needs an owned target that can be killed and restarted.
func (Kill) Available(env Env) error {
	_, err := ability[killRestarter](env, "be killed and restarted")
	return err
}

// Inject kills the server.
func (Kill) Inject(ctx context.Context, env Env) error {
	k, err := ability[killRestarter](env, "be killed and restarted")
	if err != nil {
		return err
	}
	return k.Kill(ctx)
}

// Undo restarts the server if it is not running.
func (Kill) Undo(ctx context.Context, env Env) error { return restartIfDown(ctx, env) }

func restartIfDown(ctx context.Context, env Env) error {
	r, err := ability[target.Restarter](env, "be restarted")
	if err != nil {
		return err
	}
	if !down(env.Target) {
		return nil
	}
	return r.Restart(ctx)
}

// Pause freezes the server (SIGSTOP) until Undo (SIGCONT): connections stay
// open and every call hangs.
type Pause struct{}

// Name is "pause".
func (Pause) Name() string { return "pause" }

// Available needs an owned target that can be paused.
func (Pause) Available(env Env) error {
	_, err := ability[target.Pauser](env, "be paused")
	return err
}

// Inject pauses the server.
func (Pause) Inject(ctx context.Context, env Env) error {
	p, err := ability[target.Pauser](env, "be paused")
	if err != nil {
		return err
	}
	return p.Pause(ctx)
}

// Undo resumes it.
func (Pause) Undo(ctx context.Context, env Env) error {
	p, err := ability[target.Pauser](env, "be paused")
	if err != nil {
		return err
	}
	return p.Resume(ctx)
}

// Restart stops the server and starts it again on the same port and dir:
// cleanly (SIGTERM, which flushes AOF) or, with Hard, by SIGKILL. The
// outage is as long as the restart; Undo only restarts a server left down
// by a failed Inject.
type Restart struct {
	Hard bool
}

// hardRestarter is what a hard Restart needs.
type hardRestarter = killRestarter

// Name is "restart".
func (Restart) Name() string { return "restart" }

// Available needs an owned target that can be restarted (and killed, for
// Hard).
func (f Restart) Available(env Env) error {
	if f.Hard {
		_, err := ability[hardRestarter](env, "be killed and restarted")
		return err
	}
	_, err := ability[target.Restarter](env, "be restarted")
	return err
}

// Inject restarts the server.
func (f Restart) Inject(ctx context.Context, env Env) error {
	if f.Hard {
		k, err := ability[hardRestarter](env, "be killed and restarted")
		if err != nil {
			return err
		}
		if err := k.Kill(ctx); err != nil {
			return err
		}
		return k.Restart(ctx)
	}
	r, err := ability[target.Restarter](env, "be restarted")
	if err != nil {
		return err
	}
	return r.Restart(ctx)
}

// Undo restarts the server if it is not running.
func (f Restart) Undo(ctx context.Context, env Env) error { return restartIfDown(ctx, env) }

// MaxMemory sets maxmemory to Bytes and maxmemory-policy to Policy
// (default allkeys-lru) with CONFIG SET; Undo restores the previous values.
// Use it through a pointer: it keeps them.
type MaxMemory struct {
	Bytes  int64
	Policy string

	saved map[string]string
}

// Name is "maxmemory".
func (f *MaxMemory) Name() string { return "maxmemory" }

// Available needs an owned target that takes CONFIG SET.
func (f *MaxMemory) Available(env Env) error {
	_, err := ability[target.Configurer](env, "change its configuration")
	return err
}

func (f *MaxMemory) settings() [][2]string {
	policy := f.Policy
	if policy == "" {
		policy = "allkeys-lru"
	}
	return [][2]string{{"maxmemory-policy", policy}, {"maxmemory", strconv.FormatInt(f.Bytes, 10)}}
}

// Inject saves the current values and sets the new ones.
func (f *MaxMemory) Inject(ctx context.Context, env Env) error {
	c, err := ability[target.Configurer](env, "change its configuration")
	if err != nil {
		return err
	}
	if f.Bytes <= 0 {
		return fmt.Errorf("maxmemory: bytes %d; want > 0", f.Bytes)
	}
	saved := map[string]string{}
	for _, kv := range f.settings() {
		v, err := c.ConfigGet(ctx, kv[0])
		if err != nil {
			return fmt.Errorf("maxmemory: %w", err)
		}
		saved[kv[0]] = v
	}
	f.saved = saved
	for _, kv := range f.settings() {
		if err := c.ConfigSet(ctx, kv[0], kv[1]); err != nil {
			return fmt.Errorf("maxmemory: config set %s: %w", kv[0], err)
		}
	}
	return nil
}

// Undo restores the saved values, if Inject got as far as saving them.
func (f *MaxMemory) Undo(ctx context.Context, env Env) error {
	if f.saved == nil {
		return nil
	}
	c, err := ability[target.Configurer](env, "change its configuration")
	if err != nil {
		return err
	}
	var errs []error
	for _, kv := range f.settings() {
		if err := c.ConfigSet(ctx, kv[0], f.saved[kv[0]]); err != nil {
			errs = append(errs, fmt.Errorf("maxmemory: restore %s: %w", kv[0], err))
		}
	}
	f.saved = nil
	return errors.Join(errs...)
}

// parseBytes reads a Redis memory size: "1048576", "100kb", "2mb", "1gb"
// (powers of 1024, as redis.conf).
func parseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a memory size", s)
	}
	return n * mult, nil
}
