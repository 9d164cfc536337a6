// Package certs generates the TLS material of a run at run time (nothing is
// committed): a CA with a good server certificate for 127.0.0.1/localhost, a
// client certificate from the same CA, and the bad ones the TLS faults need
// (signed by an untrusted CA, expired, issued for the wrong host name).
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"time"

	"github.com/gonogo/harness/internal/history"
)

// WrongHost is the only name the wrong-host certificate is valid for.
const WrongHost = "wrong-host.invalid"

// Pair is a certificate with its key, on disk (PEM) and in memory.
type Pair struct {
	CertFile, KeyFile string
	Cert              tls.Certificate
}

// Set is the TLS material of one run, written under Dir.
type Set struct {
	Dir string
	// CAFile is the trusted CA (PEM); Pool holds it.
	CAFile string
	Pool   *x509.CertPool
	// Server is valid for 127.0.0.1, ::1 and localhost, signed by the CA.
	Server Pair
	// Client is a client-auth certificate signed by the CA.
	Client Pair
	// Untrusted is a server certificate for the right hosts signed by
	// another CA (UntrustedCAFile) that no client trusts.
	Untrusted       Pair
	UntrustedCAFile string
	// Expired is signed by the CA for the right hosts but expired a day ago.
	Expired Pair
	// WrongHost is signed by the CA but valid only for WrongHost.
	WrongHost Pair
}

// ServerName is the host name clients verify the server against; every
// good server certificate carries it.
const ServerName = "localhost"

// ClientTLS returns a client configuration that trusts the CA and verifies
// ServerName; with clientCert it also presents the client certificate.
func (s *Set) ClientTLS(clientCert bool) *tls.Config {
	c := &tls.Config{RootCAs: s.Pool, ServerName: ServerName, MinVersion: tls.VersionTLS12}
	if clientCert {
		c.Certificates = []tls.Certificate{s.Client.Cert}
	}
	return c
}

type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// Generate creates the material and writes it as PEM files under dir
// (created if missing).
func Generate(dir string) (*Set, error) {
	now := time.Now()
	ca, err := newCA("gonogo test CA", now)
	if err != nil {
		return nil, err
	}
	other, err := newCA("gonogo untrusted CA", now)
	if err != nil {
		return nil, err
	}
	s := &Set{Dir: dir, CAFile: filepath.Join(dir, "ca.crt"), UntrustedCAFile: filepath.Join(dir, "untrusted-ca.crt")}
	s.Pool = x509.NewCertPool()
	s.Pool.AddCert(ca.cert)
	if err := history.WriteFileAtomic(s.CAFile, ca.pem); err != nil {
		return nil, err
	}
	if err := history.WriteFileAtomic(s.UntrustedCAFile, other.pem); err != nil {
		return nil, err
	}
	hosts := []string{ServerName, "127.0.0.1", "::1"}
	leaves := []struct {
		dst       *Pair
		name      string
		ca        *authority
		hosts     []string
		notBefore time.Time
		notAfter  time.Time
		usage     x509.ExtKeyUsage
	}{
		{&s.Server, "server", ca, hosts, now.Add(-time.Hour), now.Add(24 * time.Hour), x509.ExtKeyUsageServerAuth},
		{&s.Client, "client", ca, []string{"gonogo-client"}, now.Add(-time.Hour), now.Add(24 * time.Hour), x509.ExtKeyUsageClientAuth},
		{&s.Untrusted, "untrusted", other, hosts, now.Add(-time.Hour), now.Add(24 * time.Hour), x509.ExtKeyUsageServerAuth},
		{&s.Expired, "expired", ca, hosts, now.Add(-48 * time.Hour), now.Add(-24 * time.Hour), x509.ExtKeyUsageServerAuth},
		{&s.WrongHost, "wronghost", ca, []string{WrongHost}, now.Add(-time.Hour), now.Add(24 * time.Hour), x509.ExtKeyUsageServerAuth},
	}
	for i, l := range leaves {
		p, err := newLeaf(l.ca, int64(i+10), l.name, l.hosts, l.notBefore, l.notAfter, l.usage)
		if err != nil {
			return nil, err
		}
		if err := p.write(dir, l.name); err != nil {
			return nil, err
		}
		*l.dst = p.pair
	}
	return s, nil
}

func newCA(name string, now time.Time) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-72 * time.Hour),
		NotAfter:              now.Add(72 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

type leaf struct {
	pair            Pair
	certPEM, keyPEM []byte
}

func newLeaf(ca *authority, serial int64, name string, hosts []string, notBefore, notAfter time.Time, usage x509.ExtKeyUsage) (*leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating %s key: %w", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "gonogo " + name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("creating %s certificate: %w", name, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	l := &leaf{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	l.pair.Cert, err = tls.X509KeyPair(l.certPEM, l.keyPEM)
	return l, err
}

func (l *leaf) write(dir, name string) error {
	l.pair.CertFile = filepath.Join(dir, name+".crt")
	l.pair.KeyFile = filepath.Join(dir, name+".key")
	if err := history.WriteFileAtomic(l.pair.CertFile, l.certPEM); err != nil {
		return err
	}
	return history.WriteFileAtomic(l.pair.KeyFile, l.keyPEM)
}
