package chaos

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// errProtocol means the bytes on a connection are not RESP.
var errProtocol = errors.New("not RESP")

// maxDepth bounds nesting of RESP aggregates.
const maxDepth = 64

// readLine appends one CRLF-terminated line (with its CRLF) to dst.
func readLine(r *bufio.Reader, dst []byte) ([]byte, error) {
	for {
		chunk, err := r.ReadSlice('\n')
		dst = append(dst, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return dst, err
		}
		if len(dst) < 2 || dst[len(dst)-2] != '\r' {
			return dst, errProtocol
		}
		return dst, nil
	}
}

// readCommand reads one client command (a RESP array, or an inline command
// line as redis-cli and telnet send) and appends its bytes to dst. name is
// the command name in upper case, "" for an empty inline line (which Redis
// ignores without a reply).
func readCommand(r *bufio.Reader, dst []byte) (frame []byte, name string, err error) {
	b, err := r.Peek(1)
	if err != nil {
		return dst, "", err
	}
	if b[0] != '*' {
		start := len(dst)
		dst, err = readLine(r, dst)
		if err != nil {
			return dst, "", err
		}
		fields := bytes.Fields(dst[start:])
		if len(fields) == 0 {
			return dst, "", nil
		}
		return dst, string(bytes.ToUpper(fields[0])), nil
	}
	dst, first, err := readFrame(r, dst, 0)
	return dst, string(bytes.ToUpper([]byte(first))), err
}

// readFrame reads one RESP2 or RESP3 value and appends its bytes to dst.
// For an aggregate, first is its first element when that is a string.
func readFrame(r *bufio.Reader, dst []byte, depth int) (frame []byte, first string, err error) {
	if depth > maxDepth {
		return dst, "", errProtocol
	}
	start := len(dst)
	dst, err = readLine(r, dst)
	if err != nil {
		return dst, "", err
	}
	line := dst[start : len(dst)-2]
	if len(line) == 0 {
		return dst, "", errProtocol
	}
	typ, body := line[0], string(line[1:])
	switch typ {
	case '+', '-', ':', '_', ',', '#', '(':
		return dst, "", nil
	case '$', '!', '=': // blob string, blob error, verbatim string
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return dst, "", errProtocol
		}
		if n == -1 {
			return dst, "", nil
		}
		dst, err = readN(r, dst, n+2)
		return dst, "", err
	case '*', '~', '>', '%', '|': // array, set, push, map, attribute
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return dst, "", errProtocol
		}
		if typ == '%' || typ == '|' {
			n *= 2
		}
		for i := 0; i < n; i++ {
			elemStart := len(dst)
			dst, _, err = readFrame(r, dst, depth+1)
			if err != nil {
				return dst, "", err
			}
			if i == 0 {
				first = stringValue(dst[elemStart:])
			}
		}
		if typ == '|' { // an attribute precedes the value it describes
			return readFrame(r, dst, depth)
		}
		return dst, first, nil
	}
	return dst, "", errProtocol
}

// readN appends exactly n bytes.
func readN(r *bufio.Reader, dst []byte, n int) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	_, err := io.ReadFull(r, dst[start:])
	return dst, err
}

// stringValue returns the value of a simple or blob string frame, else "".
func stringValue(f []byte) string {
	switch {
	case len(f) > 2 && f[0] == '+':
		return string(f[1 : len(f)-2])
	case len(f) > 2 && f[0] == '$':
		if i := bytes.IndexByte(f, '\n'); i > 0 && len(f) >= i+3 {
			return string(f[i+1 : len(f)-2])
		}
	}
	return ""
}
