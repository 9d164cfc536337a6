package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/httplayer"
	"github.com/gonogo/harness/impl/service"
)

// startService runs an HTTP service instance (impl/service) over l on a
// free loopback port and returns its base URL and its stop function. The
// contract (docs/http.md): POST {base}/flows/{id}/events publishes the JSON
// event in the body; GET {base}/flows/{id}/events is the flow's SSE stream,
// whose data lines are the JSON events.
func startService(ctx context.Context, l *impl.Layer) (string, func() error, error) {
	svc := service.New(l, service.Options{})
	base, err := svc.Start(ctx, "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	return base, func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return svc.Shutdown(sctx)
	}, nil
}

// sseRun is one sse step: two layers of one profile, each behind a service
// instance (A publishes, B serves the SSE clients), and the clients.
type sseRun struct {
	flow     string
	id       string
	pad      string
	pubURL   string
	http     *http.Client
	recs     recorders
	clients  int
	received atomic.Int64 // measured events received, all clients
	ended    atomic.Int64 // streams the service ended before the run did
	want     int64        // measured events × clients
	probes   []atomic.Int64
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stops    []func() error
	layers   []*impl.Layer
	// inst is instance B when it runs as a process of its own.
	inst *instanceProc
}

// sseSettle bounds waiting for the SSE clients to see a probe event before
// the run, and for the last events to arrive after it.
const sseSettle = 10 * time.Second

// sseIdle is how long finish waits for deliveries when none arrives: a
// fan-out to thousands of clients on a busy machine pauses longer than a
// second between deliveries.
const sseIdle = 5 * time.Second

// startSSE builds the two instances and connects the clients to B, then
// publishes probe events on A until every client has received one, so the
// measured phase starts with live subscriptions everywhere.
//
// instance, when set, is the command that serves B as a process of its own
// (Config.SSEInstance).
func startSSE(ctx context.Context, layers *impl.Profiles, profile string, cfg impl.Config, id string, clients, eventBytes int, instance []string) (r *sseRun, err error) {
	r = &sseRun{flow: id + "-sse", id: id, pad: padding(eventBytes), clients: clients, http: &http.Client{}, probes: make([]atomic.Int64, clients)}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	var bases [2]string
	for i := range bases {
		c := cfg
		c.ServerID = fmt.Sprintf("%s-%c", id, 'a'+i)
		if i == 1 && len(instance) > 0 {
			if r.inst, err = startInstance(ctx, instance, profile, cfg.URL, c.ServerID); err != nil {
				return r, err
			}
			r.stops = append(r.stops, r.inst.stop)
			bases[i] = r.inst.base
			continue
		}
		l, err := layers.New(ctx, profile, c)
		if err != nil {
			return r, err
		}
		r.layers = append(r.layers, l)
		base, stop, err := startService(ctx, l)
		if err != nil {
			return r, err
		}
		r.stops = append(r.stops, stop)
		bases[i] = base
	}
	r.pubURL = bases[0] + "/flows/" + url.PathEscape(r.flow) + "/events"
	cctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	for i := 0; i < clients; i++ {
		rec := r.recs.New()
		events, err := httplayer.Subscribe(cctx, r.http, bases[1], r.flow, "")
		if err != nil {
			return r, fmt.Errorf("sse client: %w", err)
		}
		r.wg.Add(1)
		go func(i int) {
			defer r.wg.Done()
			r.read(events, rec, i)
			if cctx.Err() == nil { // the stream ended before the run did
				r.ended.Add(1)
			}
		}(i)
	}
	return r, r.probe(ctx)
}

// probe publishes unmeasured events until every client has received one.
func (r *sseRun) probe(ctx context.Context) error {
	deadline := time.Now().Add(sseSettle)
	for seq := int64(0); ; seq++ {
		if err := r.publish(ctx, Call{Seq: seq, Warmup: true, Worker: -1}); err != nil {
			return err
		}
		wait := time.Now().Add(100 * time.Millisecond)
		for time.Now().Before(wait) {
			if r.allProbed() {
				return nil
			}
			time.Sleep(5 * time.Millisecond)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("sse: not every client received a probe event within %s", sseSettle)
		}
	}
}

func (r *sseRun) allProbed() bool {
	for i := range r.probes {
		if r.probes[i].Load() == 0 {
			return false
		}
	}
	return true
}

// read takes one client's events: each payload carries its send time.
func (r *sseRun) read(events <-chan impl.Event, rec *Recorder, client int) {
	for e := range events {
		var p benchPayload
		if json.Unmarshal(e.Payload, &p) != nil || p.Sent == 0 {
			continue
		}
		if p.Measured {
			rec.Record(OpSSE, time.Since(time.Unix(0, p.Sent)))
			r.received.Add(1)
		} else {
			r.probes[client].Add(1)
		}
	}
}

// publish posts one bench event to instance A.
func (r *sseRun) publish(ctx context.Context, c Call) error {
	body, err := json.Marshal(paddedEvent(r.id, r.flow, c, r.pad))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.pubURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("publish: POST %s: %s", r.pubURL, resp.Status)
	}
	return nil
}

// op is the load's op: one publish on A.
func (r *sseRun) op() Op {
	return Op{Name: OpSSEPublish, Do: r.publish}
}

// finish waits (bounded) for the measured events to reach every client,
// merges the clients' histograms into st and returns the row kinds.
func (r *sseRun) finish(st *Stats) []string {
	want := (st.Ops - st.Errors) * int64(r.clients)
	r.want = want
	last, idle := r.received.Load(), time.Now()
	for r.received.Load() < want && time.Since(idle) < sseIdle {
		time.Sleep(10 * time.Millisecond)
		if n := r.received.Load(); n != last {
			last, idle = n, time.Now()
		}
	}
	for kind, h := range r.recs.merged() {
		st.Latency[kind] = summarize(h)
		st.Hists[kind] = h
	}
	return []string{OpSSEPublish, OpSSE}
}

// annotate adds the delivery counts to the sse row; a delivery that did
// not arrive is an error.
func (r *sseRun) annotate(res *Result) {
	if res.Op != OpSSE {
		return
	}
	res.Delivered, res.Expected = r.received.Load(), r.want
	res.Errors = max(res.Expected-res.Delivered, 0)
	res.StreamsEnded = r.ended.Load()
	if res.StreamsEnded > 0 && res.FirstErr == "" {
		res.FirstErr = fmt.Sprintf("%d of %d SSE streams were ended by the instance before the run ended", res.StreamsEnded, r.clients)
	}
}

// close stops the clients, the services and the layers.
func (r *sseRun) close() error {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	var errs []error
	for _, s := range r.stops {
		errs = append(errs, s())
	}
	for _, l := range r.layers {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}
