package target

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/inputfile"
	"github.com/gonogo/harness/internal/redact"
)

// URLOptions configure a URL target. Zero values mean defaults.
type URLOptions struct {
	// CAFile is a PEM CA bundle to verify a rediss:// server with.
	// Default: the system roots.
	CAFile string
	// CertFile and KeyFile are a client certificate to present over TLS.
	// Default: none. Both or neither.
	CertFile, KeyFile string
	// Insecure turns TLS certificate verification off. It is reported by
	// Warnings and must be shown to the user. Default: verify.
	Insecure bool
	// Prefix namespaces every key the harness writes. Default
	// "gonogo:<run id>:" with a random run id.
	Prefix string
	// ConnectTimeout bounds the connect check at open. Default 5s.
	ConnectTimeout time.Duration
}

// Remote is a Redis reached by URL: local, Upstash, anything. The harness
// owns nothing there: it offers no destructive ability, namespaces its keys
// with KeyPrefix and deletes them on Cleanup/Close.
type Remote struct {
	raw      string
	addr     string
	opts     URLOptions
	tls      *tls.Config
	rdb      *redis.Client
	closeErr error
	once     sync.Once
}

// OpenURL parses rawURL (redis:// or rediss://), builds its TLS
// configuration (verification on unless Insecure) and checks that the server
// answers PING with the given credentials. Every error is bad input (exit
// 3), is one line, and never contains the password.
func OpenURL(ctx context.Context, rawURL string, o URLOptions) (*Remote, error) {
	r, opt, err := parseURL(rawURL, o)
	if err == nil {
		err = r.connect(ctx, opt)
	}
	if err != nil {
		return nil, urlError(rawURL, err)
	}
	return r, nil
}

// urlError is err, about rawURL, as bad input with every secret of rawURL
// masked: the URL shown in it is masked already, but a parse error may
// quote a part of it.
func urlError(rawURL string, err error) error {
	return exitcode.Config(errors.New(redact.Text(err.Error(), redact.Secrets(rawURL)...)))
}

// parseURL checks rawURL and builds the Remote and its client options
// without any network traffic. Its errors show the URL only masked.
func parseURL(rawURL string, o URLOptions) (*Remote, *redis.Options, error) {
	shown := redact.URL(rawURL)
	if strings.ContainsFunc(shown, unicode.IsControl) {
		shown = strconv.Quote(shown) // one line, whatever it holds
	}
	if !strings.Contains(rawURL, "://") {
		return nil, nil, fmt.Errorf("redis url %s: no scheme (want redis://… or rediss://…)", shown)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, shown once already
		}
		return nil, nil, fmt.Errorf("redis url %s: does not parse: %w", shown, err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, nil, fmt.Errorf("redis url %s: unknown scheme %q (want redis:// or rediss://)", shown, u.Scheme)
	}
	if u.Host == "" {
		return nil, nil, fmt.Errorf("redis url %s: no host", shown)
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("redis url %s: %w", shown, err)
	}
	r := &Remote{raw: rawURL, addr: opt.Addr, opts: o}
	if u.Scheme == "rediss" {
		if r.tls, err = clientTLS(o, opt.TLSConfig.ServerName); err != nil {
			return nil, nil, fmt.Errorf("redis url %s: %w", shown, err)
		}
	} else if o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" || o.Insecure {
		return nil, nil, fmt.Errorf("redis url %s: TLS options given but the URL is plain redis:// (use rediss://)", shown)
	}
	if r.opts.Prefix == "" {
		b := make([]byte, 4)
		rand.Read(b)
		r.opts.Prefix = "gonogo:" + hex.EncodeToString(b) + ":"
	}
	if r.opts.ConnectTimeout <= 0 {
		r.opts.ConnectTimeout = 5 * time.Second
	}
	opt.TLSConfig = r.tls
	opt.PoolSize = 2
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.DialTimeout = r.opts.ConnectTimeout
	opt.ContextTimeoutEnabled = true
	return r, opt, nil
}

// connect opens the client of opt and checks that the server answers PING.
func (r *Remote) connect(ctx context.Context, opt *redis.Options) error {
	r.rdb = redis.NewClient(opt)
	cctx, cancel := context.WithTimeout(ctx, r.opts.ConnectTimeout)
	defer cancel()
	if err := r.rdb.Ping(cctx).Err(); err != nil {
		r.rdb.Close()
		return connectError(r.Redacted(), err, r.tls != nil)
	}
	return nil
}

