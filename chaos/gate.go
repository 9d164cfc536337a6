package chaos

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Limiter is a proxy that can answer for Redis, the way Upstash does when a
// plan's limits are hit. The embedded proxy is one; an external Toxiproxy is
// not (a toxic there cannot write to the client).
type Limiter interface {
	// SetQuota answers every command past the next limit ones with
	// QuotaError instead of forwarding it; 0 lifts the quota.
	SetQuota(limit int)
	// SetConnLimit answers every command of a connection opened while
	// limit connections are open with ConnLimitError; 0 lifts the limit.
	// Open connections are not dropped.
	SetConnLimit(limit int)
	// SetHandshakeStall holds every new connection without an answer
	// (a TLS handshake never completes); off, the held ones are closed.
	SetHandshakeStall(on bool)
}

// QuotaError is the reply past the quota (Upstash's text).
func QuotaError(limit, usage int) string {
	return fmt.Sprintf("ERR max requests limit exceeded. Limit: %d, Usage: %d", limit, usage)
}

// ConnLimitError is the reply on a connection past the connection limit.
const ConnLimitError = "ERR max concurrent connections exceeded"

// gate is a RESP-aware TCP proxy between the Toxiproxy proxy and Redis: a
// toxic sees one direction only and cannot answer the client, so the
// Upstash-like limits live here. It forwards bytes as they are until a
// limit is set. TLS connections (first byte 0x16) pass through untouched:
// limits need plain RESP.
type gate struct {
	ln       net.Listener
	upstream string

	mu        sync.Mutex
	quota     int // 0: none
	used      int // commands forwarded since the quota was set
	connLimit int // 0: none
	admitted  int // open connections let through
	stall     bool
	held      map[net.Conn]struct{} // stalled connections
	conns     map[net.Conn]struct{} // every open connection, both sides
	closed    bool
	wg        sync.WaitGroup

	// upstash, when set, decides every command (upstash-sim): the quota
	// and the commands/s cap count what the server executed, and a
	// request larger than its limit is refused. Clients must then speak
	// TLS, terminated here (tlsConf).
	upstash *upstashLimits
	tlsConf *tls.Config
}

func newGate(upstream string) (*gate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &gate{ln: ln, upstream: upstream, held: map[net.Conn]struct{}{}, conns: map[net.Conn]struct{}{}}
	g.wg.Add(1)
	go g.accept()
	return g, nil
}

func (g *gate) addr() string { return g.ln.Addr().String() }

func (g *gate) SetQuota(limit int) {
	if g.upstash != nil {
		g.upstash.setQuota(limit)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.quota, g.used = limit, 0
}

func (g *gate) SetConnLimit(limit int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.connLimit = limit
}

func (g *gate) SetHandshakeStall(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stall = on
	if !on {
		for c := range g.held {
			c.Close()
		}
	}
}

func (g *gate) close() error {
	g.mu.Lock()
	g.closed = true
	err := g.ln.Close()
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
	return err
}

// track registers c for close; false when the gate is closed.
func (g *gate) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.conns[c] = struct{}{}
	return true
}

func (g *gate) untrack(c net.Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	c.Close()
}

func (g *gate) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		if !g.track(c) {
			c.Close()
			return
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			defer g.untrack(c)
			g.serve(c)
		}()
	}
}

// admission is what happens to a new connection.
type admission int

const (
	admit admission = iota
	hold
	reject
)

func (g *gate) admit(c net.Conn) admission {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.stall:
		g.held[c] = struct{}{}
		return hold
	case g.connLimit > 0 && g.admitted >= g.connLimit:
		return reject
	}
	g.admitted++
	return admit
}

func (g *gate) serve(client net.Conn) {
	if g.tlsConf != nil {
		tc := tls.Server(client, g.tlsConf)
		tc.SetDeadline(time.Now().Add(handshakeTimeout))
		if err := tc.Handshake(); err != nil {
			return // TLS only: a plain client, or one that distrusts the CA
		}
		tc.SetDeadline(time.Time{})
		client = tc
	}
	cr := bufio.NewReader(client)
	switch g.admit(client) {
	case hold:
		io.Copy(io.Discard, client) // until the client gives up or the stall ends
		g.mu.Lock()
		delete(g.held, client)
		g.mu.Unlock()
		return
	case reject:
		first, ok := g.refuse(client, cr)
		if !ok {
			return
		}
		// Admitted once the limit is lifted, from the command that found
		// it lifted on.
		cr = bufio.NewReader(io.MultiReader(bytes.NewReader(first), cr))
	}
	defer func() {
		g.mu.Lock()
		g.admitted--
		g.mu.Unlock()
	}()
	up, err := net.Dial("tcp", g.upstream)
	if err != nil {
		return
	}
	if !g.track(up) {
		up.Close()
		return
	}
	defer g.untrack(up)
	if b, err := cr.Peek(1); err != nil || b[0] == 0x16 && g.tlsConf == nil { // TLS record: opaque
		pipe(client, cr, up, bufio.NewReader(up))
		return
	}
	s := &session{g: g, client: client, up: up}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.replies(bufio.NewReader(up))
		client.Close()
	}()
	s.commands(cr)
	up.Close()
	<-done
}

