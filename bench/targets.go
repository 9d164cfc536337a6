package bench

import (
	"context"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/target"
)

// openTarget starts or opens cfg's target. An unreachable URL is bad
// input (exit 3) whose text never shows the password. remote-sim stands in
// for Upstash: a TLS redis-server behind a proxy adding cfg.RTT.
func openTarget(ctx context.Context, cfg *Config) (target.Target, error) {
	switch cfg.Target {
	case target.KindURL:
		return target.OpenURL(ctx, cfg.URL, target.URLOptions{})
	case target.KindRemoteSim:
		return chaos.StartRemoteSim(ctx, cfg.RTT, target.ProcessOptions{})
	}
	p, err := target.StartProcess(ctx, target.ProcessOptions{})
	if err != nil {
		return nil, err
	}
	return p, nil
}
