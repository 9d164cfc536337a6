package target

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestAdminRetry: a command safe to repeat is sent again on a new
// connection when the server drops the one it was on (a sentinel
// reconfiguring the node kills its normal clients: explore seed 17171,
// two overlapping failovers, the run not judged), at most three times; an
// error answer is final. CONFIG SET and GET are such commands: a
// tls_untrusted drawn at the same instant as a maxmemory switched the
// server's TLS and killed its normal clients, the maxmemory's CONFIG SET
// among them (explore seed 20202, run 8, not judged). The peer is a
// scripted RESP listener: what is under test is the harness's retry, not
// Redis.
func TestAdminRetry(t *testing.T) {
	for _, tt := range []struct {
		name      string
		drops     int    // connections dropped before an answer
		answer    string // the answer then
		wantConns int64
		wantErr   bool
		call      func(context.Context, *Process) error
	}{
		{"dropped once", 1, "+OK\r\n", 2, false, adminPing},
		{"dropped twice", 2, "+OK\r\n", 3, false, adminPing},
		{"dropped every time", 5, "+OK\r\n", 3, true, adminPing},
		{"an error answer is final", 0, "-ERR no\r\n", 1, true, adminPing},
		{"config set dropped once", 1, "+OK\r\n", 2, false, func(ctx context.Context, p *Process) error {
			return p.ConfigSet(ctx, "maxmemory", "1048576")
		}},
		{"config get dropped twice", 2, "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n", 3, false, func(ctx context.Context, p *Process) error {
			_, err := p.ConfigGet(ctx, "maxmemory")
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var conns atomic.Int64
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					n := conns.Add(1)
					go func() {
						defer c.Close()
						r := bufio.NewReader(c)
						head, err := r.ReadString('\n') // *<n>, then $<len> and the word, n times
						words, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "*")))
						if err != nil || words < 1 {
							return
						}
						for range 2 * words {
							if _, err := r.ReadString('\n'); err != nil {
								return
							}
						}
						if n > int64(tt.drops) {
							c.Write([]byte(tt.answer))
						}
					}()
				}
			}()
			p := &Process{port: ln.Addr().(*net.TCPAddr).Port}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = tt.call(ctx, p)
			if (err != nil) != tt.wantErr {
				t.Errorf("error %v; want error %v", err, tt.wantErr)
			}
			if tt.wantErr && tt.drops == 0 && !errors.As(err, new(ServerError)) {
				t.Errorf("error %v; want the server's answer", err)
			}
			if got := conns.Load(); got != tt.wantConns {
				t.Errorf("%d connections; want %d", got, tt.wantConns)
			}
		})
	}
}

func adminPing(ctx context.Context, p *Process) error {
	_, err := p.adminRetry(ctx, "PING")
	return err
}
