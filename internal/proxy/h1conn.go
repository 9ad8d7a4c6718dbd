package proxy

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/http2"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/upstream"
)

// h1conn is one client connection of the HTTP/1.1 engine (internal/h1's
// Conn, which runs its request loop) with what routing and forwarding keep
// per connection; it is the Conn's Handler (ServeRequest, h1forward.go).
type h1conn struct {
	h1.Conn
	s    *Server
	sock *socket

	clientIP string
	// client and local are the connection's addresses for the request
	// timing records (zero when those are off), read once, not per request.
	client, local netip.AddrPort
	outResp       h1.Fields // the response fields sent to the client
	// fx is the outbound request and its backend exchange while a
	// request is forwarded, nil otherwise (h1exchange).
	fx *h1exchange
	// goneFn is clientGone, bound once: the check a backend's waits run
	// (tlsClientGone on TLS connections).
	goneFn func() error
	// serverName is the TLS server name (SNI) of an HTTPS connection, for
	// the misdirected-request check; empty on clear text.
	serverName string
	// connNo and reqNo number request IDs the engine makes; idBuf and
	// tpBuf hold the current request's made X-Request-Id and outbound
	// traceparent, which strings view (no allocation per request).
	connNo, reqNo uint64
	idBuf, tpBuf  []byte
}

func newH1Conn(s *Server, sock *socket, nc net.Conn) *h1conn {
	c := &h1conn{s: s, sock: sock}
	c.Init(sock.h1cfg, sock.h1, nc, c)
	c.goneFn = c.clientGone
	c.clientIP = clientIP(nc.RemoteAddr().String())
	if s.timings != nil {
		c.client, c.local = addrPortOf(nc.RemoteAddr()), addrPortOf(nc.LocalAddr())
	}
	c.connNo = s.ids.conn()
	return c
}

// h1Config is the engine's configuration for sock's connections.
func (s *Server) h1Config(sock *socket) *h1.Config {
	return &h1.Config{
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
		MaxHeaderFields:   s.opts.MaxHeaderFields,
		IdleTimeout:       s.opts.IdleTimeout,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ClientBodyTimeout: s.opts.ClientBodyTimeout,
		ClientSendTimeout: s.opts.ClientSendTimeout,
		Buffers:           &s.fwd.connBufs,
		RelayBuffers:      &s.fwd.relayBufs,
		Date:              &s.date,
		Handoff:           func(nc net.Conn, pending []byte) { handoff(sock, nc, pending) },
	}
}

// handoff serves a connection the engine does not, with the bytes it read
// and did not serve: one starting with the HTTP/2 preface (h2c by prior
// knowledge, as gRPC clients speak) on the socket's HTTP/2 server on this
// goroutine, anything else on its net/http server.
func handoff(sock *socket, nc net.Conn, pending []byte) {
	if bytes.HasPrefix(pending, []byte(http2.ClientPreface)) {
		sock.h2.ServeConn(context.Background(), h2cConn(nc, pending), sock.srv.Handler)
		return
	}
	rc := &replayConn{Conn: nc, pending: pending}
	sock.handoff.give(rc)
}

// h2cConn is an h2c connection for the HTTP/2 server, read and written
// with raw system calls (h1.Socket), as TLS connections are below
// crypto/tls (tlsaccept.go): through net.Conn a loopback write enters the
// runtime as a blocking call, and sysmon hands the P to another thread
// meanwhile (docs/performance.md, round 27).
func h2cConn(nc net.Conn, pending []byte) net.Conn {
	return &replayConn{Conn: h1.NewSocket(nc), pending: pending}
}

// errClientGone: the client closed or reset its connection while its
// backend was being waited on.
var errClientGone = upstream.ErrClientGone

// clientGone is the check a backend's waits run (waitBound.check): a peek
// at the client's socket, which finds EOF or an error once the client has
// closed or reset it. Bytes the client pipelined, buffered or still in
// the socket, read as a client still there.
func (c *h1conn) clientGone() error {
	errno, n := c.In.Sock.Peek()
	if errno == syscall.EAGAIN || n > 0 {
		return nil
	}
	return clientError{Err: errClientGone}
}