// pipe copies both ways until either side ends.
func pipe(client net.Conn, cr io.Reader, up net.Conn, ur io.Reader) {
	done := make(chan struct{})
	go func() {
		io.Copy(client, ur)
		client.Close()
		close(done)
	}()
	io.Copy(up, cr)
	up.Close()
	<-done
}

// refuse answers every command of a connection opened past the connection
// limit, until the limit is lifted: then it counts the connection as
// admitted and returns the command it read (ok), which the connection is
// served from. ok is false when the connection ended first.
func (g *gate) refuse(client net.Conn, r *bufio.Reader) (first []byte, ok bool) {
	reply := []byte("-" + ConnLimitError + "\r\n")
	var buf []byte
	for {
		var name string
		var err error
		buf, name, err = readCommand(r, buf[:0])
		if err != nil {
			return nil, false
		}
		if name == "" {
			continue
		}
		g.mu.Lock()
		lifted := g.connLimit == 0
		if lifted {
			g.admitted++
		}
		g.mu.Unlock()
		if lifted {
			return buf, true
		}
		if _, err := client.Write(reply); err != nil {
			return nil, false
		}
	}
}

// session is one admitted plain connection. Replies to the client keep the
// order of the commands: an answer the gate makes for Redis waits until
// every command before it has its reply from Redis.
type session struct {
	g      *gate
	client net.Conn
	up     net.Conn

	mu sync.Mutex
	// queue holds, in command order, nil for a command forwarded to Redis
	// and awaiting its reply, or the gate's own reply to send after those
	// before it.
	queue      [][]byte
	subscribed bool // a (P|S)SUBSCRIBE family command was sent (RESP2 pushes)
	raw        bool // the stream stopped parsing: bytes flow as they are
}

// subscribeFamily are the commands whose answers are pushes, not replies.
var subscribeFamily = map[string]bool{
	"SUBSCRIBE": true, "PSUBSCRIBE": true, "SSUBSCRIBE": true,
	"UNSUBSCRIBE": true, "PUNSUBSCRIBE": true, "SUNSUBSCRIBE": true,
}

// pushKinds are the first elements of RESP2 arrays that are pushes on a
// subscribed connection.
var pushKinds = map[string]bool{
	"message": true, "pmessage": true, "smessage": true,
	"subscribe": true, "psubscribe": true, "ssubscribe": true,
	"unsubscribe": true, "punsubscribe": true, "sunsubscribe": true,
}

// commands reads the client's commands and forwards or answers each.
func (s *session) commands(r *bufio.Reader) {
	var buf []byte
	for {
		var name string
		var err error
		buf, name, err = readCommand(r, buf[:0])
		if err == errProtocol {
			s.mu.Lock()
			s.raw = true
			s.mu.Unlock()
			if _, err := s.up.Write(buf); err == nil {
				io.Copy(s.up, r)
			}
			return
		}
		if err != nil {
			return
		}
		if reply := s.g.charge(name, len(buf)); reply != nil {
			if s.answer(reply) != nil {
				return
			}
			continue
		}
		s.mu.Lock()
		if subscribeFamily[name] {
			s.subscribed = true
		} else if name != "" && !s.raw {
			s.queue = append(s.queue, nil)
		}
		s.mu.Unlock()
		if _, err := s.up.Write(buf); err != nil {
			return
		}
	}
}

// charge counts one command (size bytes) against the quota; past it, it
// returns the reply the gate makes instead of forwarding.
func (g *gate) charge(name string, size int) []byte {
	if name == "" {
		return nil
	}
	if g.upstash != nil {
		return g.upstash.charge(size)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.quota <= 0 {
		return nil
	}
	if g.used >= g.quota {
		return []byte("-" + QuotaError(g.quota, g.used) + "\r\n")
	}
	g.used++
	return nil
}

// answer sends the gate's reply now, or queues it behind pending replies.
func (s *session) answer(reply []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		s.queue = append(s.queue, reply)
		return nil
	}
	_, err := s.client.Write(reply)
	return err
}

// replies reads Redis's replies and passes them on in order.
func (s *session) replies(r *bufio.Reader) {
	var buf []byte
	for {
		var first string
		var err error
		buf, first, err = readFrame(r, buf[:0], 0)
		if err == errProtocol {
			s.mu.Lock()
			s.raw = true
			s.queue = nil
			_, err = s.client.Write(buf)
			s.mu.Unlock()
			if err == nil {
				io.Copy(s.client, r)
			}
			return
		}
		if err != nil {
			return
		}
		if s.reply(buf, first) != nil {
			return
		}
	}
}

// reply writes one frame from Redis, then any gate replies it unblocks.
func (s *session) reply(frame []byte, first string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.client.Write(frame); err != nil {
		return err
	}
	push := frame[0] == '>' || (s.subscribed && frame[0] == '*' && pushKinds[strings.ToLower(first)])
	if push || len(s.queue) == 0 {
		return nil
	}
	s.queue = s.queue[1:]
	for len(s.queue) > 0 && s.queue[0] != nil {
		if _, err := s.client.Write(s.queue[0]); err != nil {
			return err
		}
		s.queue = s.queue[1:]
	}
	return nil
}
