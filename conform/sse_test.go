package conform

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// TestSSEReader: blocks are read as the WHATWG EventSource reads them.
func TestSSEReader(t *testing.T) {
	in := "\uFEFFretry: 100\r: connected c1\r\n\r\n" + // BOM, CR and CRLF line ends
		"id: 5-0\nevent: STEP\ndata: {\"a\":1}\ndata:two\nfoo: bar\nretry: 1.5\n\n" +
		"id: a\x00b\ndata\n\n" + // an id with NUL is ignored; "data" alone is an empty data line
		"data: cut off"
	r := newSSEReader(strings.NewReader(in))
	f, err := r.next()
	if err != nil || !f.retryOK || f.retry != "100" || len(f.comments) != 1 || f.comments[0] != "connected c1" || !f.isCommentOnly() {
		t.Errorf("first block: %+v, %v", f, err)
	}
	f, err = r.next()
	if err != nil || f.id != "5-0" || f.event != "STEP" || f.data != "{\"a\":1}\ntwo" || f.dataIsOneLine() || f.retryOK || len(f.unknown) != 1 {
		t.Errorf("second block: %+v, %v", f, err)
	}
	f, err = r.next()
	if err != nil || f.hasID || !f.hasData || f.data != "" {
		t.Errorf("third block: %+v, %v", f, err)
	}
	if _, err = r.next(); !errors.Is(err, io.EOF) {
		t.Errorf("a block the stream cut off: got %v; want EOF", err)
	}
}

// TestSSEReaderBounds: a line or a block without end is refused, not
// held.
func TestSSEReaderBounds(t *testing.T) {
	if _, err := newSSEReader(strings.NewReader(strings.Repeat("x", maxLine+1))).next(); !errors.Is(err, errLine) {
		t.Errorf("long line: got %v; want %v", err, errLine)
	}
	if _, err := newSSEReader(strings.NewReader(strings.Repeat(": c\n", maxBlock/4+1))).next(); !errors.Is(err, errBlock) {
		t.Errorf("endless block: got %v; want %v", err, errBlock)
	}
}
