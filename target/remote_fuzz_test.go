package target

import (
	"strings"
	"testing"

	"github.com/gonogo/harness/internal/redact"
)

// FuzzParseURL feeds the url target's parser (no network: parseURL stops
// before the dial) and the redaction with a URL built around a marked
// password. Neither may panic, and the password may show neither in the
// parse error (as OpenURL returns it) nor in Redacted, nor in any text
// that passes through redact.Text with the URL's secrets. The corpus is in
// testdata/fuzz/FuzzParseURL; make test runs it for a fixed short time.
func FuzzParseURL(f *testing.F) {
	for _, s := range [][4]string{
		{"redis", "", "pw", "127.0.0.1:6379/0"},
		{"rediss", "default", "pw", "127.0.0.1:6379/0"},
		{"redis", "user", "p@ss/w#rd?", "127.0.0.1:6379"},
		{"unix", "", "pw", "/run/redis.sock"},
		{"", "user", "pw", "127.0.0.1:6379"},
		{"redis", "u", "p%zz", "127.0.0.1:1"},
		{"redis", "u", "a b", "ho st:1"},
		{"redis", "u", "pw", "[::1:1/"},
		{"redis", "u", "pw", "127.0.0.1:1/0?password=pw2&db=1"},
		{"redis", "h:1/", "pw", "127.0.0.1:1"},
		{"redis", "u", `q"uote`, "127.0.0.1:1/x"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, scheme, user, pw, rest string) {
		secret := "QQ" + pw + "ZZ"
		raw := user + ":" + secret + "@" + rest
		if scheme != "" {
			raw = scheme + "://" + raw
		}
		// The markers must be the password's alone for "shows the
		// password" to mean that.
		if strings.Contains(scheme+user+rest, "QQ") || strings.Contains(scheme+user+rest, "ZZ") {
			t.Skip("the markers QQ and ZZ occur outside the password")
		}
		check := func(what, s string) {
			if strings.Contains(s, secret) {
				t.Fatalf("%s shows the password %q: %q (url %q)", what, secret, s, raw)
			}
		}
		check("redact.URL", redact.URL(raw))
		check("redact.Text", redact.Text("dial "+raw+" failed", redact.Secrets(raw)...))
		r, _, err := parseURL(raw, URLOptions{})
		if err != nil {
			msg := urlError(raw, err).Error()
			check("the parse error", msg)
			if strings.Contains(msg, "\n") {
				t.Fatalf("the parse error is more than one line: %q", msg)
			}
			return
		}
		check("Redacted", r.Redacted())
		check("Warnings", strings.Join(r.Warnings(), " "))
	})
}
