package proxy

import (
	"context"
	"net"
	"os"
	"syscall"

	"github.com/false-systems/rauta/internal/h1"
)

// listenTCP opens a TCP listener's socket: Options.Listen's when set (the
// mesh proxy's connections, handed over one by one), else a socket bound
// to addr.
func (s *Server) listenTCP(addr string) (net.Listener, error) {
	if s.opts.Listen != nil {
		return s.opts.Listen(addr)
	}
	lc := net.ListenConfig{KeepAlive: -1, Control: listenKeepAlive}
	return lc.Listen(context.Background(), "tcp", addr)
}

// TCP keep-alive of client connections: Go's defaults for accepted
// connections (net.ListenConfig's KeepAlive zero), so a client that
// vanished without a FIN or RST is found after about 2.5 minutes.
const (
	keepAliveIdle     = 15 // seconds before the first probe
	keepAliveInterval = 15 // seconds between probes
	keepAliveProbes   = 9  // probes unanswered before the connection is dropped
)

// listenKeepAlive sets TCP keep-alive on the listening socket, which
// Linux copies to every connection it accepts (tcp_create_openreq_child),
// instead of Go setting it on each accepted connection: four setsockopt
// calls per connection, of the 20 system calls a resumed TLS 1.2
// connection through the proxy made (docs/performance.md, round 21).
func listenKeepAlive(_, _ string, rc syscall.RawConn) error {
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		for _, o := range [...]struct{ level, opt, v int }{
			{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
			{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, keepAliveIdle},
			{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, keepAliveInterval},
			{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAliveProbes},
		} {
			if e := syscall.SetsockoptInt(int(fd), o.level, o.opt, o.v); e != nil {
				err = os.NewSyscallError("setsockopt", e)
				return
			}
		}
	}); cerr != nil {
		return cerr
	}
	return err
}

// ConnServer is a listener from Options.Listen whose connections are
// accepted elsewhere (the mesh proxy's): the HTTP/1.1 engine gives it the
// function that serves one connection, and the listener serves each on
// the goroutine that accepted it, instead of waking the engine's accept
// goroutine, which would start a goroutine of its own for it (two
// goroutine switches and a new goroutine per connection saved). Accept
// still reports the listener's end, and passes on what the listener gives
// it before ServeWith.
type ConnServer interface {
	net.Listener
	// ServeWith is called once, before the engine starts accepting;
	// serve returns when the connection is done. pending are bytes the
	// listener already read from the connection (the mesh proxy's
	// protocol detection): the engine serves them first, as if read from
	// the socket. serve copies them before it reads the connection, so
	// the caller may keep them only for the call; at most
	// MaxPendingBytes, more closes the connection.
	ServeWith(serve func(nc net.Conn, pending []byte))
}

// MaxPendingBytes is the most a ConnServer may pass as pending: the
// HTTP/1.1 engine's read buffer, which they are copied into.
const MaxPendingBytes = h1.ConnBufferSize

// serveHandedOver gives a ConnServer listener of the HTTP/1.1 engine the
// function serving a connection as acceptH1 does, on the caller's
// goroutine.
func (s *Server) serveHandedOver(sock *socket) {
	cs, ok := sock.ln.(ConnServer)
	if !ok || sock.h1 == nil {
		return
	}
	cs.ServeWith(func(nc net.Conn, pending []byte) {
		c := newH1Conn(s, sock, nc)
		if len(pending) > len(c.In.Buf) {
			nc.Close()
			return
		}
		// The engine's read buffer starts with the bytes read for it:
		// a request that came whole is served without a read.
		c.In.W = copy(c.In.Buf, pending)
		if !sock.h1.Add(&c.Conn) {
			nc.Close()
			return
		}
		c.Serve()
	})
}
