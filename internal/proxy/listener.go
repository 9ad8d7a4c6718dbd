package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/h2"
	"github.com/false-systems/rauta/internal/ir"
)

// socket is one bound listener and the HTTP engine serving it. The socket
// outlives Apply calls that keep its address and protocol; only cfg changes.
type socket struct {
	protocol ir.Protocol
	ln       net.Listener
	srv      *http.Server
	cfg      atomic.Pointer[listenerConfig]
	// upgraded serves the connections switched with Upgrade: h2c (h2c.go).
	upgraded h2cUpgrades
	// HTTP and HTTPS sockets serve HTTP/1.1 on the HTTP/1.1 engine
	// (internal/h1's Conn, h1conn.go), which hands what it does not serve
	// to srv through handoff, and h2c with prior knowledge to h2. HTTPS
	// sockets accept in tlsaccept.go and pass HTTP/2 by ALPN to h2.
	h1      *h1.Conns
	h1cfg   *h1.Config
	handoff *handoffListener
	// h2 serves HTTP/2 in place of net/http's server (internal/h2): on
	// HTTPS by ALPN, on HTTP the h2c connections with prior knowledge
	// that the engine hands it.
	h2 *h2.Server
	// streams serves TLS passthrough and TCP sockets (stream.go) in place of
	// every HTTP engine above, which stay nil but h2.
	streams *streamConns
	// tlsConfig terminates TLS on HTTPS sockets (tlsaccept.go), and
	// handshakes tracks their connections until their handshake is done.
	tlsConfig  *tls.Config
	handshakes handshakeSet
	// streamTLS terminates TLS for the virtual hosts of a TLS socket that
	// ask for it (ir.VirtualHost.TerminateTLS).
	streamTLS *tls.Config
	// udp serves UDP sockets (udp.go); ln, srv and every engine above
	// are nil on those.
	udp *udpSocket
	// httpConns counts the connections srv serves (ConnState), for Conns.
	httpConns atomic.Int64
	// draining: every HTTP/1.1 response of srv is the connection's last.
	draining atomic.Bool
}

// bind opens the socket of a listener and prepares (but does not start) its
// server: HTTP/1.1 with keep-alive everywhere, HTTP/2 by ALPN on HTTPS and
// h2c by prior knowledge on HTTP (internal/h2), h2c by Upgrade (h2c.go).
func (s *Server) bind(addr string, lc *listenerConfig) (*socket, error) {
	if lc.protocol == ir.ProtocolUDP {
		sock, err := s.bindUDP(addr, lc)
		if err != nil {
			return nil, fmt.Errorf("bind udp %s: %w", addr, err)
		}
		return sock, nil
	}
	ln, err := s.listenTCP(addr)
	if err != nil {
		return nil, fmt.Errorf("bind %s: %w", addr, err)
	}
	sock := &socket{protocol: lc.protocol, ln: ln}
	// The same client timeouts bound HTTP/2 streams: a body that stops
	// coming, a client that keeps the flow-control window shut, a socket
	// write that blocks.
	limits := s.opts.HTTP2
	if limits.MaxHeaderFields == 0 {
		limits.MaxHeaderFields = s.opts.MaxHeaderFields
	}
	sock.h2 = &h2.Server{
		MaxConcurrentStreams: s.opts.MaxConcurrentStreams,
		Limits:               limits,
		MaxHeaderBytes:       s.opts.MaxHeaderBytes,
		IdleTimeout:          s.opts.IdleTimeout,
		ReadTimeout:          s.opts.ReadHeaderTimeout,
		BodyIdleTimeout:      s.opts.ClientBodyTimeout,
		SendStallTimeout:     s.opts.ClientSendTimeout,
		WriteTimeout:         s.opts.ClientSendTimeout,
		Logger:               s.opts.Logger,
	}
	sock.cfg.Store(lc)
	if lc.protocol == ir.ProtocolTLS || lc.protocol == ir.ProtocolTCP {
		sock.streams = newStreamConns(s.opts.MaxStreamConns)
		sock.streamTLS = &tls.Config{
			MinVersion: tls.VersionTLS12,
			// As on HTTPS sockets: the current config's certificates.
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				return sock.cfg.Load().certs.get(hello.ServerName)
			},
		}
		auth := newClientAuthConfigs(sock.streamTLS)
		sock.streamTLS.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return auth.get(sock.cfg.Load().clientAuth), nil
		}
		return sock, nil
	}
	sock.h1 = h1.NewConns()
	sock.h1cfg = s.h1Config(sock)
	sock.handoff = newHandoffListener(ln.Addr())
	// net/http's own HTTP/2 stays off: it serves only what the engine
	// hands it, HTTP/1.1, and the engine gives every h2c connection to
	// sock.h2 (on HTTPS, ALPN's h2 goes there from tlsaccept.go).
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	sock.srv = &http.Server{
		Handler:           &handler{s: s, sock: sock, plain: lc.protocol == ir.ProtocolHTTP},
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    netHTTPHeaderBytes(s.opts.MaxHeaderBytes),
		Protocols:         protocols,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelDebug),
	}
	if lc.protocol == ir.ProtocolHTTPS {
		sock.tlsConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2", "http/1.1"},
			// Full-size records from the first byte, as nginx
			// (ssl_buffer_size 16k) and HAProxy send them: crypto/tls
			// otherwise starts every connection with records of one TCP
			// segment (about 1.2 KB, growing over the first 128 KB) and
			// writes each with its own system call, so a 1 KiB answer
			// and its head took two writes.
			DynamicRecordSizingDisabled: true,
			// The certificate is looked up on every handshake in the
			// socket's current config, so Apply replaces certificates
			// without reopening the socket.
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				return sock.cfg.Load().certs.get(hello.ServerName)
			},
		}
		// The client certificate check of the current config.
		auth := newClientAuthConfigs(sock.tlsConfig)
		sock.tlsConfig.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return auth.get(sock.cfg.Load().clientAuth), nil
		}
		// Connections the engine hands net/http keep their TLS state.
		sock.srv.ConnContext = tlsConnContext
	}
	sock.srv.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			sock.httpConns.Add(1)
		case http.StateHijacked, http.StateClosed: // both final
			sock.httpConns.Add(-1)
		}
	}
	sock.srv.RegisterOnShutdown(sock.h2.Shutdown)
	if err := sock.upgraded.init(sock.srv); err != nil {
		ln.Close()
		return nil, err
	}
	if s.draining {
		s.drainSocket(sock)
	}
	return sock, nil
}

