package hardened

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Resubscribe after a failover. go-redis's failover client follows a new
// primary for commands (it drops pooled connections to the old one) but
// not for Pub/Sub: a subscription stays on the node it was opened on. When
// that node is demoted a sentinel drops its clients, and the hub reconnects
// as after an outage; but a demoted primary the sentinels cannot reach (a
// partition) keeps its subscribers, who would hear nothing published on
// the new primary. So a layer on sentinels listens to them itself: on
// +switch-master for its primary it treats the switch as a reconnection
// (down, then up on the same client), and the hub reopens its Pub/Sub
// connection on the new primary and has every subscriber catch up from
// the stream, the registry writes its connections again (the old primary
// may have taken some with it), the cache restores its epoch.

// watchSwitch subscribes to +switch-master on the sentinels in addrs
// (the first that answers; go-redis reconnects a dropped subscription)
// until the layer closes.
func (m *manager) watchSwitch(fo *redis.FailoverOptions) {
	sc := redis.NewSentinelClient(&redis.Options{
		Addr: fo.SentinelAddrs[0], Username: fo.SentinelUsername, Password: fo.SentinelPassword,
		DialTimeout: m.cfg.ConnectTimeout, ReadTimeout: m.io, WriteTimeout: m.io, TLSConfig: fo.TLSConfig,
	})
	defer sc.Close()
	ps := sc.Subscribe(m.ctx, "+switch-master")
	defer ps.Close()
	ch := ps.Channel()
	for {
		select {
		case <-m.stop:
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			// "<master name> <old ip> <old port> <new ip> <new port>"
			if name, _, _ := strings.Cut(msg.Payload, " "); name == fo.MasterName {
				m.primarySwitched()
			}
		}
	}
}

// primarySwitched has the probe loop tell the listeners down, then up on
// the current client (see notify).
func (m *manager) primarySwitched() {
	m.switched.Store(true)
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// startWatch starts watchSwitch when the URL names sentinels.
func (m *manager) startWatch(ctx context.Context) {
	if fo, err := redis.ParseFailoverURL(m.cfg.URL); err == nil && len(fo.SentinelAddrs) > 0 {
		if m.cfg.TLS != nil {
			fo.TLSConfig = m.cfg.TLS
		}
		m.goroutine(func() { m.watchSwitch(fo) })
	}
}
