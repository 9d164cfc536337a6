package chaos

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name, in, first string
	}{
		{"simple", "+OK\r\n", ""},
		{"error", "-ERR x\r\n", ""},
		{"integer", ":42\r\n", ""},
		{"bulk", "$5\r\nhe\r\no\r\n", ""},
		{"null bulk", "$-1\r\n", ""},
		{"null array", "*-1\r\n", ""},
		{"array", "*2\r\n$9\r\nsubscribe\r\n:1\r\n", "subscribe"},
		{"nested", "*2\r\n*1\r\n+a\r\n$1\r\nb\r\n", ""},
		{"resp3 map", "%1\r\n+server\r\n+redis\r\n", "server"},
		{"resp3 push", ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n", "message"},
		{"resp3 scalars", "*4\r\n_\r\n,1.5\r\n#t\r\n(12345678901234567890\r\n", ""},
		{"resp3 verbatim and blob error", "*2\r\n=8\r\ntxt:abcd\r\n!3\r\nERR\r\n", ""},
		{"resp3 set", "~1\r\n+a\r\n", "a"},
		{"attribute then value", "|1\r\n+key\r\n+val\r\n+OK\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tt.in + "+NEXT\r\n"))
			got, first, err := readFrame(r, nil, 0)
			if err != nil || string(got) != tt.in || first != tt.first {
				t.Fatalf("got %q, first %q, %v; want %q, first %q", got, first, err, tt.in, tt.first)
			}
			if next, _, _ := readFrame(r, nil, 0); string(next) != "+NEXT\r\n" {
				t.Fatalf("next frame %q; want +NEXT (frame boundary lost)", next)
			}
		})
	}
}

func TestReadFrameRejectsNonRESP(t *testing.T) {
	for _, in := range []string{"\x16\x03\x01\x00\r\n", "hello\r\n", "$x\r\n", "*2\r\n+a\r\n?\r\n", "+no crlf\n", "\r\n"} {
		_, _, err := readFrame(bufio.NewReader(strings.NewReader(in)), nil, 0)
		if !errors.Is(err, errProtocol) {
			t.Errorf("readFrame(%q): %v; want errProtocol", in, err)
		}
	}
	if _, _, err := readFrame(bufio.NewReader(strings.NewReader("$5\r\nab")), nil, 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated bulk: %v; want unexpected EOF", err)
	}
}

func TestReadCommand(t *testing.T) {
	in := "*2\r\n$3\r\nget\r\n$1\r\nk\r\nping\r\n\r\n  set a  b\r\n*1\r\n$4\r\nEXEC\r\n"
	r := bufio.NewReader(strings.NewReader(in))
	var names []string
	for {
		_, name, err := readCommand(r, nil)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	want := []string{"GET", "PING", "", "SET", "EXEC"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("names %q; want %q", names, want)
	}
}

func TestReadLineLongerThanTheBuffer(t *testing.T) {
	long := "+" + strings.Repeat("x", 10000) + "\r\n"
	got, err := readLine(bufio.NewReaderSize(strings.NewReader(long), 16), nil)
	if err != nil || string(got) != long {
		t.Fatalf("got %d bytes, %v; want %d", len(got), err, len(long))
	}
}
