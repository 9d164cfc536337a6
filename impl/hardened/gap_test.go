package hardened_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gonogo/harness/impl/conformance"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/gonogo/harness/target"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGapMarks: on a Redis Cluster a flow's messages come from two nodes
// while its slot moves, and one can arrive after the next
// (scenarios/findings/delivery-320efbad.yaml). Here an entry whose message
// has not come yet is written straight to the stream, then the next event
// is published: with gap marks the subscriber reads the missing entry
// from the stream and gets both in order, and the late message, when it
// comes, is not delivered again. Without them (the mutant) the earlier
// entry is never delivered.
func TestGapMarks(t *testing.T) {
	got := gapDelivery(t, true)
	assert.Equal(t, []string{"f-001", "f-002", "f-003"}, got, "gap marks: the missing entry from the stream, then the next, once each")
}

func TestGapMarksMutant(t *testing.T) {
	got := gapDelivery(t, false)
	assert.NotContains(t, got, "f-002", "without gap marks the entry whose message came late is skipped")
	t.Logf("without gap marks: delivered %v", got)
}

// gapDelivery returns what a live subscriber received of f-001..f-003 when
// f-002's message comes after f-003's.
func gapDelivery(t *testing.T, marks bool) []string {
	p := conformance.StartRedis(t, target.ProcessOptions{})
	l, _, _ := layer(t, p, "A", nil)
	hardened.SetGapMarks(l.Bus, marks)
	ctx := bg(t)
	live, _ := followed(ctx, t, l)
	require.NoError(t, l.Bus.Publish(ctx, ev("f", 1)))
	ids := []string{conformance.Receive(t, live, 5*time.Second).ID}

	rdb := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer rdb.Close()
	b, err := json.Marshal(ev("f", 2))
	require.NoError(t, err)
	js := string(b)
	sid, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: hardened.StreamKey(l.Bus, "f"), Values: []any{"event", js}}).Result()
	require.NoError(t, err)
	require.NoError(t, l.Bus.Publish(ctx, ev("f", 3)))
	ids = append(ids, collect(live, 2)...)
	// f-002's own message, late.
	require.NoError(t, rdb.Publish(ctx, hardened.Channel(l.Bus, "f"), sid+"\n"+js).Err())
	select {
	case e := <-live:
		ids = append(ids, e.ID)
	case <-time.After(300 * time.Millisecond):
	}
	return ids
}
