package hardened

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gonogo/harness/impl"
)

// appendEvent appends e as JSON, byte for byte what json.Marshal(e) gives,
// to dst. Publish encodes every event once on the hot path; json.Marshal's
// reflection was a tenth of the publisher's CPU. Strings that need escaping,
// a payload that is not compact JSON and timestamps outside years 0-9999
// take encoding/json's path, so the output never differs.
func appendEvent(dst []byte, e impl.Event) ([]byte, error) {
	start := len(dst)
	slow := func() ([]byte, error) {
		js, err := json.Marshal(e)
		return append(dst[:start], js...), err
	}
	_, off := e.Timestamp.Zone()
	if y := e.Timestamp.Year(); y < 0 || y > 9999 || off <= -24*3600 || off >= 24*3600 ||
		!plainJSON(e.ID, e.FlowID, e.Type, e.Source, e.CorrelationID, e.Cursor) {
		return slow()
	}
	dst = append(dst, `{"id":"`...)
	dst = append(dst, e.ID...)
	dst = append(dst, `","flow_id":"`...)
	dst = append(dst, e.FlowID...)
	dst = append(dst, `","event_type":"`...)
	dst = append(dst, e.Type...)
	dst = append(dst, '"')
	if len(e.Payload) > 0 {
		dst = append(dst, `,"payload":`...)
		n := len(dst)
		buf := bytes.NewBuffer(dst)
		if json.Compact(buf, e.Payload) != nil {
			return slow() // encoding/json's own error
		}
		dst = buf.Bytes()
		if p := dst[n:]; bytes.ContainsAny(p, "<>&\u2028\u2029") || !utf8.Valid(p) {
			return slow() // encoding/json escapes these
		}
	}
	dst = append(dst, `,"timestamp":"`...)
	dst = e.Timestamp.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	for _, f := range [...]struct{ key, val string }{
		{`,"source":"`, e.Source}, {`,"correlation_id":"`, e.CorrelationID}, {`,"cursor":"`, e.Cursor},
	} {
		if f.val != "" {
			dst = append(dst, f.key...)
			dst = append(dst, f.val...)
			dst = append(dst, '"')
		}
	}
	return append(dst, '}'), nil
}

// plainJSON reports whether every string is printable ASCII that
// encoding/json writes as is (no quote, backslash or HTML character).
func plainJSON(ss ...string) bool {
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return false
			}
		}
	}
	return true
}

// decodeEvent decodes an event's JSON as json.Unmarshal does. What
// appendEvent writes for plain strings (its fields in its order, strings
// without escapes) is read without reflection, which was most of a
// history read's CPU; anything else takes encoding/json.
func decodeEvent(s string) (impl.Event, error) {
	if e, ok := fastEvent(s); ok {
		return e, nil
	}
	var e impl.Event
	err := json.Unmarshal([]byte(s), &e)
	return e, err
}

// fastEvent reads s if it is exactly what appendEvent writes for an event
// whose strings are plainJSON; ok is false otherwise.
func fastEvent(s string) (e impl.Event, ok bool) {
	str := func(key string, dst *string) bool {
		rest, found := strings.CutPrefix(s, key)
		i := strings.IndexByte(rest, '"')
		if !found || i < 0 || !plainJSON(rest[:i]) {
			return false
		}
		*dst, s = rest[:i], rest[i+1:]
		return true
	}
	if !str(`{"id":"`, &e.ID) || !str(`,"flow_id":"`, &e.FlowID) || !str(`,"event_type":"`, &e.Type) {
		return e, false
	}
	if rest, found := strings.CutPrefix(s, `,"payload":`); found {
		n := valueLen(rest)
		if n <= 0 || rest[:n] == "null" || isSpace(rest[0]) || isSpace(rest[n-1]) || !json.Valid([]byte(rest[:n])) {
			return e, false
		}
		e.Payload, s = json.RawMessage(rest[:n]), rest[n:]
	}
	var ts string
	if !str(`,"timestamp":"`, &ts) || e.Timestamp.UnmarshalText([]byte(ts)) != nil {
		return e, false
	}
	for _, f := range [...]struct {
		key string
		dst *string
	}{{`,"source":"`, &e.Source}, {`,"correlation_id":"`, &e.CorrelationID}, {`,"cursor":"`, &e.Cursor}} {
		if strings.HasPrefix(s, f.key) && !str(f.key, f.dst) {
			return e, false
		}
	}
	return e, s == "}"
}

// valueLen is the length of the JSON value s starts with, up to the comma
// or closing brace after it (not checked for validity); -1 if s ends
// first.
func valueLen(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
			if i >= len(s) {
				return -1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
		case ',':
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
