package service

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// CORS lets pages of other origins use the contract from a browser
// (docs/http.md, "Browsers"). The zero value allows no other origin: a
// browser then blocks such a page's reads, as without CORS.
type CORS struct {
	// Origins are the allowed origins, each "scheme://host[:port]" as a
	// browser sends it in Origin, or "*" for any. Default none.
	Origins []string
}

// corsMethods, corsHeaders and corsExposed are what a preflight allows
// and what a page may read of an answer.
const (
	corsMethods = "GET, POST, PUT, DELETE"
	corsHeaders = "Content-Type, Last-Event-ID, X-User-ID"
	corsExposed = "X-Connection-ID, X-Layer-Mode, X-Cache-Lease"
	corsMaxAge  = 600 // seconds a browser may cache a preflight's answer
)

// ParseOrigins reads a comma-separated list of origins (`harness serve
// --cors-origins`, CORS_ORIGINS): "*" or scheme://host[:port] with scheme
// http or https and nothing after the port. Empty entries are skipped.
func ParseOrigins(list string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o != "*" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
				u.User != nil || u.Path != "" || strings.ContainsAny(o, "?#") {
				return nil, fmt.Errorf("CORS origin %q: want * or scheme://host[:port] (http or https, no path)", truncate(o, 128))
			}
			o = u.Scheme + "://" + strings.ToLower(u.Host)
		}
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out, nil
}

// allows reports whether origin may read answers.
func (c CORS) allows(origin string) bool {
	return origin != "" && (slices.Contains(c.Origins, "*") || slices.Contains(c.Origins, strings.ToLower(origin)))
}

// cors sets the CORS headers of an answer to a request from an allowed
// origin and answers its preflight (OPTIONS with
// Access-Control-Request-Method): 204 with what may be sent, or 403 for
// an origin that is not allowed. It reports whether it answered. The
// control API (/_harness/) is never offered to other origins.
func (s *Service) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(s.opts.CORS.Origins) == 0 || strings.HasPrefix(r.URL.Path, "/_harness") {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if !s.opts.CORS.allows(origin) {
		if preflight {
			writeError(w, http.StatusForbidden, fmt.Sprintf("origin %q is not allowed (CORS)", truncate(origin, 128)))
		}
		return preflight
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if !preflight {
		h.Set("Access-Control-Expose-Headers", corsExposed)
		return false
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", corsMethods)
	h.Set("Access-Control-Allow-Headers", corsHeaders)
	h.Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
	w.WriteHeader(http.StatusNoContent)
	return true
}
