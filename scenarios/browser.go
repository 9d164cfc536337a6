package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"golang.org/x/sync/errgroup"

	"github.com/gonogo/harness/internal/history"
)

// Browser clients (workload.sse.browser): each is a page of one headless
// Chromium whose native EventSource follows one flow on one instance,
// driven over the DevTools protocol (chromedp). The browser does its own
// reconnecting: after a stream ends it waits the stream's "retry:" time
// and connects again to the same URL with the Last-Event-ID it last saw.
// The page reports every open, error and event through a binding; the
// client records them as the Go SSE clients do (a subscribe op per
// connection, a deliver op per event), timed when the harness receives
// the report.

// chromiumNames are the executables looked up in PATH when Deps.Browser is
// not set.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"}

// Bounds of the browser clients.
const (
	browserStartTimeout = 30 * time.Second // Chromium up and every page's first open
	browserStopTimeout  = 5 * time.Second  // closing a page's EventSource, its screenshot
	browserQueue        = 1 << 16          // reports waiting per page; past it the page is stopped
	reportBinding       = "gonogoReport"
	esClosed            = 2 // EventSource.readyState CLOSED: it gave up for good
)

// browserRun is the Chromium of one run and its pages.
type browserRun struct {
	cancel func() // kills Chromium
	pages  []*browserPage
	// origin is the other origin pages are served from (cross_origin).
	origin string
}

// browserPage is one browser client.
type browserPage struct {
	name string
	flow string
	inst int
	ctx  context.Context // the page's tab
	stop context.CancelFunc

	mu       sync.Mutex
	queue    []pageReport
	overflow bool
	wake     chan struct{}
	settled  chan struct{} // closed at the first open, or when the EventSource gave up
	openOnce sync.Once
}

// pageReport is what the page reports through the binding.
type pageReport struct {
	N     int64  `json:"n"`     // the page's report number, from 1
	Kind  string `json:"k"`     // open, event, error, stop
	Last  string `json:"last"`  // open: the Last-Event-ID the browser sent
	State int    `json:"state"` // error: the EventSource's readyState
	ID    string `json:"id"`    // event: lastEventId (the cursor)
	Data  string `json:"data"`  // event: its data
	at    time.Duration
}

// chromium is the Chromium executable browser clients run, or why there
// is none.
func (r *run) chromium() (string, error) {
	if p := r.deps.Browser; p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("browser %s: %w", p, err)
		}
		return p, nil
	}
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium in PATH (chromium, chromium-browser, google-chrome): apt-get install -y chromium")
}

// browserUnavailable lists why the run cannot run the spec's browser
// clients.
func (r *run) browserUnavailable() []string {
	if r.spec.Workload.SSE.Browser.Clients == 0 {
		return nil
	}
	var why []string
	if _, err := r.chromium(); err != nil {
		why = append(why, "workload.sse.browser not available: "+err.Error())
	}
	if r.deps.Instance != nil || (!r.processMode() && r.deps.Service == nil) {
		why = append(why, "workload.sse.browser not available: the browser needs the instances' URLs, which only the engine's own instances have (not --service)")
	}
	return why
}

// pageOrigin is the origin of the cross-origin pages, served by the run
// (started on first use): instance processes allow it (CORS_ORIGINS).
func (r *run) pageOrigin() (string, error) {
	if r.browser != nil && r.browser.origin != "" {
		return r.browser.origin, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("page server: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<!doctype html><title>gonogo browser client</title><body></body>")
		})}
	go srv.Serve(ln)
	if r.browser == nil {
		r.browser = &browserRun{}
	}
	r.browser.origin = "http://" + ln.Addr().String()
	r.stops = append(r.stops, func() error { return srv.Close() })
	return r.browser.origin, nil
}

