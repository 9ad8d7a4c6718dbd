package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// h1conns is the set of connections the HTTP/1.1 engine serves on one
// socket, so a graceful close can end idle ones at once and wait for busy
// ones, as net/http's Shutdown does for its own.
type h1conns struct {
	mu    sync.Mutex
	conns map[*h1conn]struct{}
	// state is h1Open, h1Draining or h1Closing; one atomic, as every
	// response reads it.
	state atomic.Uint32
}

// The states of an h1conns: serving; draining (the process is about to
// stop: every response is the connection's last, idle keep-alive
// connections are closed, new connections still serve one request);
// closing (the listener is closed: idle connections end at once).
const (
	h1Open uint32 = iota
	h1Draining
	h1Closing
)

func newH1Conns() *h1conns { return &h1conns{conns: map[*h1conn]struct{}{}} }

// add registers c; false once the socket is closing.
func (s *h1conns) add(c *h1conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() == h1Closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *h1conns) remove(c *h1conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// drain makes every response the connection's last (Connection: close).
func (s *h1conns) drain() { s.state.CompareAndSwap(h1Open, h1Draining) }

// closeIdle closes the idle connections that served a request; one that
// has not served one yet keeps waiting for its first. Called a while
// after drain, it finds only connections idle since the drain began: any
// request meanwhile was answered with Connection: close.
func (s *h1conns) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() && c.served.Load() {
			c.nc.Close()
		}
	}
}

// len returns the number of connections.
func (s *h1conns) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// shutdown closes idle connections until none is left, polling like
// net/http does, and closes the rest when ctx ends. Busy connections see
// closing after their response, answer it with Connection: close and end.
func (s *h1conns) shutdown(ctx context.Context) {
	s.state.Store(h1Closing)
	wait := time.Millisecond
	for {
		s.mu.Lock()
		for c := range s.conns {
			if c.idle.Load() {
				c.nc.Close()
			}
		}
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			s.mu.Lock()
			for c := range s.conns {
				c.nc.Close()
			}
			s.mu.Unlock()
			return
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// handoffListener passes connections from the HTTP/1.1 engine to the
// socket's net/http server, which serves everything the engine does not:
// h2c, upgrades, and any request outside the engine's strict subset.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// give hands c to the net/http server, or closes it once the listener is
// closed.
func (l *handoffListener) give(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

// replayConn reads bytes already taken from the connection before reading
// on from it: those the HTTP/1.1 engine read but did not serve, for
// net/http, and a TLS ClientHello read to route, for crypto/tls.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// acceptH1 accepts connections for the HTTP/1.1 engine until the listener
// closes.
func (s *Server) acceptH1(sock *socket) error {
	return s.acceptLoop(sock, func(nc net.Conn) {
		c := newH1Conn(s, sock, nc)
		if !sock.h1.add(c) {
			nc.Close()
			return
		}
		go c.serve()
	})
}

// acceptLoop hands every connection the socket accepts to serve (which
// must not block) until the listener closes, backing off on errors such as
// running out of file descriptors.
func (s *Server) acceptLoop(sock *socket, serve func(net.Conn)) error {
	var delay time.Duration
	for {
		nc, err := sock.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.opts.Logger.Warn("accept failed; retrying", "addr", sock.ln.Addr().String(), "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		serve(nc)
	}
}
