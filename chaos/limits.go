package chaos

import (
	"context"
	"errors"
	"fmt"
)

// limiter returns env's target when it is a Limiter (upstash-sim), else
// env's proxy as one. A proxy's limits parse RESP, so the target must
// speak plain TCP unless plain is false.
func limiter(env Env, plain bool) (Limiter, error) {
	if l, ok := env.Target.(Limiter); ok {
		return l, nil // upstash-sim: its front, where TLS ends, is the limiter
	}
	if err := needProxy(env); err != nil {
		return nil, err
	}
	l, ok := env.Proxy.(Limiter)
	if !ok {
		return nil, errors.New("needs the embedded proxy (an external Toxiproxy cannot answer for Redis)")
	}
	if plain && env.Target != nil && env.Target.TLS() != nil {
		return nil, errors.New("reads RESP, and this target speaks TLS")
	}
	return l, nil
}

// Quota answers every command past the next Limit with Upstash's
// "ERR max requests limit exceeded. Limit: N, Usage: N" instead of
// forwarding it (commands in a pipeline count one by one), until Undo.
type Quota struct {
	Limit int
}

// Name is "quota".
func (Quota) Name() string { return "quota" }

// Available needs the embedded proxy and a plain target.
func (Quota) Available(env Env) error {
	_, err := limiter(env, true)
	return err
}

// Inject starts counting.
func (f Quota) Inject(ctx context.Context, env Env) error {
	l, err := limiter(env, true)
	if err != nil {
		return err
	}
	if f.Limit <= 0 {
		return fmt.Errorf("quota: limit %d; want > 0", f.Limit)
	}
	l.SetQuota(f.Limit)
	return nil
}

// Undo lifts the quota.
func (Quota) Undo(ctx context.Context, env Env) error {
	l, err := limiter(env, true)
	if err != nil {
		return err
	}
	l.SetQuota(0)
	return nil
}

// ConnLimit answers every command of a connection opened while Limit
// connections are open with "ERR max concurrent connections exceeded",
// until Undo. Open connections are kept.
type ConnLimit struct {
	Limit int
}

// Name is "conn_limit".
func (ConnLimit) Name() string { return "conn_limit" }

// Available needs the embedded proxy and a plain target.
func (ConnLimit) Available(env Env) error {
	_, err := limiter(env, true)
	return err
}

// Inject sets the limit.
func (f ConnLimit) Inject(ctx context.Context, env Env) error {
	l, err := limiter(env, true)
	if err != nil {
		return err
	}
	if f.Limit <= 0 {
		return fmt.Errorf("conn_limit: limit %d; want > 0", f.Limit)
	}
	l.SetConnLimit(f.Limit)
	return nil
}

// Undo lifts it.
func (ConnLimit) Undo(ctx context.Context, env Env) error {
	l, err := limiter(env, true)
	if err != nil {
		return err
	}
	l.SetConnLimit(0)
	return nil
}

// RateLimiter caps the commands a target's server executes per second
// (upstash-sim).
type RateLimiter interface {
	SetRate(perSec int)
}

// RateCap caps the commands the server executes per second at Limit
// (upstash-sim: commands past it are held until the last second is under
// it), until Undo.
type RateCap struct {
	Limit int
}

// Name is "rate_cap".
func (RateCap) Name() string { return "rate_cap" }

func rateLimiter(env Env) (RateLimiter, error) {
	if l, ok := env.Target.(RateLimiter); ok {
		return l, nil
	}
	return nil, errors.New("needs the upstash-sim target (its commands/s cap counts what the server executed)")
}

// Available needs upstash-sim.
func (RateCap) Available(env Env) error {
	_, err := rateLimiter(env)
	return err
}

// Inject sets the cap.
func (f RateCap) Inject(ctx context.Context, env Env) error {
	l, err := rateLimiter(env)
	if err != nil {
		return err
	}
	if f.Limit <= 0 {
		return fmt.Errorf("rate_cap: limit %d; want > 0", f.Limit)
	}
	l.SetRate(f.Limit)
	return nil
}

// Undo lifts it.
func (RateCap) Undo(ctx context.Context, env Env) error {
	l, err := rateLimiter(env)
	if err != nil {
		return err
	}
	l.SetRate(0)
	return nil
}