// openBrowsers starts Chromium and opens every browser client's page, each
// on its instance's origin (or the page origin with cross_origin), and
// waits, bounded, until every page's EventSource is open.
func (r *run) openBrowsers(ctx context.Context) error {
	b := r.spec.Workload.SSE.Browser
	if b.Clients == 0 {
		return nil
	}
	exe, err := r.chromium()
	if err != nil {
		return err
	}
	if r.browser == nil {
		r.browser = &browserRun{}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(900, 700))
	// Chromium lives until teardown, not until ctx ends: the pages are
	// closed and photographed after the traffic.
	actx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(ctx), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	r.browser.cancel = func() { cancelBrowser(); cancelAlloc() }
	r.stops = append(r.stops, func() error { r.browser.cancel(); return nil })
	if err := chromedp.Do(bctx); err != nil {
		return fmt.Errorf("starting Chromium %s: %w", exe, err)
	}
	origin := ""
	if b.CrossOrigin {
		if origin, err = r.pageOrigin(); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(browserStartTimeout)
	for i := 0; i < b.Clients; i++ {
		p := &browserPage{name: fmt.Sprintf("browser-%d", i), flow: flowName(i % r.spec.Workload.SSE.Flows),
			inst: i % len(r.layers), wake: make(chan struct{}, 1), settled: make(chan struct{})}
		p.ctx, p.stop = chromedp.NewContext(bctx)
		r.browser.pages = append(r.browser.pages, p)
		if err := r.openPage(p, origin); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	// A page that does not open (the service refuses it, the browser
	// blocks it) is the service's doing: its client records what the page
	// reported, and the checks judge it.
	for _, p := range r.browser.pages {
		select {
		case <-p.settled:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(deadline)):
			r.notes.add("%s: its EventSource did not open within %s", p.name, browserStartTimeout)
		}
	}
	fmt.Fprintf(r.logw, "%s: %d browser clients open in %s\n", r.spec.Name, b.Clients, exe)
	return nil
}

// openPage loads p's page (the instance's own /health when origin is "",
// so that the page has the service's origin) and starts its EventSource.
func (r *run) openPage(p *browserPage, origin string) error {
	base := r.bases[p.inst]
	page := base + "/health"
	if origin != "" {
		page = origin + "/"
	}
	err := chromedp.Listen(p.ctx, func(ev any) {
		if b, ok := ev.(*runtime.EventBindingCalled); ok && b.Name == reportBinding {
			p.add(b.Payload, r.rec.Now())
		}
	})
	if err != nil {
		return err
	}
	params, _ := json.Marshal(map[string]any{
		"url": base + "/flows/" + url.PathEscape(p.flow) + "/events", "name": p.name, "flow": p.flow,
		"instance": r.instanceName(p.inst), "types": []string{"TEST_EVENT"},
	})
	return chromedp.Do(p.ctx,
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, runtime.AddBinding, runtime.AddBindingParams{Name: reportBinding})
			return err
		}),
		chromedp.Navigate(page),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](fmt.Sprintf(pageScript, params))(ctx, t)
			return err
		}),
	)
}

// add queues a report; a page past browserQueue reports is stopped (its
// client records why) rather than queue without bound.
func (p *browserPage) add(payload string, at time.Duration) {
	var rep pageReport
	if json.Unmarshal([]byte(payload), &rep) != nil {
		return
	}
	rep.at = at
	p.mu.Lock()
	if len(p.queue) >= browserQueue {
		p.overflow = true
	} else {
		p.queue = append(p.queue, rep)
	}
	p.mu.Unlock()
	if rep.Kind == "open" || rep.Kind == "error" && rep.State == esClosed {
		p.openOnce.Do(func() { close(p.settled) })
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *browserPage) take() ([]pageReport, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queue
	p.queue = nil
	return q, p.overflow
}

// startBrowsers starts the goroutine of every open browser client.
func (r *run) startBrowsers(ctx context.Context, g *errgroup.Group) {
	if r.browser == nil {
		return
	}
	for _, p := range r.browser.pages {
		g.Go(func() error { r.browserClient(ctx, p); return nil })
	}
}

// browserConn is what a browser client knows of its current connection.
type browserConn struct {
	seq     int64
	open    *history.Op // the connection open now, nil between connections
	next    int64       // the page's next report number
	cursor  string
	stopped bool
}

// browserClient records what p's page reports until ctx ends, then closes
// its EventSource, records the rest and saves a screenshot of the page in
// the run directory (browser-<i>.png).
func (r *run) browserClient(ctx context.Context, p *browserPage) {
	st := &browserConn{next: 1}
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-p.wake:
			if !r.browserReports(ctx, p, st) {
				return
			}
		}
	}
	sctx, cancel := context.WithTimeout(p.ctx, browserStopTimeout)
	defer cancel()
	if _, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`window.gonogoStop()`)); err != nil {
		r.notes.add("%s: closing its EventSource: %v", p.name, err)
	}
	for !st.stopped && sctx.Err() == nil {
		if !r.browserReports(ctx, p, st) {
			return
		}
		select {
		case <-p.wake:
		case <-sctx.Done():
		}
	}
	r.endConn(ctx, p, st, r.rec.Now())
	if r.opts.Dir != "" {
		png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
		if err == nil {
			err = os.MkdirAll(r.opts.Dir, 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(r.opts.Dir, p.name+".png"), png, 0o644)
		}
		if err != nil {
			r.notes.add("%s: screenshot: %v", p.name, err)
		}
	}
	p.stop()
}

