package scriptkeys

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/redis/go-redis/v9"
)

// undeclaredScript names its flow's stream in KEYS and builds the flow's
// counter key from its arguments, as hardened's heartbeat script once
// built a flow's keys from what it read.
var undeclaredScript = redis.NewScript(`
redis.call('EXISTS', KEYS[1])
redis.call('INCR', ARGV[1] .. '{count:' .. ARGV[2] .. '}')
return 1`)

// mutant is hardened whose publish also runs undeclaredScript.
func mutant(ctx context.Context, cfg impl.Config) (*impl.Layer, error) {
	l, err := hardened.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		l.Close()
		return nil, err
	}
	rdb := redis.NewClient(opts)
	rdb.AddHook(cfg.Hooks[0])
	l.Bus = mutantBus{Bus: l.Bus, rdb: rdb, prefix: cfg.KeyPrefix}
	closeLayer := l.Close
	l.Close = func() error { rdb.Close(); return closeLayer() }
	return l, nil
}

type mutantBus struct {
	impl.Bus
	rdb    *redis.Client
	prefix string
}

func (b mutantBus) Publish(ctx context.Context, e impl.Event) error {
	if err := undeclaredScript.Run(ctx, b.rdb, []string{b.prefix + "{flow:" + e.FlowID + "}:events"}, b.prefix, e.FlowID).Err(); err != nil {
		return err
	}
	return b.Bus.Publish(ctx, e)
}

func registry() *impl.Profiles {
	reg := &impl.Profiles{}
	reg.Register(hardened.Profile, hardened.New)
	reg.Register("undeclared", mutant)
	return reg
}

// The check on a real three-node cluster: hardened's scripts each name
// every key they touch in KEYS (all but the outbox replay's, which needs
// an outage, run at least once), and the mutant's undeclared key fails it
// on every call.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	reg := registry()
	k, err := NewChecker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	h, err := k.Check(ctx, reg, hardened.Profile)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	h.WriteTable(&b)
	t.Logf("hardened (%d commands replayed):\n%s", h.Commands, b.String())
	if h.Failed() {
		t.Errorf("hardened: a script touches a key it does not declare:\n%s", b.String())
	}
	ran := 0
	for _, s := range h.Scripts {
		if s.Calls > 0 {
			ran++
		}
	}
	if ran < 7 {
		t.Errorf("hardened: %d of %d scripts ran; want 7 (publish, register, heartbeat, remove, fill, invalidate, lease)", ran, len(h.Scripts))
	}

	m, err := k.Check(ctx, reg, "undeclared")
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	m.WriteTable(&b)
	caught := false
	for _, s := range m.Scripts {
		if strings.Contains(s.Head, "EXISTS") {
			// 6 publishes: an EVALSHA each, and the first's EVAL after NOSCRIPT.
			caught = s.Verdict() == "FAIL" && s.Failed == s.Calls && s.Calls >= 6
		}
	}
	if !caught || !m.Failed() {
		t.Errorf("the undeclared-key mutant was not caught on each of its calls:\n%s", b.String())
	}
}
