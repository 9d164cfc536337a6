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

	"github.com/gonogo/harness/chaos/target"
	"github.com/gonogo/harness/internal/exitcode"
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

func TestServeAgainstRedisAndStops(t *testing.T) {
	p, err := target.StartProcess(context.Background(), target.ProcessOptions{Password: "s3cr3t-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	vars := map[string]string{"REDIS_ENABLED": "true", "REDIS_URL": p.URL()}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-profile", "hardened", "-addr", "127.0.0.1:0"},
			env{stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }})
	}()
	var base string
	for deadline := time.Now().Add(20 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := servingRE.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		cancel()
		t.Fatalf("serve never said where it listens; stdout %q stderr %q", out.String(), errb.String())
	}
	resp, err := http.Get(base + "/health")
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
	cancel()
	select {
	case code := <-done:
		if code != exitcode.Go {
			t.Errorf("exit = %d; want 0 (stderr %q)", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
	if all := out.String() + errb.String(); strings.Contains(all, "s3cr3t-pw") {
		t.Fatalf("password leaked in output: %q", all)
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