// netHTTPHeaderBytes is the http.Server.MaxHeaderBytes that refuses heads
// over limit bytes: net/http reads 4096 bytes past its setting (room for
// its buffered reader), so a head of limit bytes passes and one more is
// 431, as on the HTTP/1.1 engine. Limits of 4 KiB or less get 1 (net/http
// reads 0 as 1 MiB), so those let 4 KiB through.
func netHTTPHeaderBytes(limit int) int { return max(limit-4096, 1) }

// startServing runs the socket's accept loop. Callers hold s.mu.
func (s *Server) startServing(sock *socket) {
	if sock.udp != nil {
		s.serving.Go(func() {
			if err := s.serveUDP(sock); err != nil {
				s.opts.Logger.Error("listener stopped serving", "addr", sock.addr().String(), "err", err)
			}
		})
		return
	}
	if sock.streams != nil {
		s.serving.Go(func() {
			if err := s.acceptStreams(sock); err != nil {
				s.opts.Logger.Error("listener stopped serving", "addr", sock.ln.Addr().String(), "err", err)
			}
		})
		return
	}
	if sock.h1 != nil {
		accept := s.acceptH1
		if sock.protocol == ir.ProtocolHTTPS {
			accept = s.acceptTLS
		} else {
			// Only clear text: a listener serving connections itself
			// would skip the TLS handshake.
			s.serveHandedOver(sock)
		}
		s.serving.Add(1)
		go func() {
			defer s.serving.Done()
			if err := accept(sock); err != nil {
				s.opts.Logger.Error("listener stopped serving", "addr", sock.ln.Addr().String(), "err", err)
			}
		}()
	}
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		// net/http serves what the HTTP/1.1 engine hands it.
		err := sock.srv.Serve(sock.handoff)
		// A listener closed by closeGracefully or shutdown is the normal end,
		// not an error worth an operator's attention.
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.opts.Logger.Error("listener stopped serving", "addr", sock.ln.Addr().String(), "err", err)
		}
	}()
}

// closeGracefully stops accepting on the socket at once, then lets its
// in-flight requests finish in the background, forcing the connections
// closed after ShutdownTimeout (and counting them in s.cut). Callers hold
// s.mu.
func (s *Server) closeGracefully(sock *socket) {
	if sock.udp != nil {
		// Nothing tells a UDP client to go away: its flows are cut now.
		s.cut.Add(int64(sock.udp.close()))
		s.serving.Go(sock.udp.running.Wait)
		return
	}
	// Closing the listener now (Shutdown would too, but asynchronously)
	// frees the address for a listener bound right after.
	sock.ln.Close()
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		timeout, cancelTimeout := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
		defer cancelTimeout()
		// ctx ends at the timeout, after the connections still open are
		// counted, so that none is closed before it is counted.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stop := context.AfterFunc(timeout, func() {
			if errors.Is(timeout.Err(), context.DeadlineExceeded) {
				s.cut.Add(int64(sock.conns()))
			}
			cancel()
		})
		defer stop()
		if sock.streams != nil {
			sock.streams.shutdown(ctx)
			return
		}
		// Handshakes still in progress: no request of theirs started.
		defer sock.handshakes.close()
		var engine sync.WaitGroup
		if sock.h1 != nil {
			engine.Go(func() { sock.h1.Shutdown(ctx) })
		}
		defer engine.Wait()
		if err := sock.srv.Shutdown(ctx); err != nil {
			sock.srv.Close()
		}
		// net/http does not track the connections upgraded to h2c, nor
		// the h2c ones the engine gave the HTTP/2 server (on HTTPS sockets
		// it does, and Shutdown above waited for them).
		sock.upgraded.shutdown(ctx)
		sock.h2.Drain(ctx)
	}()
}

// addr is the socket's bound address.
func (sock *socket) addr() net.Addr {
	if sock.udp != nil {
		return sock.udp.conn.LocalAddr()
	}
	return sock.ln.Addr()
}
