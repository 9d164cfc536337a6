package hardened

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cache epochs. With REDIS_ENABLED=false (the tracker's rollback) an
// instance invalidates only its memory cache: the database writes made
// while every instance ran rolled back never reach Redis, and a state
// cached before would be served again once Redis is re-enabled. So the
// cache serves from Redis only states cached in the current epoch (the
// epoch is part of the state key: a read stays one MGET), and an instance
// that joins when no other instance holds a live membership starts a new
// epoch. Every instance serving from Redis holds a membership in
// cacheMembers, leased for Cache.lease and renewed every third of it;
// Close gives it up. An instance whose own lease ran out does not serve
// from Redis until it renews, and then adopts whatever epoch the members
// hold. What a crashed instance (no Close) leaves lapses with its lease: a
// rollback shorter than that after a crash is not noticed. Clocks of the
// instances are assumed to agree (as the registry's expiries do).
//
// leaseScript renews (or, joining, takes) the caller's membership and
// returns the epoch to serve in: a fresh one (ARGV[4]) when no other live
// member remains; the stored one otherwise; false when the epoch key is
// gone while others are live and the caller is joining (it retries; a
// member restores the key from the epoch it knows).
//
// KEYS: members, epoch. ARGV: now ms, lease expiry ms, server ID, fresh
// epoch, "1" when joining (a membership of the same server ID then does
// not count: it is a previous process's), known epoch ("" none), members
// key TTL ms.
var leaseScript = newScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local live = redis.call('ZCARD', KEYS[1])
if ARGV[5] == '1' and redis.call('ZSCORE', KEYS[1], ARGV[3]) then live = live - 1 end
local e = redis.call('GET', KEYS[2])
if live == 0 then
  e = ARGV[4]
  redis.call('SET', KEYS[2], e)
elseif not e then
  if ARGV[5] == '1' or ARGV[6] == '' then return false end
  e = ARGV[6]
  redis.call('SET', KEYS[2], e)
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return e
`)

// errNoEpoch: the members are live but the epoch key is gone; the caller
// waits for a member to restore it.
var errNoEpoch = errors.New("hardened: cache epoch unknown: waiting for a live member to restore it")

// lease is how long a cache membership lasts unrenewed: three health
// intervals, at least three probe intervals (the renewal tick).
func (c *Cache) lease() time.Duration {
	return 3 * max(c.m.cfg.HealthInterval, c.m.cfg.ProbeInterval)
}

// renew takes or renews this instance's membership (one script call) and
// learns the epoch to serve in. Renewals run one at a time: two joins in
// flight at once (an instance's first cache calls, side by side) would each
// start an epoch, and the instance could go on serving the one Redis no
// longer names. Unless forced, a renewal that finds the lease already
// taken while it waited for its turn does nothing.
func (c *Cache) renew(ctx context.Context, force bool) error {
	select {
	case c.renewing <- struct{}{}:
		defer func() { <-c.renewing }()
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	joining, known := !c.joined, c.epoch
	leased := c.epoch != "" && time.Now().Before(c.leaseUntil)
	c.mu.Unlock()
	if leased && !force {
		return nil
	}
	lease := c.lease()
	start := time.Now()
	joinArg := "0"
	if joining {
		joinArg = "1"
	}
	var epoch string
	err := c.m.call(ctx, "cache_lease", c.m.io, func(ctx context.Context, rdb redis.UniversalClient) error {
		v, err := leaseScript.Run(ctx, rdb, []string{c.k.cacheMembers(), c.k.cacheEpoch()},
			start.UnixMilli(), start.Add(lease).UnixMilli(), c.m.cfg.ServerID, newID(), joinArg, known,
			(2 * lease).Milliseconds()).Result()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		epoch, _ = v.(string)
		return err
	})
	if err != nil {
		return err
	}
	if epoch == "" {
		return errNoEpoch
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.joined, c.epoch = true, epoch
	c.leaseUntil, c.renewed = start.Add(lease), start
	return nil
}

// leave gives up this instance's membership, so that when the last member
// has left the next one to join starts a new epoch. Close calls it.
func (c *Cache) leave() error {
	c.mu.Lock()
	joined := c.joined
	c.joined, c.epoch = false, ""
	c.mu.Unlock()
	if !joined {
		return nil
	}
	err := c.m.call(context.Background(), "cache_lease", c.m.io, func(ctx context.Context, rdb redis.UniversalClient) error {
		return rdb.ZRem(ctx, c.k.cacheMembers(), c.m.cfg.ServerID).Err()
	})
	if err != nil {
		return fmt.Errorf("hardened: cache membership not given up (it lapses within %s; a rollback shorter than that is not noticed): %w", c.lease(), err)
	}
	return nil
}
