package certs

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	s, err := Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pair Pair
		host string
		want string // "" means the chain verifies
	}{
		{"server", s.Server, ServerName, ""},
		{"server by IP", s.Server, "127.0.0.1", ""},
		{"server by IPv6", s.Server, "::1", ""},
		{"untrusted", s.Untrusted, ServerName, "unknown authority"},
		{"expired", s.Expired, ServerName, "expired"},
		{"wrong host", s.WrongHost, ServerName, "valid for " + WrongHost + ", not " + ServerName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf, err := x509.ParseCertificate(tt.pair.Cert.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: s.Pool, DNSName: tt.host})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("verify: %v; want a good chain", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("verify: got %v; want %q", err, tt.want)
			}
			for _, f := range []string{tt.pair.CertFile, tt.pair.KeyFile} {
				if _, err := os.Stat(f); err != nil {
					t.Errorf("file %s: %v", f, err)
				}
			}
			if _, err := tls.LoadX509KeyPair(tt.pair.CertFile, tt.pair.KeyFile); err != nil {
				t.Errorf("files do not load as a key pair: %v", err)
			}
		})
	}
	client, err := x509.ParseCertificate(s.Client.Cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: s.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client cert does not verify for client auth: %v", err)
	}
	if c := s.ClientTLS(true); len(c.Certificates) != 1 || c.ServerName != ServerName || c.RootCAs != s.Pool {
		t.Fatalf("ClientTLS(true) = %+v; want the CA pool, %s and the client cert", c, ServerName)
	}
}
