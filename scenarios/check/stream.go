package check

import (
	"fmt"
	"strconv"
	"time"

	"github.com/gonogo/harness/internal/history"
)

// StreamNodeSlack is how far past MAXLEN a stream trimmed with MAXLEN ~ may
// stay: Redis trims approximate MAXLEN only in whole macro nodes, up to
// stream-node-max-entries (default 100) entries each.
const StreamNodeSlack = 100

// StreamBounds judges ErrStreamBounds on the harness's own look at each
// flow's stream after the run (stream_info: XLEN and PTTL, read from Redis,
// not through the layer): a stream must carry a TTL (TASK-005's 24 h)
// no longer than Config.StreamTTL, and must be no longer than
// Config.StreamMaxLen + StreamNodeSlack. The length bound is judged only on
// streams whose flow had more acknowledged events than that (a shorter
// stream proves no trimming); without such a flow the result says that
// trimming was not exercised.
func StreamBounds(h history.History, c Config) Result {
	c = c.withDefaults()
	r := result("stream_bounds", ErrStreamBounds.Error())
	acked := ackedByFlow(h)
	limit := c.StreamMaxLen + StreamNodeSlack
	var infos, judgedLen, untrimmed, noTTL, over int
	var longest int64
	for _, o := range sortedOps(h) {
		if o.Kind != history.StreamInfo || !o.OK {
			continue
		}
		infos++
		longest = max(longest, o.Count)
		pttl, err := strconv.ParseInt(o.Value, 10, 64)
		switch {
		case err != nil:
			r.Evidence = append(r.Evidence, fmt.Sprintf("flow %s: TTL %q unreadable", o.Flow, o.Value))
		case pttl == -1:
			noTTL++
			r.Evidence = append(r.Evidence, fmt.Sprintf("flow %s: stream of %d entries has no TTL (want at most %s)", o.Flow, o.Count, c.StreamTTL))
		case time.Duration(pttl)*time.Millisecond > c.StreamTTL:
			over++
			r.Evidence = append(r.Evidence, fmt.Sprintf("flow %s: stream TTL %s, over the configured %s", o.Flow, (time.Duration(pttl)*time.Millisecond).Round(time.Second), c.StreamTTL))
		}
		if int64(len(acked[o.Flow])) <= limit {
			continue
		}
		judgedLen++
		if o.Count > limit {
			untrimmed++
			r.Evidence = append(r.Evidence, fmt.Sprintf("flow %s: %d entries after %d acknowledged events, over MAXLEN %d + %d (one stream node)",
				o.Flow, o.Count, len(acked[o.Flow]), c.StreamMaxLen, StreamNodeSlack))
		}
	}
	if infos == 0 {
		return r.noData("no look at a flow's stream (the layer names no streams, or the bus ran without Redis)")
	}
	r.Metrics["stream_len_max"] = float64(longest)
	r.Metrics["streams_untrimmed"] = float64(untrimmed)
	r.Metrics["streams_without_ttl"] = float64(noTTL)
	r.Metrics["streams_ttl_over"] = float64(over)
	if judgedLen == 0 {
		r.Evidence = append(r.Evidence, fmt.Sprintf("trimming not exercised: no flow had more than MAXLEN %d + %d acknowledged events", c.StreamMaxLen, StreamNodeSlack))
	}
	var fails []error
	if untrimmed > 0 {
		fails = append(fails, fmt.Errorf("%w: %d streams past MAXLEN", ErrStreamBounds, untrimmed))
	}
	if noTTL+over > 0 {
		fails = append(fails, fmt.Errorf("%w: %d streams without their TTL", ErrStreamBounds, noTTL+over))
	}
	return r.finish(c, fails, "")
}
