package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/target/targettest"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var servingRE = regexp.MustCompile(`on (http://\S+)`)

// serving is `harness serve` running in the background.
type serving struct {
	base      string
	out, errb *syncBuffer
	cancel    context.CancelFunc
	done      chan int
}

// startServe runs `harness serve` with args and the environment vars until
// stop, and waits for it to say where it listens.
func startServe(t *testing.T, vars map[string]string, args ...string) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{out: &syncBuffer{}, errb: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		s.done <- run(ctx, append([]string{"serve"}, args...),
			env{stdout: s.out, stderr: s.errb, getenv: func(k string) string { return vars[k] }})
	}()
	for deadline := time.Now().Add(20 * time.Second); s.base == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := servingRE.FindStringSubmatch(s.out.String()); m != nil {
			s.base = m[1]
		}
	}
	if s.base == "" {
		cancel()
		t.Fatalf("serve never said where it listens; stdout %q stderr %q", s.out.String(), s.errb.String())
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop cancels serve and returns its exit code.
func (s *serving) stop(t *testing.T) int {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code // a second stop gets it again
		return code
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
	return -1
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestServeAgainstRedisAndStops(t *testing.T) {
	p, _ := targettest.PasswordRedis(t, "s3cr3t-pw")
	s := startServe(t, map[string]string{"REDIS_ENABLED": "true", "REDIS_URL": p.URL()}, "-profile", "hardened", "-addr", "127.0.0.1:0")
	resp, err := http.Get(s.base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Services struct {
			Redis struct{ Status, Mode string }
		}
	}
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if health.Services.Redis.Status != "healthy" || health.Services.Redis.Mode != "redis" {
		t.Errorf("health redis = %+v; want healthy/redis", health.Services.Redis)
	}
	if code := getStatus(t, s.base+"/_harness"); code != http.StatusNotFound {
		t.Errorf("GET /_harness without -control: %d; want 404 (the control API is off by default)", code)
	}
	if code := s.stop(t); code != exitcode.Go {
		t.Errorf("exit = %d; want 0 (stderr %q)", code, s.errb.String())
	}
	if all := s.out.String() + s.errb.String(); strings.Contains(all, "s3cr3t-pw") {
		t.Fatalf("password leaked in output: %q", all)
	}
}

// testToken is the control token of the `harness serve -control` these
// tests start.
const testToken = "cmd-test-token-0123456789"

// TestServeControl: the control API is on with -control or
// HARNESS_CONTROL=true, and says so on stderr; it answers only with the
// token.
func TestServeControl(t *testing.T) {
	for _, c := range []struct {
		name string
		vars map[string]string
		args []string
	}{
		{"flag", map[string]string{"HARNESS_CONTROL_TOKEN": testToken}, []string{"-control"}},
		{"env", map[string]string{"HARNESS_CONTROL": "true", "HARNESS_CONTROL_TOKEN": testToken}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := startServe(t, c.vars, append([]string{"-profile", "seed", "-addr", "127.0.0.1:0"}, c.args...)...)
			if code := getStatus(t, s.base+"/_harness"); code != http.StatusUnauthorized {
				t.Errorf("GET /_harness without the token: %d; want 401", code)
			}
			req, err := http.NewRequest(http.MethodGet, s.base+"/_harness", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET /_harness with the token: %d; want 200", resp.StatusCode)
			}
			if !strings.Contains(s.errb.String(), "WARNING: harness control API on") {
				t.Errorf("stderr %q; want the control API warning", s.errb.String())
			}
			if strings.Contains(s.out.String()+s.errb.String(), testToken) {
				t.Errorf("serve printed the control token")
			}
		})
	}
}

func TestServeBadInput(t *testing.T) {
	cases := []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"bad addr", []string{"serve", "-addr", "nope"}, nil, "-addr"},
		{"unknown profile", []string{"serve", "-profile", "turbo", "-addr", "127.0.0.1:0"}, nil, `unknown profile "turbo"`},
		{"bad flag value", []string{"serve", "-addr", "127.0.0.1:0"}, map[string]string{"REDIS_ENABLED": "maybe"}, "REDIS_ENABLED"},
		{"bad url", []string{"serve", "-addr", "127.0.0.1:0"}, map[string]string{"REDIS_ENABLED": "true", "REDIS_URL": "http://u:topsecret@x"}, "REDIS_URL"},
		{"bad HARNESS_CONTROL", []string{"serve", "-addr", "127.0.0.1:0"}, map[string]string{"HARNESS_CONTROL": "sometimes"}, "HARNESS_CONTROL"},
		{"control without a token", []string{"serve", "-addr", "127.0.0.1:0", "-control"}, nil, "--control needs HARNESS_CONTROL_TOKEN of at least 16 characters (it has 0)"},
		{"control with a short token", []string{"serve", "-addr", "127.0.0.1:0"}, map[string]string{"HARNESS_CONTROL": "true", "HARNESS_CONTROL_TOKEN": "short"}, "(it has 5)"},
		{"control on all interfaces", []string{"serve", "-addr", ":0", "-control"}, map[string]string{"HARNESS_CONTROL_TOKEN": testToken}, `--control on --addr host "": the control API listens only on loopback`},
		{"bad CORS origin", []string{"serve", "-addr", "127.0.0.1:0", "--cors-origins", "http://a.example/path"}, nil, `CORS origin "http://a.example/path"`},
		{"bad CORS_ORIGINS", []string{"serve", "-addr", "127.0.0.1:0"}, map[string]string{"CORS_ORIGINS": "a.example"}, `CORS origin "a.example"`},
		{"control on a non-loopback address", []string{"serve", "-addr", "0.0.0.0:0", "-control"}, map[string]string{"HARNESS_CONTROL_TOKEN": testToken}, "unless --control-any-addr is given"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := call(t, c.vars, c.args...)
			if code != exitcode.BadInput {
				t.Errorf("exit = %d; want 3 (stderr %q)", code, errs)
			}
			if !strings.Contains(errs, c.want) || strings.Contains(errs, "topsecret") {
				t.Errorf("stderr = %q; want it to contain %q and no password", errs, c.want)
			}
		})
	}
}

// TestCheckControl: the control API is refused off loopback unless
// --control-any-addr, and without a long enough token whatever the address.
func TestCheckControl(t *testing.T) {
	for _, c := range []struct {
		host, token string
		anyAddr, ok bool
	}{
		{"127.0.0.1", testToken, false, true},
		{"127.0.0.5", testToken, false, true},
		{"::1", testToken, false, true},
		{"localhost", testToken, false, true},
		{"", testToken, false, false},
		{"0.0.0.0", testToken, false, false},
		{"10.1.2.3", testToken, false, false},
		{"service-a", testToken, false, false},
		{"", testToken, true, true},
		{"10.1.2.3", testToken, true, true},
		{"127.0.0.1", "", false, false},
		{"", "fifteen-chars..", true, false},
	} {
		err := checkControl(c.host, c.token, c.anyAddr)
		if (err == nil) != c.ok {
			t.Errorf("checkControl(%q, %d-character token, any-addr %v) = %v; want ok %v", c.host, len(c.token), c.anyAddr, err, c.ok)
		}
	}
}
