package mesh

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/false-systems/rauta/internal/proxy"
)

// DefaultProxyPort is the mesh proxy's port when -proxy-addr names none.
const DefaultProxyPort = 15001

// sniffTimeout bounds the wait for a client's first bytes on a Service
// port without appProtocol: a client that sends nothing by then (a
// server-first protocol such as SMTP or MySQL) is relayed as it is.
const sniffTimeout = time.Second

// sniffBytes is what the detection looks at: an HTTP/1.x method token
// (at most 20 characters) and what follows it.
const sniffBytes = 24

// DefaultSpareAcceptors is how many of the proxy's goroutines wait, once
// their connection is done, to accept the next one (-proxy-spare-goroutines):
// a waiting goroutine keeps the stack serving a connection grew to, so a
// new connection costs no goroutine start and no stack growth. Each holds
// its stack, typically 8 to 32 KiB.
const DefaultSpareAcceptors = 64

// originals finds where a steered connection was going; *Datapath is one.
type originals interface {
	SteeredOriginal(client netip.AddrPort) (Original, error)
}

// meshProxy is the node's GAMMA proxy: it accepts the connections the
// programs steer to it, finds each one's original destination and client
// namespace, and hands it to the proxy.Server listener serving that
// frontend's routes for that namespace (HTTP), or to the frontend's relay.
// The listeners are never bound: proxy.Server opens them through
// Options.Listen, which returns a connListener fed from here.
type meshProxy struct {
	ln     net.Listener
	orig   originals
	srv    *proxy.Server
	logger *slog.Logger
	conns  *prometheus.CounterVec

	mu        sync.Mutex
	listeners map[string]*connListener // by listener key

	table atomic.Pointer[proxyTable]
	// wg counts the goroutines accepting, dispatching (and serving, on
	// HTTP listeners) or waiting as spares, so close waits for them; the
	// engine's shutdown, running meanwhile, ends the connections they
	// serve.
	wg sync.WaitGroup

	// acceptTurn passes the accept role to a spare goroutine (unbuffered:
	// only one waiting takes it); closing ends the spares' wait.
	acceptTurn chan struct{}
	closing    chan struct{}
	// spares counts the goroutines waiting on acceptTurn, at most
	// maxSpares.
	spares    atomic.Int64
	maxSpares int64
	// sniffBufs are the buffers the protocol detection reads into
	// (proxy.MaxPendingBytes each).
	sniffBufs sync.Pool
}

// proxyTable is what dispatching reads, replaced as a whole.
type proxyTable struct {
	frontends map[netip.AddrPort]*frontendRoutes
	// peers names the workloads of this node's pods and of the
	// endpoints.
	peers peers
}

// newMeshProxy listens on addr and prepares the HTTP engine; serving
// starts with run.
func newMeshProxy(addr string, orig originals, reg prometheus.Registerer, logger *slog.Logger, maxWorkloads, maxSpares int) (*meshProxy, error) {
	ln, err := listenProxy(addr)
	if err != nil {
		return nil, err
	}
	p := &meshProxy{
		ln: ln, orig: orig, logger: logger,
		listeners:  make(map[string]*connListener),
		acceptTurn: make(chan struct{}),
		closing:    make(chan struct{}),
		maxSpares:  spareBound(maxSpares),
		sniffBufs: sync.Pool{New: func() any {
			b := make([]byte, proxy.MaxPendingBytes)
			return &b
		}},
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_mesh_proxy_connections_total",
			Help: "Connections the mesh proxy accepted, by what it did: http (served by routes), tcp (relayed to an endpoint), no_original (not steered, or its entry gone: closed), no_frontend (no routes for its destination: closed), closed (the client left before sending).",
		}, []string{"result"}),
	}
	if err := reg.Register(p.conns); err != nil {
		ln.Close()
		return nil, err
	}
	p.srv, err = proxy.New(proxy.Options{Registerer: reg, Logger: logger, Listen: p.listen, RequestTimings: -1, Peers: p, MaxPeerValues: maxWorkloads})
	if err != nil {
		ln.Close()
		return nil, err
	}
	p.table.Store(&proxyTable{})
	return p, nil
}

// spareBound is the bound of waiting goroutines -proxy-spare-goroutines n
// sets: 0 (a Config left empty) is DefaultSpareAcceptors, a negative n
// none.
func spareBound(n int) int64 {
	switch {
	case n == 0:
		return DefaultSpareAcceptors
	case n < 0:
		return 0
	}
	return int64(n)
}

// listenProxy opens the proxy's listener without TCP keep-alive probes on
// the connections it accepts. Go turns them on for every accepted
// connection, four setsockopt calls each, which a proxy accepting a
// connection per request pays per request. The clients are pods of this
// node, whose sockets the kernel closes (FIN or RST) when their process
// ends, and the engine's idle and stream timeouts end connections left
// idle: probes would find nothing these do not.
func listenProxy(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(context.Background(), "tcp", addr)
}

