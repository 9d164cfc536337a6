package scenarios

import (
	"context"
	"net/http"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/httplayer"
)

// sseSubscribe opens GET {base}/flows/{flow}/events, resuming after cursor
// with Last-Event-ID, and delivers each event (data: the event as JSON,
// id: its cursor) until the stream ends or ctx does.
func sseSubscribe(ctx context.Context, base, flow, cursor string) (<-chan impl.Event, error) {
	return httplayer.Subscribe(ctx, http.DefaultClient, base, flow, cursor)
}
