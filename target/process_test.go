package target

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/internal/exitcode"
)

// start spawns a process target closed at the end of the test.
func start(t *testing.T, o ProcessOptions) *Process {
	t.Helper()
	p, err := StartProcess(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// client is a go-redis client for tg's URL and TLS configuration.
func client(t *testing.T, tg Target) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(tg.URL())
	if err != nil {
		t.Fatal(err)
	}
	if c := tg.TLS(); c != nil {
		opt.TLSConfig = c
	}
	opt.MaxRetries = -1
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestProcessStartsAndCloses(t *testing.T) {
	ctx := context.Background()
	p, err := StartProcess(ctx, ProcessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ping(ctx); err != nil {
		t.Fatalf("PING: %v", err)
	}
	pid := p.Pid()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p.Pid() != 0 {
		t.Fatalf("pid %d still running after Close", pid)
	}
	if err := p.ping(ctx); err == nil {
		t.Fatal("server still answers after Close")
	}
}

func TestProcessOptionsConnect(t *testing.T) {
	tests := []struct {
		name       string
		opts       ProcessOptions
		wantScheme string
	}{
		{"plain", ProcessOptions{}, "redis://"},
		{"requirepass", ProcessOptions{Password: "s3cret"}, "redis://"},
		{"acl user", ProcessOptions{User: "app", Password: "s3cret"}, "redis://"},
		{"tls", ProcessOptions{TLS: true}, "rediss://"},
		{"tls client cert", ProcessOptions{TLS: true, TLSAuthClients: true, Password: "s3cret"}, "rediss://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, tt.opts)
			if !strings.HasPrefix(p.URL(), tt.wantScheme) {
				t.Errorf("URL %s; want scheme %s", p.Redacted(), tt.wantScheme)
			}
			if tt.opts.Password != "" && strings.Contains(p.Redacted(), tt.opts.Password) {
				t.Errorf("Redacted %s shows the password", p.Redacted())
			}
			if got := p.TLS() != nil; got != tt.opts.TLS {
				t.Errorf("TLS() != nil is %v; want %v", got, tt.opts.TLS)
			}
			if err := client(t, p).Ping(context.Background()).Err(); err != nil {
				t.Fatalf("PING through URL and TLS(): %v", err)
			}
		})
	}
}

func TestProcessRejectsWrongAccess(t *testing.T) {
	ctx := context.Background()
	t.Run("no password", func(t *testing.T) {
		p := start(t, ProcessOptions{Password: "s3cret"})
		rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
		defer rdb.Close()
		if err := rdb.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Fatalf("PING without password: got %v; want NOAUTH", err)
		}
	})
	t.Run("default user off", func(t *testing.T) {
		p := start(t, ProcessOptions{User: "app", Password: "s3cret"})
		rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), Password: "s3cret", MaxRetries: -1})
		defer rdb.Close()
		if err := rdb.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Fatalf("PING as default user: got %v; want WRONGPASS", err)
		}
	})
	t.Run("tls without client cert", func(t *testing.T) {
		p := start(t, ProcessOptions{TLS: true, TLSAuthClients: true})
		set, _ := p.Certs()
		rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), TLSConfig: set.ClientTLS(false), MaxRetries: -1})
		defer rdb.Close()
		err := rdb.Ping(ctx).Err()
		if err == nil || !(strings.Contains(err.Error(), "certificate required") || strings.Contains(err.Error(), "bad certificate")) {
			t.Fatalf("PING without client cert: got %v; want certificate required", err)
		}
	})
}

func TestProcessBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts ProcessOptions
		want int
	}{
		{"missing binary", ProcessOptions{Binary: "/nonexistent/redis-server"}, exitcode.Failure},
		{"client certs without tls", ProcessOptions{TLSAuthClients: true}, exitcode.BadInput},
		{"user without password", ProcessOptions{User: "app"}, exitcode.BadInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := StartProcess(context.Background(), tt.opts)
			if got := exitcode.Of(err); got != tt.want {
				t.Fatalf("exit code %d (%v); want %d", got, err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
		})
	}
}

func TestProcessConfigSetGet(t *testing.T) {
	ctx := context.Background()
	p := start(t, ProcessOptions{Password: "s3cret"})
	if err := p.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru"); err != nil {
		t.Fatal(err)
	}
	got, err := p.ConfigGet(ctx, "maxmemory-policy")
	if err != nil || got != "allkeys-lru" {
		t.Fatalf("maxmemory-policy %q, %v; want allkeys-lru", got, err)
	}
	var se ServerError
	if err := p.ConfigSet(ctx, "no-such-setting", "1"); !errors.As(err, &se) {
		t.Fatalf("CONFIG SET of an unknown setting: got %v; want a server error", err)
	}
}

func TestCloseAll(t *testing.T) {
	a := start(t, ProcessOptions{})
	b := start(t, ProcessOptions{})
	CloseAll()
	for _, p := range []*Process{a, b} {
		if p.Pid() != 0 {
			t.Errorf("pid %d still running after CloseAll", p.Pid())
		}
	}
}

// orphanEnv makes the test binary act as a harness that starts a process
// target, prints its pid and waits to be killed.
const orphanEnv = "GONOGO_ORPHAN_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(orphanEnv) == "1" {
		p, err := StartProcess(context.Background(), ProcessOptions{})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("pid", p.Pid(), p.Dir())
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestNoOrphanAfterHarnessSIGKILL: a harness killed with SIGKILL, which
// cleans nothing, takes its redis-server with it (Pdeathsig), and the
// directory it leaves is removed by the next clean, not before.
func TestNoOrphanAfterHarnessSIGKILL(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), orphanEnv+"=1", "TMPDIR="+tmp)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("helper said nothing: %v", err)
	}
	var pid int
	var dir string
	if _, err := fmt.Sscanf(line, "pid %d %s", &pid, &dir); err != nil {
		cmd.Process.Kill()
		t.Fatalf("helper said %q; want its redis-server pid and directory", line)
	}
	if !alive(pid) {
		t.Fatalf("redis-server %d not running before the harness died", pid)
	}
	if removed, _, err := cleanStale(tmp); err != nil || len(removed) > 0 {
		t.Errorf("clean while the harness lives: removed %v (%v); want nothing", removed, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("redis-server %d survived its harness by 5s", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, ownerFile)); err != nil {
		t.Fatalf("the killed harness's directory: %v; want it left with its owner file", err)
	}
	removed, _, err := cleanStale(tmp)
	if err != nil || !slices.Equal(removed, []string{dir}) {
		t.Errorf("clean after the harness died: removed %v (%v); want %s", removed, err, dir)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there (%v)", dir, err)
	}
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	_, err := startTime(pid)
	return err == nil
}
