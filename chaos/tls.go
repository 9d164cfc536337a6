package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

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
// a pointer: a server's active faults are kept by identity (tlsLayers).
type TLSFault struct {
	Kind string
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

// tlsLayers are the TLS faults active on one server, over the state it had
// before the first of them: its state is always base with each active
// fault's change applied in turn. Two TLS faults that overlap (or meet: the
// next one injected before the last one is undone) then leave it as it
// was; each restoring the state it found did not (explore's lost-eb39654f:
// the server still demanded client certificates after the run).
type tlsLayers struct {
	base   target.TLSState
	faults []*TLSFault
}

var tlsActive = struct {
	sync.Mutex
	m map[tlsServer]*tlsLayers
}{m: map[tlsServer]*tlsLayers{}}

// change is the fault's change to a server's TLS state.
func (f *TLSFault) change(st target.TLSState, set *certs.Set) target.TLSState {
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
	return st
}

// compose is the state of a server with layers active.
func (l *tlsLayers) compose(set *certs.Set) target.TLSState {
	st := l.base
	for _, f := range l.faults {
		st = f.change(st, set)
	}
	return st
}

// Inject applies the fault over the TLS faults already active on the
// server.
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
	tlsActive.Lock()
	defer tlsActive.Unlock()
	l := tlsActive.m[s]
	if l == nil {
		l = &tlsLayers{base: s.TLSState()}
		tlsActive.m[s] = l
	}
	l.faults = append(l.faults, f)
	return s.SetTLSState(ctx, l.compose(set))
}

// Undo takes the fault off the server (back to the state before the first
// active TLS fault once none is left), or ends the stall.
func (f *TLSFault) Undo(ctx context.Context, env Env) error {
	if f.Kind == TLSHandshakeStall {
		l, err := limiter(env, false)
		if err != nil {
			return err
		}
		l.SetHandshakeStall(false)
		return nil
	}
	s, err := ability[tlsServer](env, "change its TLS settings")
	if err != nil {
		return err
	}
	tlsActive.Lock()
	defer tlsActive.Unlock()
	l := tlsActive.m[s]
	if l == nil || !slices.Contains(l.faults, f) {
		return nil
	}
	l.faults = slices.DeleteFunc(l.faults, func(g *TLSFault) bool { return g == f })
	if len(l.faults) == 0 {
		delete(tlsActive.m, s)
		return s.SetTLSState(ctx, l.base)
	}
	set, err := s.Certs()
	if err != nil {
		return err
	}
	return s.SetTLSState(ctx, l.compose(set))
}
