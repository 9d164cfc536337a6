package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"redis://localhost:6379/0", "redis://localhost:6379/0"},
		{"rediss://default:s3cret@eu1.upstash.io:6379", "rediss://default:xxxxx@eu1.upstash.io:6379"},
		{"rediss://default:s3cret@127.0.0.1:6379/0", "rediss://default:xxxxx@127.0.0.1:6379/0"},
		{"redis://:p%40ss@127.0.0.1:1/0", "redis://:xxxxx@127.0.0.1:1/0"},
		{"redis://user@host:1", "redis://user@host:1"},
		{"redis://u:bad pass@ho st:1", "redis://u:xxxxx@ho st:1"},
		// no scheme, or one the target does not know
		{"user:password@host:6379", "user:xxxxx@host:6379"},
		{":password@host:6379", ":xxxxx@host:6379"},
		{"redis://:pw@h", "redis://:xxxxx@h"},
		{"unix://:pw@/path/redis.sock", "unix://:xxxxx@/path/redis.sock"},
		{"http://u:pw@svc:8080/x", "http://u:xxxxx@svc:8080/x"},
		// a password with '@', '/', '#' or '?' unescaped: up to the last '@'
		{"redis://u:p@ss/w#?rd@127.0.0.1:6379/0", "redis://u:xxxxx@127.0.0.1:6379/0"},
		{"redis://u:p%zz@127.0.0.1:1", "redis://u:xxxxx@127.0.0.1:1"},
		// secrets in the query
		{"redis://127.0.0.1:1/0?password=pw", "redis://127.0.0.1:1/0?password=xxxxx"},
		{"redis://127.0.0.1:1/0?db=1&Password=pw&x=1", "redis://127.0.0.1:1/0?db=1&Password=xxxxx&x=1"},
		{"redis://u:a@127.0.0.1:1/0?token=t0k", "redis://u:xxxxx@127.0.0.1:1/0?token=xxxxx"},
		{"not a url", "not a url"},
		{"", ""},
	}
	for _, c := range cases {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

func TestSecrets(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"redis://127.0.0.1:1/0", nil},
		{"redis://user@127.0.0.1:1/0", nil},
		{"user:pw@h:1", []string{"pw"}},
		{"redis://:p%40ss@h:1", []string{"p%40ss", "p@ss"}},
		{"redis://h:1/0?password=a+b", []string{"a+b", "a b"}},
		{"redis://u:x y@h:1/0?pass=q", []string{"x y", "q"}},
	}
	for _, c := range cases {
		got := Secrets(c.in)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("Secrets(%q) = %q; want %q", c.in, got, c.want)
		}
	}
	if got := Password("redis://u:p%40ss@h:1"); got != "p%40ss" {
		t.Errorf("Password = %q; want the password as written", got)
	}
}

func TestText(t *testing.T) {
	cases := []struct {
		in      string
		secrets []string
		leak    string
	}{
		{`dial "rediss://default:hunter2@host:6379": refused; pw hunter2`, Secrets("rediss://default:hunter2@host:6379"), "hunter2"},
		{`redis url user:hunter3@127.0.0.1:6379: unknown scheme "user"`, nil, "hunter3"},
		{`parse ":hunter4@127.0.0.1:6379": missing protocol scheme`, nil, "hunter4"},
		{`redis url redis://127.0.0.1:1/0?password=hunter5: redis: unexpected option: password`, nil, "hunter5"},
		{`{"url":"unix://:hunter6@/run/redis.sock"}`, nil, "hunter6"},
		// a space splits the URL in text: only the literal secret finds it
		{`url redis://u:hun ter7@h:1 refused`, Secrets("redis://u:hun ter7@h:1"), "ter7"},
		// Go's %q escapes a quote: the quoted form is masked too
		{`parse "redis://u:hun\"ter8@h:1 x": invalid`, Secrets(`redis://u:hun"ter8@h:1 x`), "ter8"},
	}
	for _, c := range cases {
		got := Text(c.in, c.secrets...)
		if strings.Contains(got, c.leak) {
			t.Errorf("Text(%q) = %q: leaks %q", c.in, got, c.leak)
		}
		if !strings.Contains(got, Mask) {
			t.Errorf("Text(%q) = %q: nothing masked", c.in, got)
		}
	}
	// Text leaves text without secrets alone: mail addresses, ports, URLs
	// without credentials.
	for _, s := range []string{"mail ops@example.com", "dial tcp 127.0.0.1:6379: refused", "http://127.0.0.1:8080/health?x=1"} {
		if got := Text(s); got != s {
			t.Errorf("Text(%q) = %q; want it unchanged", s, got)
		}
	}
}
