package chaos

import (
	"context"
	"errors"
	"fmt"

	"github.com/gonogo/harness/chaos/certs"
	"github.com/gonogo/harness/target"
)

// The kinds of TLSFault.
const (
	TLSUntrusted      = "untrusted"       // server certificate from a CA nobody trusts
	TLSExpired        = "expired"         // server certificate expired a day ago
	TLSWrongHost      = "wronghost"       // server certificate for another host name
	TLSClientCert     = "clientcert"      // server requires a client certificate clients lack
	TLSPlainToTLS     = "plain_to_tls"    // plain clients, server switched to TLS-only
	TLSTLSToPlain     = "tls_to_plain"    // TLS clients, server switched to plain (handshakes time out)
	TLSHandshakeStall = "handshake_stall" // new connections get no answer
)

// TLSKinds lists every TLSFault kind.
var TLSKinds = []string{TLSUntrusted, TLSExpired, TLSWrongHost, TLSClientCert, TLSPlainToTLS, TLSTLSToPlain, TLSHandshakeStall}

// tlsServer is a target whose server-side TLS can change at run time.
type tlsServer interface {
	Certs() (*certs.Set, error)
	TLSState() target.TLSState
	SetTLSState(ctx context.Context, st target.TLSState) error
}

// TLSFault makes TLS fail the way a user meets it. The server of an owned
// target is reconfigured on the same port (CONFIG SET) to serve a bad
// certificate, require a client certificate, or switch between plain and
// TLS, and its client connections are dropped so clients reconnect into
// the fault; clients keep the target's TLS()/URL(). handshake_stall instead
// holds every new connection at the proxy without an answer. Use it through
// a pointer: it keeps the state Undo restores.
type TLSFault struct {
	Kind string

	saved *target.TLSState
}

// Name is "tls_" + Kind.
func (f *TLSFault) Name() string { return "tls_" + f.Kind }

// Available checks the target can show this kind.
func (f *TLSFault) Available(env Env) error {
	_, err := f.check(env)
	return err
}

// check returns the target to reconfigure (nil for handshake_stall).
func (f *TLSFault) check(env Env) (tlsServer, error) {
	if f.Kind == TLSHandshakeStall {
		_, err := limiter(env, false)
		return nil, err
	}
	s, err := ability[tlsServer](env, "change its TLS settings")
	if err != nil {
		return nil, err
	}
	clientTLS := env.Target.TLS()
	switch f.Kind {
	case TLSPlainToTLS:
		if clientTLS != nil {
			return nil, errors.New("needs a plain target (clients must speak plain TCP)")
		}
	case TLSClientCert:
		if clientTLS == nil || len(clientTLS.Certificates) > 0 {
			return nil, errors.New("needs a TLS target whose clients present no certificate")
		}
	case TLSUntrusted, TLSExpired, TLSWrongHost, TLSTLSToPlain:
		if clientTLS == nil {
			return nil, errors.New("needs a TLS target (clients must speak TLS)")
		}
	default:
		return nil, fmt.Errorf("unknown TLS fault kind %q (known: %v)", f.Kind, TLSKinds)
	}
	return s, nil
}

// Inject saves the server's TLS state and applies the fault.
func (f *TLSFault) Inject(ctx context.Context, env Env) error {
	s, err := f.check(env)
	if err != nil {
		return err
	}
	if s == nil {
		l, _ := limiter(env, false)
		l.SetHandshakeStall(true)
		return nil
	}
	set, err := s.Certs()
	if err != nil {
		return err
	}
	old := s.TLSState()
	st := old
	switch f.Kind {
	case TLSUntrusted:
		st.Cert = set.Untrusted
	case TLSExpired:
		st.Cert = set.Expired
	case TLSWrongHost:
		st.Cert = set.WrongHost
	case TLSClientCert:
		st.AuthClients = true
	case TLSPlainToTLS:
		st.On, st.Cert = true, set.Server
	case TLSTLSToPlain:
		st.On = false
	}
	f.saved = &old
	return s.SetTLSState(ctx, st)
}

// Undo restores the saved state, or ends the stall.
func (f *TLSFault) Undo(ctx context.Context, env Env) error {
	if f.Kind == TLSHandshakeStall {
		l, err := limiter(env, false)
		if err != nil {
			return err
		}
		l.SetHandshakeStall(false)
		return nil
	}
	if f.saved == nil {
		return nil
	}
	s, err := ability[tlsServer](env, "change its TLS settings")
	if err != nil {
		return err
	}
	saved := *f.saved
	f.saved = nil
	return s.SetTLSState(ctx, saved)
}
