package target

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// respConn is a minimal RESP2 client for the harness's own calls to a server
// it owns (PING, AUTH, CONFIG, CLIENT KILL), so start-up and fault control do
// not depend on a client library's retries or pools.
type respConn struct {
	c net.Conn
	r *bufio.Reader
}

// ServerError is an error reply ("-ERR ...") from Redis.
type ServerError string

func (e ServerError) Error() string { return string(e) }

// defaultRawTimeout bounds one raw call when ctx has no deadline.
const defaultRawTimeout = 2 * time.Second

// dialRESP connects (with TLS when tc is not nil) and authenticates when
// pass is not empty. The whole exchange is bounded by ctx's deadline or
// defaultRawTimeout.
func dialRESP(ctx context.Context, addr string, tc *tls.Config, user, pass string) (*respConn, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultRawTimeout)
	}
	d := net.Dialer{Deadline: deadline}
	var c net.Conn
	var err error
	if tc != nil {
		c, err = (&tls.Dialer{NetDialer: &d, Config: tc}).DialContext(ctx, "tcp", addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	c.SetDeadline(deadline)
	rc := &respConn{c: c, r: bufio.NewReader(c)}
	if pass != "" {
		args := []string{"AUTH", pass}
		if user != "" {
			args = []string{"AUTH", user, pass}
		}
		if _, err := rc.do(args...); err != nil {
			c.Close()
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	return rc, nil
}

func (rc *respConn) Close() error { return rc.c.Close() }

// ping answers nil when the plain-TCP server at addr replies PONG (after
// AUTH when password is set).
func ping(addr, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	c, err := dialRESP(ctx, addr, nil, "", password)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.ping()
}

// ping sends PING and wants PONG.
func (rc *respConn) ping() error {
	v, err := rc.do("PING")
	if err != nil {
		return err
	}
	if v != "PONG" {
		return fmt.Errorf("PING answered %v", v)
	}
	return nil
}

// do sends one command and reads its reply: string, int64, []any, nil, or
// a ServerError.
func (rc *respConn) do(args ...string) (any, error) {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	if _, err := rc.c.Write(b); err != nil {
		return nil, err
	}
	v, err := readReply(rc.r)
	if err != nil {
		return nil, err
	}
	if e, ok := v.(ServerError); ok {
		return nil, e
	}
	return v, nil
}

// readReply reads one RESP2 reply.
func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, fmt.Errorf("short reply %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return ServerError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readReply(r); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, errors.New("not a RESP reply: " + strconv.Quote(line))
}
