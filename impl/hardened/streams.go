package hardened

import "github.com/gonogo/harness/impl"

var _ impl.Streams = (*Bus)(nil)

// StreamKey is the flow's stream; each entry holds the event's JSON in its
// field "event".
func (b *Bus) StreamKey(flowID string) string { return b.k.events(flowID) }
