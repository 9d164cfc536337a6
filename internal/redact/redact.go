// Package redact removes secrets (passwords in Redis URLs) from text before it
// reaches a log, an error message or a report.
//
// It does not rely on a URL parsing: a careless or hostile URL often does
// not parse (no scheme, a space, a bad escape), and that is exactly when it
// ends up in an error message. Any string with userinfo, "[scheme://]user:
// password@host...", has everything between the first ':' of the userinfo
// and the last '@' masked, whatever the scheme or its absence; the values of
// query parameters that carry secrets (password=, token=, ...) are masked
// too. It errs on the side of masking.
package redact

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Mask replaces a secret wherever it appears.
const Mask = "xxxxx"

// schemeRE matches a URL scheme and its "://".
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.\-]*://`)

// queryRE finds the value of a query parameter that carries a secret.
var queryRE = regexp.MustCompile(`(?i)([?&;](?:password|passwd|pass|pwd|secret|token|auth|access_token|api_key|apikey)=)([^&#\s"'<>` + "`" + `]*)`)

// split cuts a URL-like string into what comes before its userinfo (the
// scheme and "://", if any), the user, the password and the rest from the
// '@' that ends the userinfo. hasPw is false when there is no userinfo or
// it has no ':' (a user name alone is not a secret).
func split(u string) (head, user, pw, rest string, hasPw bool) {
	head = schemeRE.FindString(u)
	body := u[len(head):]
	at := strings.LastIndexByte(body, '@')
	if at < 0 {
		return head, "", "", body, false
	}
	user, pw, hasPw = strings.Cut(body[:at], ":")
	return head, user, pw, body[at:], hasPw
}

// URL returns u with any password masked: the userinfo's password (with or
// without a scheme, parsable or not) and the values of secret-carrying
// query parameters. Everything else is kept as written.
func URL(u string) string {
	head, user, _, rest, hasPw := split(u)
	if hasPw {
		u = head + user + ":" + Mask + rest
	}
	return queryRE.ReplaceAllString(u, "${1}"+Mask)
}

// Secrets returns the secrets u carries, as written and decoded: the
// userinfo's password and the values of secret-carrying query parameters.
// Feed them to Text to mask them wherever they were copied (an error that
// quotes part of the URL, a password with a space that splits the URL in
// free text).
func Secrets(u string) []string {
	var out []string
	add := func(s string) {
		forms := []string{s}
		if d, err := url.PathUnescape(s); err == nil {
			forms = append(forms, d)
		}
		if d, err := url.QueryUnescape(s); err == nil {
			forms = append(forms, d)
		}
		for _, f := range forms {
			if f != "" && !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	if _, user, pw, _, ok := split(u); ok {
		add(pw)
		// A parser may split the userinfo at another ':' (a user name
		// with one, or text before a '?' it reads as a query) and show
		// what follows it: every tail after a ':' is masked too.
		info := user + ":" + pw
		for i := 0; i+1 < len(info); i++ {
			if info[i] == ':' {
				add(info[i+1:])
			}
		}
	}
	for _, m := range queryRE.FindAllStringSubmatch(u, -1) {
		add(m[2])
	}
	return out
}

// Password returns the password of a URL-like string (see Secrets), as
// written, or "".
func Password(u string) string {
	_, _, pw, _, _ := split(u)
	return pw
}

// tokenRE finds a URL-like token in free text that has userinfo or a
// query: no space or quote in it, an '@' or a '?'.
var tokenRE = regexp.MustCompile("[^\\s\"'<>`]*[@?][^\\s\"'<>`]*")

// Text masks the password of every URL-like token in s (see URL), and every
// literal secret given, also as Go's %q would quote it.
func Text(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		s = strings.ReplaceAll(s, sec, Mask)
		if q := strconv.Quote(sec); q[1:len(q)-1] != sec {
			s = strings.ReplaceAll(s, q[1:len(q)-1], Mask)
		}
	}
	return tokenRE.ReplaceAllStringFunc(s, URL)
}
