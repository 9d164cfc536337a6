package hardened

import (
	"errors"
	"fmt"
	"testing"
)

// reply is an error reply from Redis as go-redis returns it (redis.Error).
type reply string

func (r reply) Error() string { return string(r) }
func (reply) RedisError()     {}

// TestClusterReplies: the error replies a cluster client may pass on when
// its redirects ran out or keys are split (MOVED and ASK while a failover
// or a slot migration is in flight, TRYAGAIN while a slot's keys are
// split) mean that Redis cannot serve these keys now: the caller falls
// back (outage) rather than failing the call, and the breaker takes none
// of them as evidence (moving), since other slots answer. CLUSTERDOWN (a
// slot without a primary) is an outage and evidence. A publish got "MOVED
// 6359 127.0.0.1:40531" back through a CLUSTER FAILOVER (cluster_failover,
// error_rate FAIL) before MOVED and ASK were outages.
func TestClusterReplies(t *testing.T) {
	for _, c := range []struct {
		reply          string
		outage, moving bool
	}{
		{"MOVED 6359 127.0.0.1:40531", true, true},
		{"ASK 6359 127.0.0.1:40531", true, true},
		{"TRYAGAIN Multiple keys request during rehashing of slot", true, true},
		{"CLUSTERDOWN The cluster is down", true, false},
		{"CROSSSLOT Keys in request don't hash to the same slot", false, false},
		{"WRONGTYPE Operation against a key holding the wrong kind of value", false, false},
	} {
		err := fmt.Errorf("hardened: publish e1: %w", reply(c.reply))
		if got := outage(err); got != c.outage {
			t.Errorf("outage(%q) = %v; want %v", c.reply, got, c.outage)
		}
		if got := moving(err); got != c.moving {
			t.Errorf("moving(%q) = %v; want %v", c.reply, got, c.moving)
		}
	}
	if outage(errors.New("x")) != true || moving(errors.New("x")) {
		t.Error("a network error: want an outage and breaker evidence")
	}
}
