package proxy

import (
	"errors"
	"net"
	"sync"
	"time"
)

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

// CloseWrite half-closes the connection when it can (a TCP socket): a
// tunnel passes a peer's EOF on through it.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
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
		if !sock.h1.Add(&c.Conn) {
			nc.Close()
			return
		}
		s.workers.run(c.Serve)
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
