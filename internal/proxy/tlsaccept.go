package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/false-systems/rauta/internal/h1"
)

// HTTPS sockets accept here rather than in net/http's ServeTLS: each
// connection's goroutine completes the handshake and then serves the
// protocol ALPN chose on the same goroutine, HTTP/2 on sock.h2 and
// HTTP/1.1 on the HTTP/1.1 engine (h1conn.go), which hands what it does
// not serve to net/http as on clear-text sockets. Why: a TLS connection
// that carries one request (the handshake-heavy load of the tls cells,
// docs/performance.md round 13) spent as much CPU in net/http's
// per-connection and per-request work (its conn and response state, the
// background read goroutine of every request, the context per
// connection) as in the HTTP/1.1 engine's whole request.

// acceptTLS accepts the socket's connections until its listener closes.
func (s *Server) acceptTLS(sock *socket) error {
	return s.acceptLoop(sock, func(nc net.Conn) {
		s.workers.run(func() { s.serveTLS(sock, nc) })
	})
}

// serveTLS completes the handshake of nc and serves the connection.
func (s *Server) serveTLS(sock *socket, nc net.Conn) {
	if !sock.handshakes.add(nc) {
		nc.Close()
		return
	}
	// crypto/tls reads and writes through the engine's raw socket
	// (internal/h1's Socket): a loopback write outlasts sysmon's 20 µs
	// tick, and through net.Conn's blocking-syscall path it would hand the
	// P to another thread mid-write.
	tc := tls.Server(h1.NewSocket(nc), sock.tlsConfig)
	// The handshake is bounded as net/http bounds it, by the head's read
	// timeout; the engine and the HTTP/2 server set their own deadlines
	// after it.
	if d := s.opts.ReadHeaderTimeout; d > 0 {
		_ = nc.SetDeadline(time.Now().Add(d))
	}
	err := tc.HandshakeContext(context.Background())
	sock.handshakes.remove(nc)
	if err != nil {
		// Clear-text HTTP on the HTTPS port gets the answer net/http gives.
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		s.opts.Logger.Debug("TLS handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	if st.NegotiatedProtocol == "h2" {
		sock.h2.ServeConn(context.Background(), tc, sock.srv.Handler)
		return
	}
	c := newH1Conn(s, sock, tc)
	c.serverName = st.ServerName
	c.goneFn = tlsClientGone(nc)
	if !sock.h1.Add(&c.Conn) {
		tc.Close()
		return
	}
	c.Serve()
}

// looksLikeHTTP reports the first five bytes of a clear-text HTTP request
// where a TLS record header was expected (net/http's check).
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// tlsClientGone is the engine's client check (h1conn.clientGone) for a TLS
// connection, run on the TCP socket under it: a peek finds a reset, or
// the client's FIN with nothing before it. A client that closes politely
// sends a close_notify alert before its FIN, and in TLS 1.3 an alert
// cannot be told from a pipelined request without decrypting it, so when
// bytes are waiting the socket's TCP state decides: CLOSE_WAIT means the
// client sent its FIN, and is gone as net/http's read of a TLS client
// found it (a client that pipelines a request and half-closes is taken
// for gone too).
func tlsClientGone(nc net.Conn) func() error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return func() error { return nil }
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return func() error { return nil }
	}
	var gone bool
	check := func(fd uintptr) { gone = peerClosed(fd) }
	return func() error {
		if rc.Control(check) != nil || gone {
			return clientError{Err: errClientGone}
		}
		return nil
	}
}

// peerClosed peeks at a TCP socket without waiting (see tlsClientGone).
func peerClosed(fd uintptr) bool {
	var b [1]byte
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EINTR:
		return false
	case errno != 0 || n == 0:
		return true // reset, or the FIN with nothing before it
	}
	// Bytes wait: the first byte of struct tcp_info is the TCP state.
	var info [8]byte
	size := uint32(len(info))
	_, _, errno = syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
	return errno == 0 && info[0] == tcpCloseWait
}

// tcpCloseWait is Linux's TCP_CLOSE_WAIT (include/net/tcp_states.h): the
// peer has sent its FIN.
const tcpCloseWait = 8

// tlsConnKey is the context key under which an HTTPS socket's net/http
// server keeps the TLS connection of a connection the engine handed it.
type tlsConnKey struct{}

// tlsConnContext is the net/http ConnContext of HTTPS sockets: the engine
// hands net/http a TLS connection wrapped in a replayConn (the bytes it
// read first), which net/http does not see as TLS, so the handler finds
// the connection here to set the request's TLS state.
func tlsConnContext(ctx context.Context, c net.Conn) context.Context {
	if rc, ok := c.(*replayConn); ok {
		if tc, ok := rc.Conn.(*tls.Conn); ok {
			return context.WithValue(ctx, tlsConnKey{}, tc)
		}
	}
	return ctx
}

// setTLSState gives r the TLS state of its connection when net/http could
// not (tlsConnContext).
func setTLSState(r *http.Request) {
	if r.TLS != nil {
		return
	}
	if tc, ok := r.Context().Value(tlsConnKey{}).(*tls.Conn); ok {
		st := tc.ConnectionState()
		r.TLS = &st
	}
}

// handshakeSet holds the connections of an HTTPS socket still in their
// handshake, which no engine tracks yet, so that closing the socket ends
// them.
type handshakeSet struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// add registers nc; false once the socket is closed.
func (h *handshakeSet) add(nc net.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	if h.conns == nil {
		h.conns = map[net.Conn]struct{}{}
	}
	h.conns[nc] = struct{}{}
	return true
}

func (h *handshakeSet) remove(nc net.Conn) {
	h.mu.Lock()
	delete(h.conns, nc)
	h.mu.Unlock()
}

func (h *handshakeSet) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// close ends every handshake in progress and refuses new ones.
func (h *handshakeSet) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for nc := range h.conns {
		nc.Close()
	}
}
