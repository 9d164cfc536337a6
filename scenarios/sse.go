package scenarios

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gonogo/harness/impl"
)

// sseSubscribe opens GET {base}/flows/{flow}/events, resuming after cursor
// with Last-Event-ID, and delivers each event (data: the event as JSON,
// id: its cursor) until the stream ends or ctx does. Comments and events
// without an id in their data (heartbeats) are skipped.
func sseSubscribe(ctx context.Context, base, flow, cursor string) (<-chan impl.Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/flows/"+url.PathEscape(flow)+"/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if cursor != "" {
		req.Header.Set("Last-Event-ID", cursor)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", req.URL.Path, resp.Status)
	}
	ch := make(chan impl.Event, 64)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		readSSE(ctx, bufio.NewScanner(resp.Body), ch)
	}()
	return ch, nil
}

// readSSE parses an event stream into events.
func readSSE(ctx context.Context, sc *bufio.Scanner, ch chan<- impl.Event) {
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var id string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() > 0 {
				var e impl.Event
				if json.Unmarshal([]byte(data.String()), &e) == nil && e.ID != "" {
					if id != "" {
						e.Cursor = id
					}
					select {
					case ch <- e:
					case <-ctx.Done():
						return
					}
				}
			}
			id = ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
}