// browserReports records the queued reports of p in order; it reports
// false once the client cannot go on (its queue overflowed, a report
// went missing).
func (r *run) browserReports(ctx context.Context, p *browserPage, st *browserConn) bool {
	reps, overflow := p.take()
	for _, rep := range reps {
		if rep.N != st.next {
			r.notes.add("%s: page report %d came as number %d: reports lost, the client stops recording", p.name, st.next, rep.N)
			r.endConn(ctx, p, st, rep.at)
			return false
		}
		st.next++
		r.browserReport(ctx, p, st, rep)
	}
	if overflow {
		r.notes.add("%s: more than %d page reports waiting: the client stops recording", p.name, browserQueue)
		r.endConn(ctx, p, st, r.rec.Now())
		return false
	}
	return true
}

// browserReport records one report of the page.
func (r *run) browserReport(ctx context.Context, p *browserPage, st *browserConn, rep pageReport) {
	inst := r.instanceName(p.inst)
	switch rep.Kind {
	case "open":
		r.endConn(ctx, p, st, rep.at)
		st.seq++
		op := history.Op{Client: p.name, Kind: history.Subscribe, Flow: p.flow, Seq: st.seq, Value: inst, Call: rep.at}
		if rep.Last != "" {
			op.Values = []string{rep.Last}
		}
		st.open = &op
	case "event":
		var e struct {
			ID string `json:"id"`
		}
		if json.Unmarshal([]byte(rep.Data), &e) != nil || e.ID == "" {
			r.notes.add("%s: an event whose data is not an event with an id: %.80q", p.name, rep.Data)
			return
		}
		r.rec.Add(history.Op{Client: p.name, Kind: history.Deliver, Flow: p.flow, EventID: e.ID, Value: rep.ID, Seq: st.seq, Call: rep.at, Return: rep.at, OK: true})
		if rep.ID != "" {
			st.cursor = rep.ID
		}
	case "error":
		if st.open != nil {
			r.endConn(ctx, p, st, rep.at)
			fmt.Fprintf(r.logw, "%s: stream %d of %s on %s ended at %s; the browser resumes after %q\n", p.name, st.seq, p.flow, inst, rep.at, st.cursor)
		} else {
			// A reconnect that failed (connection refused, a stream
			// that ended before it started).
			st.seq++
			r.rec.Add(history.Op{Client: p.name, Kind: history.Subscribe, Flow: p.flow, Seq: st.seq, Value: inst,
				Call: rep.at, Return: rep.at, Err: "EventSource connect failed"})
		}
		if rep.State == esClosed {
			st.seq++
			r.rec.Add(history.Op{Client: p.name, Kind: history.Subscribe, Flow: p.flow, Seq: st.seq, Value: inst,
				Call: rep.at, Return: rep.at, Err: "EventSource closed for good: the browser does not reconnect after a non-200 answer, another content type or a cross-origin read without CORS"})
			r.notes.add("%s: the browser's EventSource on %s closed for good at %s (a non-200 answer, another content type, or a cross-origin read without CORS): it receives nothing more", p.name, p.flow, rep.at)
		}
	case "stop":
		r.endConn(ctx, p, st, rep.at)
		st.stopped = true
	}
}

