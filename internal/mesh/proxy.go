package mesh

import (
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
	"golang.org/x/sys/unix"

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
	// wg counts the connections being dispatched (and served, on HTTP
	// listeners), so close waits for them; the engine's shutdown, running
	// meanwhile, ends the ones it serves.
	wg sync.WaitGroup
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
func newMeshProxy(addr string, orig originals, reg prometheus.Registerer, logger *slog.Logger, maxWorkloads int) (*meshProxy, error) {
	ln, err := listenProxy(addr)
	if err != nil {
		return nil, err
	}
	p := &meshProxy{
		ln: ln, orig: orig, logger: logger,
		listeners: make(map[string]*connListener),
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
	}()
	var delay time.Duration
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				break
			}
			// Out of descriptors and the like: back off, as the gateway does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			p.logger.Warn("mesh proxy: accept failed; retrying", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.dispatch(c)
		}()
	}
	p.wg.Wait()
	return <-srvDone
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
	if isHTTP && fr.sniff {
		isHTTP, err = sniffHTTP(tc, sniffTimeout)
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
	l.give(c)
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
	serve atomic.Pointer[func(net.Conn)]
}

var _ proxy.ConnServer = (*connListener)(nil)

// ServeWith is proxy.ConnServer's: give serves on its caller's goroutine
// from now on.
func (l *connListener) ServeWith(serve func(net.Conn)) { l.serve.Store(&serve) }

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

// give serves c on the caller's goroutine once the engine set how
// (ServeWith, HTTP listeners), returning when c is done; otherwise it
// waits until the listener's server takes c. Either way it closes c when
// the listener closed first.
func (l *connListener) give(c net.Conn) {
	if serve := l.serve.Load(); serve != nil {
		select {
		case <-l.done:
			c.Close()
		default:
			(*serve)(c)
		}
		return
	}
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

// sniffHTTP reports whether the connection's first bytes start an HTTP/1.x
// request (or the HTTP/2 preface, "PRI * HTTP/2.0"). It peeks (MSG_PEEK):
// the bytes stay in the socket for whoever serves it. A client silent for
// timeout is not HTTP; one that closes first is an error.
func sniffHTTP(c *net.TCPConn, timeout time.Duration) (bool, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, err
	}
	deadline := time.Now().Add(timeout)
	if err := c.SetReadDeadline(deadline); err != nil {
		return false, err
	}
	defer c.SetReadDeadline(time.Time{}) //nolint:errcheck // the serving engine sets its own
	var buf [sniffBytes]byte
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return false, nil
		case err != nil:
			return false, err
		case rerr != nil:
			return false, rerr
		case n == 0:
			return false, io.EOF
		}
		v := httpVerdict(buf[:n])
		if v != needMore || n == len(buf) {
			return v == isHTTPRequest, nil
		}
		// More bytes are on their way; peeking again at once would find
		// the same ones.
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(2 * time.Millisecond)
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
