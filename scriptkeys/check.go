package scriptkeys

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/target"
	"github.com/redis/go-redis/v9"
)

// ClusterNodes is the size of the cluster the recording is replayed on.
const ClusterNodes = 3

// clusterStart bounds the cluster's start-up; callTimeout one call of the
// exercise or the replay.
const (
	clusterStart = 30 * time.Second
	callTimeout  = 5 * time.Second
)

// Checker holds what a check runs on: a redis-server the layers are
// exercised on and a cluster of ClusterNodes redis-server processes the
// recording is replayed on. One checker serves several checks in turn.
type Checker struct {
	p    *target.Process
	c    *target.SlotCluster
	node *redis.Client
	n    int // checks run: each exercise has a key prefix of its own
}

// NewChecker starts the redis-server and the cluster.
func NewChecker(ctx context.Context) (*Checker, error) {
	p, err := target.StartProcess(ctx, target.ProcessOptions{})
	if err != nil {
		return nil, err
	}
	k := &Checker{p: p}
	if k.c, err = target.StartSlotCluster(ctx, ClusterNodes, clusterStart); err != nil {
		k.Close()
		return nil, err
	}
	slot, err := k.c.Slot(ctx, SlotKey())
	if err != nil {
		k.Close()
		return nil, exitcode.Harness(err)
	}
	k.node = redis.NewClient(&redis.Options{Addr: k.c.NodeOf(slot).Addr(), Protocol: 2, MaxRetries: -1,
		ReadTimeout: callTimeout, WriteTimeout: callTimeout, DialTimeout: callTimeout, PoolSize: 1})
	return k, nil
}

// Close stops everything the checker started.
func (k *Checker) Close() error {
	var errs []error
	if k.node != nil {
		errs = append(errs, k.node.Close())
	}
	if k.c != nil {
		errs = append(errs, k.c.Close())
	}
	return errors.Join(append(errs, k.p.Close())...)
}

// Check records profile's layers exercising every operation (Exercise),
// then replays the recording on the cluster (Replay). Both servers are
// emptied first.
func (k *Checker) Check(ctx context.Context, layers *impl.Profiles, profile string) (Report, error) {
	if err := k.node.FlushAll(ctx).Err(); err != nil {
		return Report{}, exitcode.Harness(err)
	}
	k.n++
	rec := NewRecorder()
	if err := Exercise(ctx, layers, profile, k.p.URL(), "gonogo-keys-"+strconv.Itoa(k.n)+":", rec); err != nil {
		return Report{}, err
	}
	rep, err := rec.Replay(ctx, k.node)
	if err != nil {
		return rep, exitcode.Harness(err)
	}
	return rep, nil
}

// exerciseTTL is the registry TTL of the exercised layers: short, so a
// connection expires and the cleanup removes it within the exercise.
const exerciseTTL = time.Second

// Exercise runs every operation of the layer interfaces with two
// instances of profile on url, keys under prefix (one heartbeats and unregisters connections
// the other registered, and cleans up one that expired), every command
// recorded by rec.
func Exercise(ctx context.Context, layers *impl.Profiles, profile, url, prefix string, rec *Recorder) error {
	cfg := impl.Config{URL: url, Enabled: true, EventBus: true, Cache: true, SSE: true, Hooks: []redis.Hook{rec},
		KeyPrefix: prefix, RegistryTTL: exerciseTTL, CleanupInterval: time.Hour,
		PublishBudget: callTimeout, CallBudget: callTimeout}
	var ls [2]*impl.Layer
	for i := range ls {
		cfg.ServerID = "keys-" + strconv.Itoa(i)
		l, err := layers.New(ctx, profile, cfg)
		if err != nil {
			return exitcode.Harnessf("profile %s: %w", profile, err)
		}
		defer l.Close()
		ls[i] = l
	}
	a, b := ls[0], ls[1]
	state := map[string]any{"status": "active"}
	steps := []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"publish", func(ctx context.Context) error {
			for i := 0; i < 3; i++ {
				for _, f := range []string{"f1", "f2"} {
					e := impl.Event{ID: f + "-" + strconv.Itoa(i), FlowID: f, Type: "T", Payload: []byte(`{}`), Timestamp: time.Now(), Source: "keys"}
					if err := a.Bus.Publish(ctx, e); err != nil {
						return err
					}
				}
			}
			return nil
		}},
		{"history", func(ctx context.Context) error { _, err := b.Bus.History(ctx, "f1", 10, time.Time{}); return err }},
		{"cache set", func(ctx context.Context) error { return a.Cache.Set(ctx, "f1", state, "active", "") }},
		{"cache get", func(ctx context.Context) error { _, err := b.Cache.Get(ctx, "f1"); return err }},
		{"cache invalidate", func(ctx context.Context) error { return b.Cache.Invalidate(ctx, "f1") }},
		{"cache fill", func(ctx context.Context) error {
			e, err := a.Cache.Get(ctx, "f1")
			if err != nil {
				return err
			}
			return a.Cache.Set(ctx, "f1", state, "active", e.Lease)
		}},
		{"cache metrics", func(ctx context.Context) error { _, err := a.Cache.Metrics(ctx, "f1"); return err }},
		{"register", func(ctx context.Context) error {
			for _, c := range []impl.Conn{{ID: "c1", FlowID: "f1"}, {ID: "c2", FlowID: "f2"}, {ID: "c3", FlowID: "f2"}} {
				if err := a.Registry.Register(ctx, c); err != nil {
					return err
				}
			}
			return nil
		}},
		{"heartbeat (own)", func(ctx context.Context) error { return a.Registry.Heartbeat(ctx, "c1") }},
		{"heartbeat (other instance's)", func(ctx context.Context) error { return b.Registry.Heartbeat(ctx, "c1") }},
		{"lookup", func(ctx context.Context) error { _, err := b.Registry.Lookup(ctx, "f1"); return err }},
		{"count", func(ctx context.Context) error { _, err := b.Registry.Count(ctx); return err }},
		{"unregister (other instance's)", func(ctx context.Context) error { return b.Registry.Unregister(ctx, "c2") }},
		{"cleanup (expired)", func(ctx context.Context) error {
			select {
			case <-time.After(exerciseTTL + 100*time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			_, err := b.Registry.Cleanup(ctx)
			return err
		}},
	}
	for _, s := range steps {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		err := s.do(cctx)
		cancel()
		if err != nil {
			return exitcode.Harnessf("%s %s: %w", profile, s.name, err)
		}
	}
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return exitcode.Harness(fmt.Errorf("%s close: %w", profile, err))
	}
	return nil
}