// endConn records the open connection of st as ended at t.
func (r *run) endConn(ctx context.Context, p *browserPage, st *browserConn, t time.Duration) {
	if st.open == nil {
		return
	}
	op := *st.open
	st.open = nil
	op.Return, op.OK = t, true
	if l, _, release, ok := r.route(p.inst, false); ok {
		op.Mode = l.Manager.Mode()
		release()
	}
	r.rec.Add(op)
}

// pageScript is what each page runs (%s: its parameters as JSON): it
// replaces the document with a view of the stream and opens the
// EventSource, reporting every open, error and event through the binding
// in order (n numbers the reports). It listens both to onmessage (unnamed
// events) and to the named types the workload publishes.
const pageScript = `(() => {
const p = %s;
document.documentElement.innerHTML = '<head><title>gonogo ' + p.name + '</title><style>' +
 'body{font:14px system-ui,sans-serif;margin:16px;color:#222}h1{font-size:18px;margin:0 0 8px}' +
 '.st{display:inline-block;padding:2px 8px;border-radius:8px;color:#fff;background:#888}' +
 '.OPEN{background:#2a8a3a}.CONNECTING{background:#c88a00}.CLOSED{background:#b02020}' +
 'table{border-collapse:collapse;margin-top:8px;width:100%%}td,th{border-bottom:1px solid #ddd;padding:2px 6px;text-align:left;font:12px monospace}' +
 '#log{font:12px monospace;white-space:pre;margin-top:8px;color:#555}</style></head>' +
 '<body><h1>gonogo browser client <b id="name"></b></h1>' +
 '<div>page origin <code id="origin"></code>, EventSource <code id="url"></code> (' + p.instance + ')</div>' +
 '<div style="margin-top:6px">state <span id="st" class="st">CONNECTING</span> &nbsp; opens <b id="opens">0</b> &nbsp; errors <b id="errors">0</b> &nbsp; events <b id="events">0</b> &nbsp; Last-Event-ID <code id="last">-</code></div>' +
 '<table><thead><tr><th>#</th><th>received</th><th>event</th><th>event id</th><th>id: (cursor)</th><th>source</th></tr></thead><tbody id="rows"></tbody></table>' +
 '<div id="log"></div></body>';
const $ = (id) => document.getElementById(id);
$('name').textContent = p.name + ' / ' + p.flow; $('origin').textContent = location.origin; $('url').textContent = p.url;
let n = 0, opens = 0, errors = 0, events = 0, last = '';
const report = (o) => { o.n = ++n; window.` + reportBinding + `(JSON.stringify(o)); };
const names = ['CONNECTING', 'OPEN', 'CLOSED'];
const state = () => { const s = names[es.readyState]; $('st').textContent = s; $('st').className = 'st ' + s; };
const log = (s) => { const l = $('log'); l.textContent = (new Date().toISOString().slice(11, 23) + ' ' + s + '\n' + l.textContent).slice(0, 1500); };
const es = new EventSource(p.url);
es.onopen = () => { opens++; $('opens').textContent = opens; state(); log('open' + (last ? ' with Last-Event-ID ' + last : '')); report({k: 'open', last: last}); };
es.onerror = () => { errors++; $('errors').textContent = errors; state(); log('error, readyState ' + names[es.readyState]); report({k: 'error', state: es.readyState}); };
const onEvent = (e) => {
  last = e.lastEventId; events++;
  report({k: 'event', id: e.lastEventId, data: e.data});
  $('events').textContent = events; $('last').textContent = last;
  let d = {}; try { d = JSON.parse(e.data); } catch (_) {}
  const tr = document.createElement('tr');
  for (const v of [events, new Date().toISOString().slice(11, 23), e.type, d.id, e.lastEventId, d.source]) {
    const td = document.createElement('td'); td.textContent = v === undefined ? '' : v; tr.appendChild(td);
  }
  const rows = $('rows'); rows.insertBefore(tr, rows.firstChild);
  while (rows.children.length > 14) rows.removeChild(rows.lastChild);
};
es.onmessage = onEvent;
for (const t of p.types) es.addEventListener(t, onEvent);
window.gonogoStop = () => { es.close(); state(); log('closed by the harness after ' + events + ' events'); report({k: 'stop'}); return true; };
return true;
})()`