// addr is the address the proxy accepts on.
func (p *meshProxy) addr() netip.AddrPort {
	return p.ln.Addr().(*net.TCPAddr).AddrPort()
}

// apply serves cfg and ps: the listeners first, then the table that
// leads to them. When the engine refuses cfg (a route it cannot
// compile) it keeps its listeners, and the table stays theirs.
func (p *meshProxy) apply(cfg gammaConfig, ps peers) error {
	if err := p.srv.Apply(cfg.snap); err != nil {
		return err
	}
	p.table.Store(&proxyTable{frontends: cfg.frontends, peers: ps})
	p.forgetGoneWorkloads(&ps)
	return nil
}

// run accepts until ctx ends, then calls stopSteering, closes the
// listener and the engine (in-flight requests get the proxy's shutdown
// timeout).
func (p *meshProxy) run(ctx context.Context, stopSteering func()) error {
	srvDone := make(chan error, 1)
	go func() { srvDone <- p.srv.Run(ctx) }()
	go func() {
		<-ctx.Done()
		stopSteering()
		p.ln.Close()
		close(p.closing)
	}()
	p.wg.Add(1)
	go p.serveConns()
	p.wg.Wait()
	return <-srvDone
}

// serveConns is one of the proxy's goroutines. One at a time accepts: it
// passes the accept role on (to a spare, or a new goroutine) as soon as
// it has a connection, and dispatches that connection itself, so the
// connection is served on the goroutine that accepted it, at once, not
// after a hand-over to a goroutine started for it. Done, it waits as a
// spare for the role, or ends when maxSpares already wait.
func (p *meshProxy) serveConns() {
	defer p.wg.Done()
	var delay time.Duration
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: back off, as the gateway does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			p.logger.Warn("mesh proxy: accept failed; retrying", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		p.passAccept()
		p.dispatch(c)
		if !p.waitTurn() {
			return
		}
	}
}

// passAccept makes another goroutine the acceptor: a spare if one waits,
// else a new one.
func (p *meshProxy) passAccept() {
	select {
	case p.acceptTurn <- struct{}{}:
	default:
		p.wg.Add(1)
		go p.serveConns()
	}
}

// waitTurn waits, as a spare, until the acceptor passes the role on
// (true), or the proxy closes (false); with maxSpares waiting already it
// returns false at once.
func (p *meshProxy) waitTurn() bool {
	defer p.spares.Add(-1)
	if p.spares.Add(1) > p.maxSpares {
		return false
	}
	select {
	case <-p.acceptTurn:
		return true
	case <-p.closing:
		return false
	}
}

// dispatch hands c to its listener or closes it. On an HTTP listener it
// serves c (connListener.give), so it returns when c is done.
func (p *meshProxy) dispatch(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return
	}
	client := tc.RemoteAddr().(*net.TCPAddr).AddrPort()
	client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	orig, err := p.orig.SteeredOriginal(client)
	if err != nil {
		p.conns.WithLabelValues("no_original").Inc()
		p.logger.Debug("mesh proxy: no original destination", "client", client.String(), "err", err)
		c.Close()
		return
	}
	t := p.table.Load()
	fe := netip.AddrPortFrom(orig.Frontend.Addr().Unmap(), orig.Frontend.Port())
	fr := t.frontends[fe]
	if fr == nil {
		p.conns.WithLabelValues("no_frontend").Inc()
		p.logger.Debug("mesh proxy: no routes for the destination", "client", client.String(), "frontend", fe.String())
		c.Close()
		return
	}
	key, isHTTP := fr.pick(t.peers.local[client.Addr()].Namespace)
	var pending []byte
	if isHTTP && fr.sniff {
		bp := p.sniffBufs.Get().(*[]byte)
		var n int
		n, isHTTP, err = sniffHTTP(tc, sniffTimeout, *bp)
		// Handed over as a copy of the size read: the pooled buffer
		// would be held for the connection's life.
		pending = bytes.Clone((*bp)[:n])
		p.sniffBufs.Put(bp)
		if err != nil {
			p.conns.WithLabelValues("closed").Inc()
			c.Close()
			return
		}
		if !isHTTP {
			key = fr.direct
		}
	}
	result := "tcp"
	if isHTTP {
		result = "http"
	}
	p.mu.Lock()
	l := p.listeners[key]
	p.mu.Unlock()
	if l == nil {
		// The listener went between the table's load and now (a route
		// removed meanwhile): the client retries and is not steered.
		p.conns.WithLabelValues("no_frontend").Inc()
		c.Close()
		return
	}
	p.conns.WithLabelValues(result).Inc()
	l.give(tc, pending)
}

