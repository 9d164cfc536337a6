package chaos

import (
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/gonogo/harness/chaos/certs"
	"github.com/gonogo/harness/target"
)

func TestTLSFaultsShowTheUsersError(t *testing.T) {
	tests := []struct {
		kind string
		opts target.ProcessOptions
		want []string // any of these in the error
	}{
		{TLSUntrusted, target.ProcessOptions{TLS: true}, []string{"x509: certificate signed by unknown authority"}},
		{TLSExpired, target.ProcessOptions{TLS: true}, []string{"x509: certificate has expired or is not yet valid"}},
		{TLSWrongHost, target.ProcessOptions{TLS: true}, []string{"x509: certificate is valid for " + certs.WrongHost + ", not " + certs.ServerName}},
		{TLSClientCert, target.ProcessOptions{TLS: true}, []string{"tls: certificate required", "tls: bad certificate"}},
		// Redis reads a ClientHello as the start of an inline command and
		// waits for its end of line: the handshake times out.
		{TLSTLSToPlain, target.ProcessOptions{TLS: true}, []string{"i/o timeout", "context deadline exceeded"}},
		{TLSPlainToTLS, target.ProcessOptions{}, []string{"EOF", "connection reset by peer"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			ctx := context.Background()
			r, p, env := setup(t, tt.opts)
			held := rclient(t, p.Listen(), r.TLS())
			if err := held.Ping(ctx).Err(); err != nil {
				t.Fatalf("PING before the fault (good chain): %v", err)
			}
			f := &TLSFault{Kind: tt.kind}
			inject(t, env, f)
			err := pingErr(t, p.Listen(), r.TLS())
			if err == nil || !containsAny(err.Error(), tt.want) {
				t.Fatalf("PING of a new client: got %v; want %q", err, tt.want)
			}
			if err := held.Ping(ctx).Err(); err == nil {
				t.Error("PING on a connection open before the fault succeeded; want it dropped")
			}
			undo(t, env, f)
			if err := pingErr(t, p.Listen(), r.TLS()); err != nil {
				t.Fatalf("PING after undo: %v", err)
			}
			if got := r.TLSState().On; got != tt.opts.TLS {
				t.Fatalf("server TLS %v after undo; want %v", got, tt.opts.TLS)
			}
		})
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestGoodChainDirectAndWithClientCert(t *testing.T) {
	r := startRedis(t, target.ProcessOptions{TLS: true, TLSAuthClients: true})
	if err := pingErr(t, r.Addr(), r.TLS()); err != nil {
		t.Fatalf("PING with the generated CA and client cert: %v", err)
	}
	set, err := r.Certs()
	if err != nil {
		t.Fatal(err)
	}
	err = pingErr(t, r.Addr(), set.ClientTLS(false))
	if err == nil || !containsAny(err.Error(), []string{"certificate required", "bad certificate"}) {
		t.Fatalf("PING without a client cert: got %v; want certificate required", err)
	}
	// A plain client on the TLS port sees the connection closed.
	err = pingErr(t, r.Addr(), nil)
	if !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("plain PING to the TLS port: got %v; want EOF or reset", err)
	}
}

// TestTLSFaultsOverlap: two TLS faults on one server, the second injected
// before the first is undone (faults that meet: explore's lost-eb39654f),
// leave it as it was whatever order they are undone in; while one is
// left, its own change stays. Before, each restored the state it found,
// and the server demanded client certificates after the run.
func TestTLSFaultsOverlap(t *testing.T) {
	for _, order := range []string{"first undone first", "last undone first"} {
		t.Run(order, func(t *testing.T) {
			r, p, env := setup(t, target.ProcessOptions{TLS: true})
			a, b := &TLSFault{Kind: TLSClientCert}, &TLSFault{Kind: TLSExpired}
			inject(t, env, a)
			inject(t, env, b)
			first, second := a, b
			if order == "last undone first" {
				first, second = b, a
			}
			undo(t, env, first)
			if pingErr(t, p.Listen(), r.TLS()) == nil {
				t.Fatalf("PING with %s still active succeeded", second.Name())
			}
			st := r.TLSState()
			if second == a && !st.AuthClients {
				t.Error("client certificates no longer required while tls_clientcert is active")
			}
			undo(t, env, second)
			if err := pingErr(t, p.Listen(), r.TLS()); err != nil {
				t.Fatalf("PING after both undone: %v", err)
			}
			if st := r.TLSState(); st.AuthClients || !st.On {
				t.Errorf("server TLS after both undone: %+v; want TLS on, no client certificates", st)
			}
		})
	}
}
