// Package redact removes secrets (passwords in Redis URLs) from text before it
// reaches a log, an error message or a report.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a secret wherever it appears.
const Mask = "xxxxx"

// URL returns u with any password replaced by Mask. A string that does not
// parse as a URL is returned with everything between "://" and the last "@"
// masked, so a malformed URL never leaks its password either.
func URL(u string) string {
	p, err := url.Parse(u)
	if err == nil && p.User != nil {
		if _, has := p.User.Password(); has {
			p.User = url.UserPassword(p.User.Username(), Mask)
			return strings.Replace(p.String(), url.QueryEscape(Mask), Mask, 1)
		}
		return u
	}
	if err == nil {
		return u
	}
	return credRE.ReplaceAllString(u, "${1}"+Mask+"@")
}

var credRE = regexp.MustCompile(`(://)[^/]*@`)

// urlRE finds redis URLs inside free text.
var urlRE = regexp.MustCompile(`rediss?://[^\s"'<>]+`)

// Text masks the password of every redis:// or rediss:// URL in s, and every
// literal secret given.
func Text(s string, secrets ...string) string {
	s = urlRE.ReplaceAllStringFunc(s, URL)
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, Mask)
		}
	}
	return s
}

// Password returns the password of a redis URL, or "" if it has none or
// does not parse. Use it to feed Text with the literal secret.
func Password(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return ""
	}
	pw, _ := p.User.Password()
	return pw
}
