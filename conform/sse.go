package conform

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// frame is what one blank-line-terminated block of an event stream holds,
// parsed as the WHATWG HTML standard's EventSource does ("Interpreting an
// event stream").
type frame struct {
	// comments are the block's comment lines, without the colon.
	comments []string
	// retry is the value of a retry: field ("" none); retryOK says it was
	// ASCII digits only, the form a browser honours.
	retry   string
	retryOK bool
	// hasID says an id: field was set; id is its value.
	hasID bool
	id    string
	// event is the event: field ("" none).
	event string
	// data is the data buffer, lines joined by LF ("" no data field).
	data    string
	hasData bool
	// unknown lists fields a browser ignores.
	unknown []string
}

// maxLine bounds one line of an event stream, maxBlock one block.
const (
	maxLine  = 1 << 20
	maxBlock = 4 << 20
)

// errLine is a line past maxLine, errBlock a block past maxBlock.
var (
	errLine  = errors.New("event stream line over 1 MiB")
	errBlock = errors.New("event stream block over 4 MiB without a blank line")
)

// sseReader reads frames from an event stream.
type sseReader struct {
	r     *bufio.Reader
	first bool
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), first: true}
}

// line reads one line ending in CRLF, LF or CR (any of them ends a line
// in an event stream), without its end; io.EOF when the stream ended, also
// in the middle of a line (a browser drops such a line).
func (s *sseReader) line() (string, error) {
	var b []byte
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			return "", err
		}
		switch c {
		case '\n':
			return string(b), nil
		case '\r':
			if n, err := s.r.Peek(1); err == nil && n[0] == '\n' {
				s.r.ReadByte()
			}
			return string(b), nil
		}
		if len(b) >= maxLine {
			return "", errLine
		}
		b = append(b, c)
	}
}

// next reads the next block up to its blank line. A block cut off by the
// end of the stream is returned with io.EOF (a browser discards it).
func (s *sseReader) next() (frame, error) {
	var f frame
	var data strings.Builder
	size := 0
	for {
		l, err := s.line()
		if err != nil {
			return f, err
		}
		if size += len(l) + 1; size > maxBlock {
			return f, errBlock
		}
		if s.first {
			l = strings.TrimPrefix(l, "\uFEFF")
			s.first = false
		}
		if !utf8.ValidString(l) {
			return f, fmt.Errorf("line %.60q is not UTF-8", l)
		}
		if l == "" {
			f.data = strings.TrimSuffix(data.String(), "\n")
			return f, nil
		}
		if strings.HasPrefix(l, ":") {
			f.comments = append(f.comments, strings.TrimPrefix(l[1:], " "))
			continue
		}
		name, value, _ := strings.Cut(l, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "event":
			f.event = value
		case "data":
			f.hasData = true
			data.WriteString(value)
			data.WriteByte('\n')
		case "id":
			if !strings.ContainsRune(value, 0) {
				f.hasID, f.id = true, value
			}
		case "retry":
			f.retry = value
			f.retryOK = value != "" && strings.Trim(value, "0123456789") == ""
		default:
			f.unknown = append(f.unknown, name)
		}
	}
}

// isCommentOnly reports whether f holds nothing but comments (and retry).
func (f frame) isCommentOnly() bool { return !f.hasData && !f.hasID && f.event == "" }

// dataIsOneLine reports whether the data buffer is one line (the contract
// sends one data: line per event).
func (f frame) dataIsOneLine() bool { return !bytes.ContainsRune([]byte(f.data), '\n') }