// connectError says in one line why the connect check failed. tlsOn says
// the client spoke TLS.
func connectError(shown string, err error, tlsOn bool) error {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	closed := errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
	switch {
	case redis.IsAuthError(err) || strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH"):
		return fmt.Errorf("redis %s: authentication failed (check user and password): %s", shown, msg)
	case errors.As(err, &certErr) || strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:"):
		return fmt.Errorf("redis %s: TLS handshake failed: %s", shown, msg)
	case tlsOn && closed:
		// TLS 1.3: a server that rejects the client's certificate does so
		// after the client finished its handshake, and its alert is lost
		// when the reset arrives first.
		return fmt.Errorf("redis %s: TLS: the server closed the connection after the handshake (does it require a client certificate?): %s", shown, msg)
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("redis %s: unreachable: %s", shown, msg)
	case closed:
		return fmt.Errorf("redis %s: the server closed the connection (a TLS-only server reached with redis://?): %s", shown, msg)
	}
	return fmt.Errorf("redis %s: connect check failed: %s", shown, msg)
}

// clientTLS builds the client TLS configuration of a rediss:// URL.
func clientTLS(o URLOptions, serverName string) (*tls.Config, error) {
	c := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure}
	if o.CAFile != "" {
		pem, err := inputfile.Read(o.CAFile, inputfile.MaxPEM)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", o.CAFile)
		}
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("client certificate needs both a cert file and a key file")
	}
	if o.CertFile != "" {
		certPEM, err := inputfile.Read(o.CertFile, inputfile.MaxPEM)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		keyPEM, err := inputfile.Read(o.KeyFile, inputfile.MaxPEM)
		if err != nil {
			return nil, fmt.Errorf("client key: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Warnings lists what the user must be told loudly about this target:
// TLS verification turned off.
func (r *Remote) Warnings() []string {
	if r.opts.Insecure {
		return []string{"INSECURE: TLS certificate verification is OFF for " + r.Redacted() + ": the server's identity is not checked"}
	}
	return nil
}

// Kind is KindURL.
func (r *Remote) Kind() Kind { return KindURL }

// Addr is host:port from the URL.
func (r *Remote) Addr() string { return r.addr }

// URL is the URL as given, credentials included: a secret.
func (r *Remote) URL() string { return r.raw }

// Redacted is URL with the password masked.
func (r *Remote) Redacted() string { return redact.URL(r.raw) }

// TLS is the client TLS configuration for rediss://, or nil.
func (r *Remote) TLS() *tls.Config {
	if r.tls == nil {
		return nil
	}
	return r.tls.Clone()
}

// Owned is false: destructive faults are refused.
func (r *Remote) Owned() bool { return false }

// KeyPrefix is the per-run namespace of every key the harness writes.
func (r *Remote) KeyPrefix() string { return r.opts.Prefix }

// Cleanup deletes every key under KeyPrefix (SCAN + UNLINK) and returns how
// many it deleted.
func (r *Remote) Cleanup(ctx context.Context) (int, error) {
	match := globEscape(r.opts.Prefix) + "*"
	var cursor uint64
	n := 0
	for {
		keys, next, err := r.rdb.Scan(ctx, cursor, match, 500).Result()
		if err != nil {
			return n, fmt.Errorf("cleanup of %s*: %w", r.opts.Prefix, err)
		}
		if len(keys) > 0 {
			d, err := r.rdb.Unlink(ctx, keys...).Result()
			n += int(d)
			if err != nil {
				return n, fmt.Errorf("cleanup of %s*: %w", r.opts.Prefix, err)
			}
		}
		if cursor = next; cursor == 0 {
			return n, nil
		}
	}
}

// globEscape escapes the glob characters of SCAN MATCH.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Close deletes the run's keys (bounded by 10s) and closes the connection.
// Safe to call more than once.
func (r *Remote) Close() error {
	r.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := r.Cleanup(ctx)
		r.closeErr = errors.Join(err, r.rdb.Close())
	})
	return r.closeErr
}
