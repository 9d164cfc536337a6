// Package conform checks a running implementation of the real-time layer
// against its HTTP contract (docs/http.md) from outside, rule by rule:
// status codes, JSON shapes, headers, the wire format of its event streams
// as the WHATWG HTML standard's EventSource reads them, Last-Event-ID
// resume, the cache endpoints and, given an origin the service allows,
// CORS. It is what a team porting the layer to another stack runs first
// (`harness conform --service URL`). It publishes a few events to a flow
// of its own (conform-<random>) and caches one state.
package conform

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Options say what to check and how long to wait.
type Options struct {
	// Service is the implementation's base URL (http or https). Required.
	Service string
	// Origin is an origin the service allows by CORS (its --cors-origins);
	// "" skips the CORS rules.
	Origin string
	// Timeout bounds each request and each wait for a stream's next
	// block. Default 5s.
	Timeout time.Duration
	// Client makes the requests. Default: a client of its own.
	Client *http.Client
}

// Verdicts of a rule.
const (
	Pass = "PASS"
	Fail = "FAIL"
	Skip = "SKIP"
)

// Result is one rule's verdict.
type Result struct {
	Rule    string `json:"rule"`
	Text    string `json:"text"`
	Verdict string `json:"verdict"`
	// Detail is what was seen: why it failed, or what passed.
	Detail string `json:"detail,omitempty"`
}

// Rule is one rule of the contract.
type Rule struct {
	ID, Text string
}

// ErrUnreachable is returned when the service does not answer at all.
var ErrUnreachable = errors.New("service unreachable")

// skipped marks a rule that could not be judged.
type skipped struct{ why string }

func (s skipped) Error() string { return s.why }

func skip(format string, args ...any) error { return skipped{fmt.Sprintf(format, args...)} }

// passed carries what a passing rule saw.
type passed struct{ what string }

func (p passed) Error() string { return p.what }

func saw(format string, args ...any) error { return passed{fmt.Sprintf(format, args...)} }

// rule is a Rule with its check: nil or passed is PASS, skipped is SKIP,
// any other error FAIL with that error as the detail.
type rule struct {
	Rule
	check func(ctx context.Context, c *checker) error
}

// Rules lists every rule in the order Check runs them.
func Rules() []Rule {
	out := make([]Rule, len(rules))
	for i, r := range rules {
		out[i] = r.Rule
	}
	return out
}

// Check runs every rule against o.Service. It returns an error only for
// bad options or a service that does not answer (ErrUnreachable); a rule
// the service breaks is a FAIL result.
func Check(ctx context.Context, o Options) ([]Result, error) {
	u, err := url.Parse(o.Service)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--service %q: want an http or https base URL", o.Service)
	}
	if o.Origin != "" {
		ou, err := url.Parse(o.Origin)
		if err != nil || (ou.Scheme != "http" && ou.Scheme != "https") || ou.Host == "" || (ou.Path != "" && ou.Path != "/") {
			return nil, fmt.Errorf("--origin %q: want scheme://host[:port]", o.Origin)
		}
		o.Origin = strings.TrimSuffix(o.Origin, "/")
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	var b [6]byte
	rand.Read(b[:])
	c := &checker{o: o, base: strings.TrimSuffix(o.Service, "/"), flow: "conform-" + hex.EncodeToString(b[:])}
	if _, err := c.do(ctx, "GET", "/health", "", nil); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	out := make([]Result, 0, len(rules))
	for _, r := range rules {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		res := Result{Rule: r.ID, Text: r.Text, Verdict: Pass}
		err := r.check(ctx, c)
		var s skipped
		var p passed
		switch {
		case errors.As(err, &p):
			res.Detail = p.what
		case errors.As(err, &s):
			res.Verdict, res.Detail = Skip, s.why
		case err != nil:
			res.Verdict, res.Detail = Fail, err.Error()
		}
		out = append(out, res)
	}
	return out, nil
}

// Failed counts the FAIL results.
func Failed(rs []Result) int {
	n := 0
	for _, r := range rs {
		if r.Verdict == Fail {
			n++
		}
	}
	return n
}
