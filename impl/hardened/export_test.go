package hardened

import "github.com/gonogo/harness/impl"

// SetGapMarks turns the scripts' gap marks on or off for bus (on by
// default only on a Redis Cluster), so that a test on one redis-server
// exercises them.
func SetGapMarks(bus impl.Bus, on bool) {
	b := bus.(*Bus)
	b.gapArg = "0"
	if on {
		b.gapArg = "1"
	}
}

// StreamKey and Channel are the key and channel of flow's events on bus.
func StreamKey(bus impl.Bus, flow string) string { return bus.(*Bus).k.events(flow) }
func Channel(bus impl.Bus, flow string) string   { return bus.(*Bus).k.channel(flow) }

// ConnsKey is the key of flow's connections (a sorted set by expiry) of
// reg.
func ConnsKey(reg impl.Registry, flow string) string { return reg.(*Registry).k.conns(flow) }

// Landed is the entry the layer knows its outbox event id of flow was
// written at ("" if none is known, or the event is not in the outbox).
func Landed(bus impl.Bus, flow, id string) string {
	b := bus.(*Bus)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.outbox {
		if p.e.FlowID == flow && p.e.ID == id {
			return p.landed
		}
	}
	return ""
}

// KeyPrefix is the key prefix of bus (impl.Config.KeyPrefix).
func KeyPrefix(bus impl.Bus) string { return bus.(*Bus).k.prefix }
