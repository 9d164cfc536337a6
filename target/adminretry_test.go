package target

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestAdminRetry: a command safe to repeat is sent again on a new
// connection when the server drops the one it was on (a sentinel
// reconfiguring the node kills its normal clients: explore seed 17171,
// two overlapping failovers, the run not judged), at most three times; an
// error answer is final. The peer is a scripted RESP listener: what is
// under test is the harness's retry, not Redis.
func TestAdminRetry(t *testing.T) {
	for _, tt := range []struct {
		name      string
		drops     int    // connections dropped before an answer
		answer    string // the answer then
		wantConns int64
		wantErr   bool
	}{
		{"dropped once", 1, "+OK\r\n", 2, false},
		{"dropped twice", 2, "+OK\r\n", 3, false},
		{"dropped every time", 5, "+OK\r\n", 3, true},
		{"an error answer is final", 0, "-ERR no\r\n", 1, true},
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
						for range 3 { // *1, $4, PING: the whole command
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
			v, err := p.adminRetry(ctx, "PING")
			if (err != nil) != tt.wantErr {
				t.Errorf("adminRetry = %v, %v; want error %v", v, err, tt.wantErr)
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
