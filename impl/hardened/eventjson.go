package hardened

import (
	"bytes"
	"encoding/json"
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
