package proxy

import (
	"context"
	"crypto/tls"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/router"
)

// Stream listeners relay connections. TLS passthrough listeners
// (ir.ProtocolTLS) serve TLSRoutes: the ClientHello's server name picks the
// route as a Host picks an HTTPRoute (the same compiled router.Table); TLS
// ends at the backend, the gateway sees no plaintext and holds no key. TCP
// listeners (ir.ProtocolTCP) serve TCPRoutes: the first route takes every
// connection. Then a backend endpoint is dialled, what was read (the hello)
// is replayed to it and bytes are copied both ways until both sides close or
// the connection is idle for Options.StreamIdleTimeout.

// streamConns tracks a stream socket's connections, so a graceful
// close can wait for them and then cut what is left.
type streamConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  chan struct{} // closed when conns empties after closing began
	shut  bool
	// max bounds conns (Options.MaxStreamConns).
	max int
	// The socket's counters (streamCollector exports them).
	accepted, refused, received, sent atomic.Uint64
}

func newStreamConns(max int) *streamConns {
	return &streamConns{conns: map[net.Conn]struct{}{}, max: max}
}

// add registers c; false once closing began or with max connections
// already open (counted as refused).
func (sc *streamConns) add(c net.Conn) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.shut {
		return false
	}
	if len(sc.conns) >= sc.max {
		sc.refused.Add(1)
		return false
	}
	sc.conns[c] = struct{}{}
	sc.accepted.Add(1)
	return true
}

func (sc *streamConns) remove(c net.Conn) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	delete(sc.conns, c)
	if sc.shut && len(sc.conns) == 0 && sc.done != nil {
		close(sc.done)
		sc.done = nil
	}
}

func (sc *streamConns) len() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.conns)
}

// shutdown waits until every connection ended or ctx ends, then closes
// what is left and returns how many that were.
func (sc *streamConns) shutdown(ctx context.Context) int {
	sc.mu.Lock()
	sc.shut = true
	var done chan struct{}
	if len(sc.conns) > 0 {
		done = make(chan struct{})
		sc.done = done
	}
	sc.mu.Unlock()
	if done == nil {
		return 0
	}
	select {
	case <-done:
		return 0
	case <-ctx.Done():
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	n := len(sc.conns)
	for c := range sc.conns {
		c.Close()
	}
	return n
}

// acceptStreams is a stream socket's accept loop.
func (s *Server) acceptStreams(sock *socket) error {
	return s.acceptLoop(sock, func(c net.Conn) {
		if !sock.streams.add(c) {
			c.Close()
			return
		}
		go func() {
			defer sock.streams.remove(c)
			defer c.Close()
			s.serveStream(sock, c)
		}()
	})
}

// serveStream routes one connection (by its ClientHello on TLS
// listeners) and relays it.
func (s *Server) serveStream(sock *socket, c net.Conn) {
	lc := sock.cfg.Load()
	log := s.opts.Logger
	var hello []byte
	var sni string
	if lc.protocol == ir.ProtocolTLS {
		c.SetReadDeadline(time.Now().Add(s.opts.ReadHeaderTimeout)) //nolint:errcheck // a failed read reports it
		var err error
		hello, sni, err = readClientHello(c)
		if err != nil {
			log.Debug("passthrough: no usable ClientHello", "listener", lc.name, "client", c.RemoteAddr().String(), "err", err)
			return
		}
		c.SetReadDeadline(time.Time{}) //nolint:errcheck // as above
	}
	rreq := router.Request{Host: sni, Path: "/", Method: "GET", ClientIP: clientIP(c.RemoteAddr().String())}
	vh := lc.table.VirtualHost(sni)
	var rt *router.Route
	if vh != nil {
		rt = lc.table.Match(&rreq)
	}
	if rt == nil {
		log.Debug("stream: no route", "listener", lc.name, "sni", sni)
		return
	}
	client := c
	if vh.TerminateTLS {
		// The hello was read to route; crypto/tls reads it again.
		tc := tls.Server(&replayConn{Conn: c, pending: hello}, sock.streamTLS)
		hello = nil
		c.SetDeadline(time.Now().Add(s.opts.ReadHeaderTimeout)) //nolint:errcheck // the handshake reports it
		if err := tc.Handshake(); err != nil {
			log.Debug("stream: TLS handshake failed", "listener", lc.name, "sni", sni, "err", err)
			return
		}
		c.SetDeadline(time.Time{}) //nolint:errcheck // as above
		client = tc
	}
	b := rt.PickBackend(rand.Uint64())
	if b == nil || b.Invalid {
		// The spec: an invalid backend's share of connections is
		// rejected.
		log.Debug("stream: backend invalid", "route", rt.Name)
		return
	}
	ep := b.Pick(&rreq)
	if ep == nil {
		log.Debug("stream: backend has no ready endpoint", "route", rt.Name, "backend", b.Name)
		return
	}
	var f failover
	var ex exchange
	f.begin(b, &rreq, ep, &ex)
	defer f.end(&ex)
	addr := ep.Addr
	var up net.Conn
	var err error
	for {
		up, err = net.DialTimeout("tcp", addr, s.opts.DialTimeout)
		if err == nil {
			break
		}
		// Nothing was sent: any connect failure may move to another
		// endpoint (once, within the retry budget), as for HTTP.
		next, moved := f.next(s.metrics, err, true, true, time.Time{})
		if !moved {
			s.metrics.connectErrors.WithLabelValues(b.Name).Inc()
			log.Debug("stream: backend unreachable", "route", rt.Name, "endpoint", addr, "err", err)
			return
		}
		addr = next
	}
	defer up.Close()
	tunnel(tunnelEnd{conn: client, pending: hello}, tunnelEnd{conn: up}, s.opts.StreamIdleTimeout, &s.fwd.bufs,
		&sock.streams.received, &sock.streams.sent)
}
