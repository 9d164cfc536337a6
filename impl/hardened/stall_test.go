package hardened_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/target"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stallRun subscribes two in-process consumers to a flow, one that never
// reads and one that reads everything, publishes 3,000 events of 16 KB
// and returns the largest retained heap growth, whether the stalled
// subscription was closed, and what the reading consumer got.
func stallRun(t *testing.T, mod func(*impl.Config)) (growth uint64, closed bool, got, want []string) {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	l, _, _ := layer(t, p, "A", func(c *impl.Config) {
		c.PublishBudget = 5 * time.Second
		if mod != nil {
			mod(c)
		}
	})
	ctx := bg(t)
	stalled, err := l.Bus.Subscribe(ctx, "f", "")
	require.NoError(t, err)
	reader, err := l.Bus.Subscribe(ctx, "f", "")
	require.NoError(t, err)
	gotc := make(chan []string, 1)
	go func() {
		var ids []string
		for e := range reader {
			ids = append(ids, e.ID)
			if len(ids) == 3000 {
				break
			}
		}
		gotc <- ids
	}()
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	base := heap()
	pad := strings.Repeat("x", 16<<10)
	for i := range 3000 {
		e := impl.Event{ID: fmt.Sprintf("e%05d", i), FlowID: "f", Type: "BIG", Timestamp: time.Now().UTC(),
			Payload: json.RawMessage(`{"pad":"` + pad + `"}`)}
		require.NoError(t, l.Bus.Publish(ctx, e))
		want = append(want, e.ID)
		if i%250 == 249 {
			h := heap()
			growth = max(growth, h-min(base, h))
		}
	}
	select {
	case got = <-gotc:
	case <-time.After(20 * time.Second):
		t.Error("the reading consumer did not get 3000 events within 20 s")
	}
	h := heap()
	growth = max(growth, h-min(base, h))
	// A closed subscription still hands out what was sent before it
	// closed: read until the channel ends, briefly.
	deadline := time.After(5 * time.Second)
	for !closed {
		select {
		case _, ok := <-stalled:
			closed = !ok
		case <-deadline:
			t.Logf("retained heap growth %d MiB; stalled subscription closed: %v", growth>>20, closed)
			return growth, closed, got, want
		}
	}
	t.Logf("retained heap growth %d MiB; stalled subscription closed: %v", growth>>20, closed)
	return growth, closed, got, want
}

// TestStalledSubscriber (issue 12, item 3, in-process): a Bus.Subscribe
// consumer that stops reading costs bounded memory (the subscriber's
// queue, 16 MiB of payloads by default) and has its subscription closed;
// another consumer gets every event in order.
func TestStalledSubscriber(t *testing.T) {
	growth, closed, got, want := stallRun(t, nil)
	assert.Less(t, growth, uint64(40<<20), "retained heap growth")
	assert.True(t, closed, "the stalled subscription is closed")
	assert.Equal(t, want, got, "the reading consumer")
}

// TestStalledSubscriberMutant: without the bound the stalled consumer's
// queue holds every event (48 MB of payloads), and the check sees it.
func TestStalledSubscriberMutant(t *testing.T) {
	growth, closed, _, _ := stallRun(t, func(c *impl.Config) { c.SubscriberQueue, c.SubscriberQueueBytes = -1, -1 })
	assert.Greater(t, growth, uint64(40<<20), "mutant: retained heap growth must exceed the bound")
	assert.False(t, closed, "mutant: the stalled subscription stays open")
}
