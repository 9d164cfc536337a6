package bench

import (
	"context"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/target"
)

// openTarget starts or opens cfg's target. An unreachable URL is bad
// input (exit 3) whose text never shows the password. remote-sim stands in
// for Upstash: a TLS redis-server behind a proxy adding cfg.RTT. sentinel
// is a primary with a replica and three sentinels: the layers reach it by
// go-redis's failover client, and publish with durable acknowledgement
// unless cfg.AckReplicas is -1. cluster is three primaries with a replica
// each: the layers and the raw ops reach it by go-redis's cluster client.
func openTarget(ctx context.Context, cfg *Config) (target.Target, error) {
	switch cfg.Target {
	case target.KindURL:
		return target.OpenURL(ctx, cfg.URL, target.URLOptions{})
	case target.KindRemoteSim:
		return chaos.StartRemoteSim(ctx, cfg.RTT, target.ProcessOptions{})
	case target.KindSentinel:
		s, err := target.StartSentinel(ctx, target.SentinelOptions{})
		if err != nil {
			return nil, err
		}
		return s, nil
	case target.KindCluster:
		c, err := target.StartCluster(ctx, target.ClusterOptions{})
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	p, err := target.StartProcess(ctx, target.ProcessOptions{})
	if err != nil {
		return nil, err
	}
	return p, nil
}
