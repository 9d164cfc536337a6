package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"redis://localhost:6379/0", "redis://localhost:6379/0"},
		{"rediss://default:s3cret@eu1.upstash.io:6379", "rediss://default:xxxxx@eu1.upstash.io:6379"},
		{"redis://:p%40ss@127.0.0.1:1/0", "redis://:xxxxx@127.0.0.1:1/0"},
		{"redis://user@host:1", "redis://user@host:1"},
		{"redis://u:bad pass@ho st:1", "redis://xxxxx@ho st:1"},
	}
	for _, c := range cases {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

func TestText(t *testing.T) {
	in := `dial "rediss://default:hunter2@host:6379": refused; pw hunter2`
	got := Text(in, Password("rediss://default:hunter2@host:6379"))
	if strings.Contains(got, "hunter2") {
		t.Fatalf("Text leaked the password: %q", got)
	}
}