// listen is proxy.Options.Listen: the listener of key, fed by dispatch.
func (p *meshProxy) listen(key string) (net.Listener, error) {
	l := &connListener{addr: p.ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	l.onClose = func() {
		p.mu.Lock()
		if p.listeners[key] == l {
			delete(p.listeners, key)
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.listeners[key] = l
	p.mu.Unlock()
	return l, nil
}

// connListener is a net.Listener whose connections were accepted
// elsewhere and handed over with give.
type connListener struct {
	addr    net.Addr
	ch      chan net.Conn
	done    chan struct{}
	once    sync.Once
	onClose func()
	// serve, once the engine set it (ServeWith), serves a connection on
	// the dispatching goroutine.
	serve atomic.Pointer[func(net.Conn, []byte)]
}

var _ proxy.ConnServer = (*connListener)(nil)

// ServeWith is proxy.ConnServer's: give serves on its caller's goroutine
// from now on.
func (l *connListener) ServeWith(serve func(net.Conn, []byte)) { l.serve.Store(&serve) }

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.onClose()
	})
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// give serves c, whose first bytes (pending) were read already, on the
// caller's goroutine once the engine set how (ServeWith, HTTP listeners),
// returning when c is done; otherwise it waits until the listener's
// server takes c, reading pending first. Either way it closes c when the
// listener closed first.
func (l *connListener) give(c *net.TCPConn, pending []byte) {
	if serve := l.serve.Load(); serve != nil {
		select {
		case <-l.done:
			c.Close()
		default:
			(*serve)(c, pending)
		}
		return
	}
	var nc net.Conn = c
	if len(pending) > 0 {
		nc = &readAhead{conn: c, pending: pending}
	}
	select {
	case l.ch <- nc:
	case <-l.done:
		c.Close()
	}
}

// readAhead is a connection whose first bytes were read already (pending),
// for a server that reads it as a net.Conn: the relay, or the HTTP engine
// before it served handed-over connections itself. It has CloseWrite, so
// the relay passes a half-close on, but on purpose not SyscallConn (nor
// ReadFrom or WriteTo): reading the socket directly would skip pending.
type readAhead struct {
	conn    halfCloser
	pending []byte
}

// halfCloser is a connection that can end its sending side alone.
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

func (c *readAhead) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.conn.Read(p)
}

func (c *readAhead) Write(p []byte) (int, error)        { return c.conn.Write(p) }
func (c *readAhead) Close() error                       { return c.conn.Close() }
func (c *readAhead) CloseWrite() error                  { return c.conn.CloseWrite() }
func (c *readAhead) LocalAddr() net.Addr                { return c.conn.LocalAddr() }
func (c *readAhead) RemoteAddr() net.Addr               { return c.conn.RemoteAddr() }
func (c *readAhead) SetDeadline(t time.Time) error      { return c.conn.SetDeadline(t) }
func (c *readAhead) SetReadDeadline(t time.Time) error  { return c.conn.SetReadDeadline(t) }
func (c *readAhead) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// sniffHTTP reads the connection's first bytes into buf and reports
// whether they start an HTTP/1.x request (or the HTTP/2 preface, "PRI *
// HTTP/2.0"), and how many it read: buf[:n] must be served before the
// rest of the connection. Reading them, rather than peeking and leaving
// them in the socket, saves the server's first read (a request that came
// whole is in buf) and, for a request arriving in pieces, a poll loop:
// each read waits for more. A client silent (or stalled before the method
// is known) for timeout is not HTTP; one that closes having sent nothing
// is io.EOF.
func sniffHTTP(c net.Conn, timeout time.Duration, buf []byte) (n int, isHTTP bool, err error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return 0, false, err
	}
	defer c.SetReadDeadline(time.Time{}) //nolint:errcheck // the serving engine sets its own
	for {
		m, rerr := c.Read(buf[n:])
		n += m
		v := needMore
		if n > 0 {
			v = httpVerdict(buf[:min(n, sniffBytes)])
		}
		switch {
		case v != needMore || n >= sniffBytes || n == len(buf):
			return n, v == isHTTPRequest, nil
		case rerr == nil:
			continue
		case errors.Is(rerr, os.ErrDeadlineExceeded):
			return n, false, nil
		case errors.Is(rerr, io.EOF) && n > 0:
			// Half-closed after a few bytes: relayed as they are.
			return n, false, nil
		}
		return n, false, rerr
	}
}

type verdict int

const (
	notHTTP verdict = iota
	isHTTPRequest
	needMore
)

// httpVerdict classifies the first bytes of a connection: an HTTP/1.x
// request starts with a method token (upper-case letters, RFC 9110 allows
// more but every registered method is upper-case letters and at most 20 of
// them here) and a space, then an origin-form path, "*" or an
// absolute-form URI.
func httpVerdict(b []byte) verdict {
	i := 0
	for i < len(b) && b[i] >= 'A' && b[i] <= 'Z' {
		i++
	}
	switch {
	case i == len(b):
		if i > 20 {
			return notHTTP
		}
		return needMore
	case i == 0 || i > 20 || b[i] != ' ':
		return notHTTP
	case i+1 == len(b):
		return needMore
	}
	switch b[i+1] {
	case '/', '*', 'h', 'H':
		return isHTTPRequest
	}
	return notHTTP
}
