package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
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
	if len(hello) > 0 {
		if _, err := up.Write(hello); err != nil {
			return
		}
	}
	relay(client, up, s.opts.StreamIdleTimeout, &sock.streams.received, &sock.streams.sent)
}

// relay copies bytes both ways until both directions ended, a write fails,
// or nothing moved either way for idle. A direction that ends (EOF) is
// passed on as a half-close, so protocols that finish sending before they
// stop reading keep working.
// received and sent count the bytes relayed from and to the client.
func relay(client, backend net.Conn, idle time.Duration, received, sent *atomic.Uint64) {
	var act activity
	act.touch()
	var wg sync.WaitGroup
	var failed atomic.Bool
	copyDir := func(dst, src net.Conn, moved *atomic.Uint64) {
		defer wg.Done()
		if err := copyIdle(dst, src, &act, idle, moved); err != nil {
			failed.Store(true)
			// Unblock the other direction.
			client.Close()
			backend.Close()
			return
		}
		if tc, ok := dst.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite() //nolint:errcheck // the other direction's read reports a broken peer
		}
	}
	wg.Add(2)
	go copyDir(backend, client, received)
	copyDir(client, backend, sent)
	wg.Wait()
}

// activity is the time either direction last moved bytes.
type activity struct{ last atomic.Int64 }

func (a *activity) touch()                 { a.last.Store(time.Now().UnixNano()) }
func (a *activity) idleFor() time.Duration { return time.Since(time.Unix(0, a.last.Load())) }
func (a *activity) deadline(idle time.Duration) time.Time {
	return time.Unix(0, a.last.Load()).Add(idle)
}

// relayBuffer is each direction's copy buffer: 32 KiB per connection,
// allocated once per connection (the TLS handshake through it costs far
// more).
const relayBuffer = 16 << 10

// copyIdle copies src to dst until EOF (nil) or an error. A read that
// times out is not the end while the other direction moved bytes within
// idle.
func copyIdle(dst, src net.Conn, act *activity, idle time.Duration, moved *atomic.Uint64) error {
	buf := make([]byte, relayBuffer)
	for {
		src.SetReadDeadline(act.deadline(idle)) //nolint:errcheck // the read reports it
		n, err := src.Read(buf)
		if n > 0 {
			act.touch()
			dst.SetWriteDeadline(time.Now().Add(idle)) //nolint:errcheck // the write reports it
			w, werr := dst.Write(buf[:n])
			moved.Add(uint64(w))
			if werr != nil {
				return werr
			}
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && act.idleFor() < idle {
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
}
