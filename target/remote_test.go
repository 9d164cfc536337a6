package target

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/gonogo/harness/internal/exitcode"
)

const secret = "hunter2-s3cret"

func TestOpenURLBadInput(t *testing.T) {
	ctx := context.Background()
	p := start(t, ProcessOptions{Password: secret})
	tp := start(t, ProcessOptions{TLS: true})
	free, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		url  string
		opts URLOptions
		want string
	}{
		{"malformed", "redis://:" + secret + "@127.0.0.1:notaport/0", URLOptions{}, "does not parse"},
		{"malformed with space", "redis://user:" + secret + "@127.0.0.1:6379/0 x", URLOptions{}, "invalid"},
		{"unknown scheme", "http://:" + secret + "@" + p.Addr(), URLOptions{}, `unknown scheme "http"`},
		{"no host", "redis://", URLOptions{}, "no host"},
		{"no scheme", "user:" + secret + "@127.0.0.1:6379", URLOptions{}, "no scheme"},
		{"no scheme, no user", ":" + secret + "@127.0.0.1:6379", URLOptions{}, "no scheme"},
		{"unix scheme", "unix://:" + secret + "@/run/redis.sock", URLOptions{}, `unknown scheme "unix"`},
		{"password in the query", "redis://127.0.0.1:1/0?password=" + secret, URLOptions{}, "unexpected option"},
		{"bad escape", "redis://u:" + secret + "%zz@127.0.0.1:1", URLOptions{}, "invalid URL escape"},
		{"control character", "redis://u:" + secret + "@127.0.0.1:1\n/0", URLOptions{}, "control character"},
		{"bad db", "redis://:" + secret + "@" + p.Addr() + "/x", URLOptions{}, "invalid database"},
		{"unreachable", fmt.Sprintf("redis://:%s@127.0.0.1:%d/0", secret, free), URLOptions{}, "unreachable"},
		{"wrong password", "redis://:wrong-" + secret + "@" + p.Addr() + "/0", URLOptions{}, "authentication failed"},
		{"no password", "redis://" + p.Addr() + "/0", URLOptions{}, "authentication failed"},
		{"tls options on plain url", "redis://:" + secret + "@" + p.Addr(), URLOptions{Insecure: true}, "plain redis://"},
		{"missing CA file", "rediss://:" + secret + "@" + tp.Addr(), URLOptions{CAFile: "/nonexistent/ca.crt"}, "CA file"},
		{"endless CA file", "rediss://:" + secret + "@" + tp.Addr(), URLOptions{CAFile: "/dev/zero"}, "CA file: /dev/zero: file too large: more than 1 MiB"},
		{"endless client key", "rediss://:" + secret + "@" + tp.Addr(), URLOptions{CertFile: "/dev/null", KeyFile: "/dev/zero"}, "client key: /dev/zero: file too large"},
		{"cert without key", "rediss://:" + secret + "@" + tp.Addr(), URLOptions{CertFile: "/x.crt"}, "both a cert file and a key file"},
		{"untrusted server", "rediss://:" + secret + "@" + tp.Addr(), URLOptions{}, "certificate signed by unknown authority"},
		{"plain client to tls port", "redis://:" + secret + "@" + tp.Addr(), URLOptions{ConnectTimeout: 2e9}, "closed the connection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := OpenURL(ctx, tt.url, tt.opts)
			if err == nil {
				r.Close()
				t.Fatal("opened; want an error")
			}
			if got := exitcode.Of(err); got != exitcode.BadInput {
				t.Errorf("exit code %d; want %d", got, exitcode.BadInput)
			}
			msg := err.Error()
			t.Log(msg)
			if strings.Contains(msg, secret) {
				t.Errorf("error %q shows the password", msg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is more than one line", msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q; want it to say %q", msg, tt.want)
			}
		})
	}
}

