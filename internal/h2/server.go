// Package h2 is RAUTA's HTTP/2 server (RFC 9113). It serves the streams of
// one connection to an http.Handler, like net/http's bundled server, but
// writes differently: a handler encodes its frames into the connection's
// batch itself, and one writer goroutine per connection sends whatever has
// gathered in one write. net/http's server instead passes every frame
// through its serve loop and writes each response's HEADERS on a fresh
// goroutine, which made it half of the proxy's HTTP/2 cost.
package h2

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server holds the settings and the live connections of HTTP/2 serving.
// The zero value serves with the defaults below.
//
// Handlers must keep what net/http's documentation asks of them: neither
// use the ResponseWriter (its Header map included) nor keep the request
// after ServeHTTP returns. The server reuses both for a later request of
// the connection once the handler has returned: the Header map of
// responses always, and the request with its URL and header map when it
// came without a body. The request's context and body are never reused:
// a context kept past the handler stays ended.
type Server struct {
	// MaxConcurrentStreams is advertised to clients and enforced: a stream
	// counts until its handler returns, so resetting streams does not let a
	// client run more handlers than this. 0 means 250.
	MaxConcurrentStreams uint32
	// MaxHeaderBytes bounds a request's header list (names, values and 32
	// bytes per field, as RFC 9113 counts it); a larger one is answered
	// 431. 0 means 64 KiB (Envoy: 60 KiB).
	MaxHeaderBytes int
	// IdleTimeout closes a connection without open streams after this
	// long. 0 means never.
	IdleTimeout time.Duration
	// ReadTimeout bounds the wait for the client's preface and first
	// SETTINGS, and the time from a HEADERS frame to the end of its header
	// block: a block trickled in slow CONTINUATION frames holds the whole
	// connection, whose other frames cannot come between them (nginx's
	// client_header_timeout). Past it the connection closes with GOAWAY
	// ENHANCE_YOUR_CALM. 0 means 10 seconds.
	ReadTimeout time.Duration
	// BodyIdleTimeout ends a stream whose handler waits for request body
	// the client does not send: no DATA arrived, and no response data
	// left, for this long (nginx's client_body_timeout, 60 s). The
	// handler's Body.Read fails (an error matching
	// os.ErrDeadlineExceeded); the client gets 408 if the response had not
	// begun, RST_STREAM CANCEL otherwise, as Envoy's stream idle timeout
	// does. Checked by a sweep every quarter of the shorter of this and
	// SendStallTimeout, so a stream is cut within a quarter of the timeout
	// after it passes. 0 means 60 seconds.
	BodyIdleTimeout time.Duration
	// SendStallTimeout ends a stream whose handler waits to send while the
	// client keeps the stream's or the connection's flow-control window
	// at 0 and takes nothing for this long (CVE-2019-9517: a client holds
	// handlers and buffers with windows it never opens). The handler's
	// Write fails (matching os.ErrDeadlineExceeded) and the client gets
	// RST_STREAM CANCEL. Any data sent restarts the wait, so a slow reader
	// that makes progress is served. 0 means 60 seconds.
	SendStallTimeout time.Duration
	// WriteTimeout bounds one write of the connection's output to the
	// socket, for a client that stops reading it: past it the connection
	// closes and every handler's write fails (nginx's send_timeout,
	// 60 s). The deadline is re-armed once a quarter of it has passed
	// (at most a second), not for every write, so a blocked write is cut
	// after between three quarters of it and all of it. Unlike
	// net/http's WriteTimeout it does not bound a whole response: a long
	// download that keeps moving is never cut. 0 means 60 seconds.
	WriteTimeout time.Duration
	// Logger receives connection errors worth an operator's attention,
	// and at debug level each connection closed for abuse (limits.go).
	// nil means slog.Default().
	Logger *slog.Logger
	// Limits bound what one client may make the server queue, count and
	// wait for; the zero value holds the defaults (limits.go).
	Limits Limits

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool
	// draining is set by GoAway: connections get GOAWAY after their first
	// stream.
	draining atomic.Bool

	// bufs holds response body buffers (*[]byte, responseBuffer each):
	// a fresh 16 KiB per response was a tenth of the allocation work.
	bufs sync.Pool
	// outs holds large output buffers (*[]byte, bigOut each) of
	// connections that went idle.
	outs sync.Pool
}

// getBuffer returns a response body buffer. The pool holds pointers, and
// the response keeps the one it got to put back: taking the address of a
// slice to pool it allocated once per response.
func (s *Server) getBuffer() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, responseBuffer)
	return &b
}

func (s *Server) putBuffer(b *[]byte) { s.bufs.Put(b) }

// ServeConn serves c until the client closes it, a protocol error, the
// idle timeout or Shutdown. The client's preface is read here, so c is a
// TLS connection that negotiated "h2" or a cleartext connection with prior
// knowledge. Each request runs h on its own goroutine, with a context
// derived from ctx that ends when the stream does.
func (s *Server) ServeConn(ctx context.Context, c net.Conn, h http.Handler) {
	sc := newConn(s, c, h)
	if !s.track(sc, true) {
		c.Close()
		return
	}
	defer s.track(sc, false)
	sc.serve(ctx)
}

// Shutdown sends GOAWAY on every connection: no new streams are accepted
// and each connection closes once its open streams finish. It does not
// wait; http.Server.Shutdown, which calls it through RegisterOnShutdown,
// waits for ServeConn to return.
func (s *Server) Shutdown() {
	s.mu.Lock()
	s.shutdown = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.goAway()
	}
}

// GoAway asks every client to move to new connections while the server
// keeps serving, as a process about to stop does: each connection gets the
// two GOAWAY frames of RFC 9113 6.8 (see warnGoAway) and closes once its
// streams finish. Connections opened afterwards get them after their
// first stream. Shutdown may follow at any time.
func (s *Server) GoAway() {
	s.draining.Store(true)
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		c.warnGoAway()
		c.mu.Unlock()
	}
}

// Conns returns the number of open connections.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Drain waits until every connection has closed, and closes the ones still
// open when ctx ends. It polls, as http.Server.Shutdown does.
func (s *Server) Drain(ctx context.Context) {
	wait := time.Millisecond
	for {
		s.mu.Lock()
		n := len(s.conns)
		if ctx.Err() != nil {
			for c := range s.conns {
				c.nc.Close()
			}
		}
		s.mu.Unlock()
		if n == 0 || ctx.Err() != nil {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// track adds or removes a connection; adding fails after Shutdown.
func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.shutdown {
		return false
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) maxStreams() uint32 {
	if s.MaxConcurrentStreams == 0 {
		return 250
	}
	return s.MaxConcurrentStreams
}

func (s *Server) maxHeaderBytes() uint32 {
	if s.MaxHeaderBytes <= 0 {
		return 64 << 10
	}
	return uint32(s.MaxHeaderBytes)
}

func (s *Server) readTimeout() time.Duration {
	if s.ReadTimeout <= 0 {
		return 10 * time.Second
	}
	return s.ReadTimeout
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}
