package proxy

import (
	"context"
	"time"
)

// Drain prepares a stop without refusing anyone: the listeners keep
// accepting and serving, but every client is told to go elsewhere, so that
// when Run's context ends (some seconds later) few connections are left.
// HTTP/1.1 responses carry Connection: close and end their connection,
// idle keep-alive connections are closed after idleGrace (a new connection
// still gets its first request served), HTTP/2 connections get GOAWAY (RFC 9113 6.8: the
// largest stream id first, the real last one a second later) and close
// once their streams finish. WebSocket and other upgraded connections are
// left alone until Run's shutdown. Sockets bound later by Apply drain too.
// Drain is for a process about to stop; there is no undo.
func (s *Server) Drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return
	}
	s.draining = true
	for _, sock := range s.sockets {
		s.drainSocket(sock)
	}
}

// drain tells the socket's clients to go elsewhere (see Server.Drain).
//
// HTTP/1.1 keep-alive connections are not closed at once: a busy client
// is usually between two requests, and closing then would reset a request
// already on the wire (which clients retry only when it is idempotent).
// Every response says Connection: close from now on, so busy connections
// end after their next request; idleGrace later, the connections still
// idle have been idle since the drain began, and those are closed.
func (s *Server) drainSocket(sock *socket) {
	sock.draining.Store(true)
	if sock.streams != nil || sock.udp != nil {
		return // relayed connections (TLS, TCP) and flows (UDP): no protocol to tell a client in
	}
	if sock.h1 != nil {
		sock.h1.Drain()
	}
	sock.h2.GoAway()
	// x/net's GOAWAY for connections upgraded to h2c; signal serves no
	// connection itself, so this returns at once.
	_ = sock.upgraded.signal.Shutdown(context.Background())
	time.AfterFunc(s.idleGrace, func() {
		if sock.h1 != nil {
			sock.h1.CloseIdle()
		}
		// net/http: closes its idle connections (and answers with
		// Connection: close, as the handler already does).
		sock.srv.SetKeepAlivesEnabled(false)
	})
}

// idleGrace is how long a keep-alive connection idle when a drain begins
// stays open, so that a request its client is sending right then is
// answered (with Connection: close) rather than reset.
const idleGrace = time.Second

// conns returns the number of client connections the socket serves.
func (sock *socket) conns() int {
	if sock.udp != nil {
		return sock.udp.len()
	}
	if sock.streams != nil {
		return sock.streams.len()
	}
	n := int(sock.httpConns.Load()) + sock.h2.Conns() + sock.upgraded.len() + sock.handshakes.len()
	if sock.h1 != nil {
		n += sock.h1.Len()
	}
	return n
}

// Conns returns the number of client connections open on the served
// listeners, WebSocket and other upgraded connections included.
func (s *Server) Conns() int {
	s.mu.Lock()
	n := 0
	for _, sock := range s.sockets {
		n += sock.conns()
	}
	s.mu.Unlock()
	return n + s.fwd.upgradedConns()
}

// Cut returns the number of client connections that were still open when
// a graceful close (Run's shutdown, a removed listener) reached
// ShutdownTimeout, and were closed: 0 means every request finished.
func (s *Server) Cut() int { return int(s.cut.Load()) }