func TestOpenURLCleansItsKeys(t *testing.T) {
	ctx := context.Background()
	p := start(t, ProcessOptions{Password: secret})
	r, err := OpenURL(ctx, p.URL(), URLOptions{Prefix: "run[1]*:"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Owned() || r.Kind() != "url" || r.Addr() != p.Addr() || strings.Contains(r.Redacted(), secret) {
		t.Errorf("Owned %v Kind %q Addr %q Redacted %q; want false, url, %s, masked", r.Owned(), r.Kind(), r.Addr(), r.Redacted(), p.Addr())
	}
	rdb := client(t, p)
	for i := 0; i < 1200; i++ {
		rdb.Set(ctx, fmt.Sprintf("%sk%d", r.KeyPrefix(), i), i, 0)
	}
	rdb.Set(ctx, "run[1]x:other", 1, 0) // matches the prefix as a glob, not as a string
	rdb.Set(ctx, "unrelated", 1, 0)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := rdb.DBSize(ctx).Val(); n != 2 {
		t.Fatalf("DBSIZE %d after Close; want 2 (only keys outside the prefix left)", n)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenURLDefaultPrefixIsPerRun(t *testing.T) {
	ctx := context.Background()
	p := start(t, ProcessOptions{})
	a, err := OpenURL(ctx, p.URL(), URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenURL(ctx, p.URL(), URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !strings.HasPrefix(a.KeyPrefix(), "gonogo:") || a.KeyPrefix() == b.KeyPrefix() {
		t.Fatalf("prefixes %q and %q; want distinct gonogo:<run>: prefixes", a.KeyPrefix(), b.KeyPrefix())
	}
}

func TestOpenURLTLS(t *testing.T) {
	ctx := context.Background()
	p := start(t, ProcessOptions{TLS: true, TLSAuthClients: true, Password: secret})
	set, err := p.Certs()
	if err != nil {
		t.Fatal(err)
	}
	url := "rediss://:" + secret + "@" + p.Addr() + "/0"
	t.Run("verified chain with client cert", func(t *testing.T) {
		r, err := OpenURL(ctx, url, URLOptions{CAFile: set.CAFile, CertFile: set.Client.CertFile, KeyFile: set.Client.KeyFile})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.TLS() == nil || r.TLS().InsecureSkipVerify || len(r.Warnings()) != 0 {
			t.Fatalf("TLS %v warnings %q; want verifying TLS and no warning", r.TLS(), r.Warnings())
		}
	})
	t.Run("insecure is loud", func(t *testing.T) {
		r, err := OpenURL(ctx, url, URLOptions{Insecure: true, CertFile: set.Client.CertFile, KeyFile: set.Client.KeyFile})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		w := r.Warnings()
		if len(w) != 1 || !strings.Contains(w[0], "INSECURE") || strings.Contains(w[0], secret) {
			t.Fatalf("warnings %q; want one INSECURE warning without the password", w)
		}
	})
	t.Run("client cert missing", func(t *testing.T) {
		_, err := OpenURL(ctx, url, URLOptions{CAFile: set.CAFile})
		if err == nil || !strings.Contains(err.Error(), "TLS") || strings.Contains(err.Error(), secret) {
			t.Fatalf("got %v; want a TLS error without the password", err)
		}
	})
}

// TestConnectErrorReset: a reset or EOF right after a TLS handshake (a
// TLS 1.3 server rejecting a missing client certificate, its alert lost)
// says TLS and names the likely cause; an EOF on plain TCP names the
// TLS-only server.
func TestConnectErrorReset(t *testing.T) {
	reset := &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}
	for _, err := range []error{reset, io.EOF} {
		if got := connectError("rediss://h:1/0", err, true); !strings.Contains(got.Error(), "TLS: the server closed the connection after the handshake (does it require a client certificate?)") {
			t.Errorf("TLS, %v: %v", err, got)
		}
	}
	if got := connectError("redis://h:1/0", io.EOF, false); !strings.Contains(got.Error(), "a TLS-only server reached with redis://?") {
		t.Errorf("plain EOF: %v", got)
	}
}
