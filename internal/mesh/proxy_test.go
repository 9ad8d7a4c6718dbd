package mesh

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/proxy"
	"github.com/false-systems/rauta/internal/translate"
)

// oneOriginal answers every client with the same steered frontend, as the
// datapath does for connections a pod dialled to that ClusterIP.
type oneOriginal struct{ fe netip.AddrPort }

func (o oneOriginal) SteeredOriginal(netip.AddrPort) (Original, error) {
	return Original{Frontend: o.fe, Proto: TCP, Steered: true}, nil
}

// countingListener counts the connections it accepted.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// TestProxyNewClientConnectionsShareUpstreams: clients that open a new
// connection per request (Connection: close) cost the endpoint no new
// connection each; the proxy forwards on its pooled keep-alive
// connections. And the engine serves the HTTP connections the proxy hands
// over on the dispatching goroutine (proxy.ConnServer), not through its
// own accept goroutine.
func TestProxyNewClientConnectionsShareUpstreams(t *testing.T) {
	eln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingListener{Listener: eln}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "endpoint")
	})}
	go func() { _ = srv.Serve(counted) }()
	t.Cleanup(func() { srv.Close() })
	ep := netip.MustParseAddrPort(eln.Addr().String())

	fe := Frontend{Addr: netip.MustParseAddr("10.96.240.10"), Port: 80, Proto: TCP}
	st := State{fe: {Service: "store/echo", Backends: []netip.AddrPort{ep}}}
	producer := route("producer")
	producer.Backends = []ir.Backend{{Name: "store/echo", Weight: 1, Endpoints: []ir.Endpoint{{Address: ep.Addr().String(), Port: uint32(ep.Port())}}}}
	mr := translate.MeshResult{Ports: []translate.MeshPort{{Service: "store/echo", Port: 80, AppProtocol: "http", Producer: []ir.Route{producer}}}}
	g := buildGamma(st, mr, true, false)

	p, cancel, done := startProxy(t, g, netip.AddrPortFrom(fe.Addr, fe.Port), DefaultSpareAcceptors)

	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	const requests, maxUpstream = 50, 5
	for i := range requests {
		resp, err := cl.Get("http://" + p.addr().String() + "/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(body) != "endpoint" {
			t.Fatalf("request %d: %d %q %v, want 200 from the endpoint", i, resp.StatusCode, body, err)
		}
		if !resp.Close {
			t.Fatalf("request %d: the proxy kept the client's connection open after Connection: close", i)
		}
	}
	if n := counted.n.Load(); n < 1 || n > maxUpstream {
		t.Errorf("%d client connections opened %d connections to the endpoint, want 1 to %d (pooled)", requests, n, maxUpstream)
	}

	p.mu.Lock()
	l := p.listeners[g.frontends[netip.AddrPortFrom(fe.Addr, fe.Port)].producer]
	p.mu.Unlock()
	if l == nil || l.serve.Load() == nil {
		t.Errorf("the producer listener (open: %v) has no serve function: want the engine to serve on the dispatching goroutine (proxy.ConnServer)", l != nil)
	}

	// A kept-alive client connection, idle, is served on its dispatch
	// goroutine, which run waits for: the engine's shutdown must end it.
	ka := &http.Transport{}
	defer ka.CloseIdleConnections()
	resp, err := (&http.Client{Transport: ka, Timeout: 10 * time.Second}).Get("http://" + p.addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		done <- err // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of its context's end with an idle kept-alive connection open")
	}
}

// TestConnListenerServesOnTheGiver: with a serve function, give serves on
// its caller's goroutine, with the bytes read already, and returns when
// that is done; a closed listener closes what it is given without serving
// it.
func TestConnListenerServesOnTheGiver(t *testing.T) {
	l := &connListener{ch: make(chan net.Conn), done: make(chan struct{}), onClose: func() {}}
	var served atomic.Int64
	var got []byte
	l.ServeWith(func(c net.Conn, pending []byte) {
		served.Add(1)
		got = append(got, pending...)
		c.Close()
	})
	a, b := tcpPair(t)
	l.give(a, []byte("GET"))
	if served.Load() != 1 || string(got) != "GET" {
		t.Fatalf("give returned with %d connections served (pending %q), want 1 served with \"GET\" before it returns", served.Load(), got)
	}
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("served: peer reads %v, want EOF (closed by serve)", err)
	}
	l.Close()
	c, d := tcpPair(t)
	l.give(c, nil)
	if served.Load() != 1 {
		t.Errorf("a closed listener served a connection")
	}
	_ = d.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := d.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("given to a closed listener: peer reads %v, want EOF (closed)", err)
	}
}

// TestConnListenerQueuedReadsAheadFirst: a listener without a serve
// function (the relay's) gets the connection through Accept, and reads the
// bytes the sniff took before the socket's, and can half-close it.
func TestConnListenerQueuedReadsAheadFirst(t *testing.T) {
	l := &connListener{ch: make(chan net.Conn), done: make(chan struct{}), onClose: func() {}}
	a, b := tcpPair(t)
	go l.give(a, []byte("ab"))
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(b, "cd"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "abcd" {
		t.Fatalf("read %q, %v: want \"abcd\", the sniffed bytes first", got, err)
	}
	if _, ok := c.(syscall.Conn); ok {
		t.Error("the connection offers its socket: a raw reader would skip the sniffed bytes")
	}
	hc, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("no CloseWrite: the relay could not pass a half-close on")
	}
	if err := hc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("after CloseWrite the peer reads %v, want EOF", err)
	}
	c.Close()
}

// tcpPair is a connected pair of loopback TCP connections.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// TestProxyListenerWithoutKeepAlive: the proxy's accepted connections have
// no TCP keep-alive probes (four setsockopt calls per connection saved);
// a listener opened the default way has them, so the test sees the option.
func TestProxyListenerWithoutKeepAlive(t *testing.T) {
	keepAlive := func(ln net.Listener) int {
		t.Helper()
		defer ln.Close()
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		rc, err := s.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var serr error
		if err := rc.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE) }); err != nil || serr != nil {
			t.Fatal(err, serr)
		}
		return v
	}
	ln, err := listenProxy("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if v := keepAlive(ln); v != 0 {
		t.Errorf("proxy listener: SO_KEEPALIVE %d on an accepted connection, want 0", v)
	}
	def, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if v := keepAlive(def); v != 1 {
		t.Errorf("default listener: SO_KEEPALIVE %d, want 1 (else the check above proves nothing)", v)
	}
}

// startProxy runs a mesh proxy for one steered frontend (oneOriginal)
// with g's routes and at most spares waiting goroutines, until the test
// ends or it cancels; run's error comes on done, which the test, if it
// takes it, puts back for the cleanup.
func startProxy(t *testing.T, g gammaConfig, fe netip.AddrPort, spares int) (*meshProxy, context.CancelFunc, chan error) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := newMeshProxy("127.0.0.1:0", oneOriginal{fe}, prometheus.NewRegistry(), logger, proxy.DefaultMaxPeerValues, spares)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.apply(g, peers{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, func() {}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proxy run: %v", err)
		}
	})
	return p, cancel, done
}

// echoHTTP serves "METHOD PATH BODY" back, until the test ends.
func echoHTTP(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

// echoTCP sends every connection's bytes back and half-closes once the
// client did, until the test ends.
func echoTCP(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// sniffedFrontend is a Service port without appProtocol (the proxy sniffs
// it) whose producer route goes to httpEP and whose relay to tcpEP.
func sniffedFrontend(httpEP, tcpEP netip.AddrPort) (gammaConfig, netip.AddrPort) {
	fe := Frontend{Addr: netip.MustParseAddr("10.96.240.11"), Port: 80, Proto: TCP}
	st := State{fe: {Service: "store/echo", Backends: []netip.AddrPort{tcpEP}}}
	producer := route("producer")
	producer.Backends = []ir.Backend{{Name: "store/echo", Weight: 1, Endpoints: []ir.Endpoint{{Address: httpEP.Addr().String(), Port: uint32(httpEP.Port())}}}}
	mr := translate.MeshResult{Ports: []translate.MeshPort{{Service: "store/echo", Port: 80, Producer: []ir.Route{producer}}}}
	return buildGamma(st, mr, true, false), netip.AddrPortFrom(fe.Addr, fe.Port)
}

// exchange writes the pieces to a new connection to addr (a pause between
// them, so they arrive apart), half-closes it and returns all it reads.
func exchange(t *testing.T, addr netip.AddrPort, pieces ...string) string {
	t.Helper()
	c, err := net.Dial("tcp4", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for i, p := range pieces {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := io.WriteString(c, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v (read %q)", pieces, err, got)
	}
	return string(got)
}

// TestProxySniffedConnectionsIntact: on a sniffed port the bytes the
// detection read reach whoever serves the connection, in order: HTTP
// requests whole or in pieces (with their bodies) at the engine, the
// HTTP/2 preface at the engine's hand-off (h2c with prior knowledge), and
// other protocols, also a few bytes then a half-close, at the relay.
func TestProxySniffedConnectionsIntact(t *testing.T) {
	g, fe := sniffedFrontend(echoHTTP(t), echoTCP(t))
	p, _, _ := startProxy(t, g, fe, DefaultSpareAcceptors)
	addr := p.addr()

	const whole = "POST /whole HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world"
	if got := exchange(t, addr, whole); !strings.HasPrefix(got, "HTTP/1.1 200") || !strings.HasSuffix(got, "\r\n\r\nPOST /whole hello world") {
		t.Errorf("request in one write: answer %q, want 200 with \"POST /whole hello world\"", got)
	}
	if got := exchange(t, addr, "PO", "ST /pie", "ces HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhel", "lo world"); !strings.HasPrefix(got, "HTTP/1.1 200") || !strings.HasSuffix(got, "\r\n\r\nPOST /pieces hello world") {
		t.Errorf("request in pieces: answer %q, want 200 with \"POST /pieces hello world\"", got)
	}
	binary := "\x16\x03\x01\x00\x05hello, not HTTP\x00\xff"
	if got := exchange(t, addr, binary, "and more"); got != binary+"and more" {
		t.Errorf("relayed: echoed %q, want %q", got, binary+"and more")
	}
	if got := exchange(t, addr, "GE"); got != "GE" {
		t.Errorf("\"GE\" then a half-close: echoed %q, want \"GE\" (relayed)", got)
	}

	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true) // h2c with prior knowledge
	h2 := &http.Transport{Protocols: &protos}
	defer h2.CloseIdleConnections()
	resp, err := (&http.Client{Transport: h2, Timeout: 10 * time.Second}).Post("http://"+addr.String()+"/h2", "text/plain", strings.NewReader("prior knowledge"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.ProtoMajor != 2 || string(body) != "POST /h2 prior knowledge" {
		t.Errorf("h2c with prior knowledge: %s %q %v, want HTTP/2 and \"POST /h2 prior knowledge\"", resp.Proto, body, err)
	}
}

// TestProxySpareGoroutines: while connections are served on the
// goroutines that accepted them, another one accepts (a new connection is
// served while others are open and idle); once they are done, at most
// -proxy-spare-goroutines wait for the next, and connections are served
// with none too.
func TestProxySpareGoroutines(t *testing.T) {
	ep := echoHTTP(t)
	// The flag's value and the bound it sets: -1 none, 0 (a Config left
	// empty, as embedders and tests make it) the default.
	for _, c := range []struct{ flag, spares int }{{-1, 0}, {2, 2}, {0, DefaultSpareAcceptors}} {
		// The five connections' goroutines wait, up to the bound.
		spares := min(c.spares, 5)
		t.Run(fmt.Sprintf("flag=%d", c.flag), func(t *testing.T) {
			g, fe := sniffedFrontend(ep, ep)
			p, _, _ := startProxy(t, g, fe, c.flag)
			const open = 5 // spares above
			var conns []net.Conn
			for i := range open {
				c, err := net.Dial("tcp4", p.addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				// A kept-alive request: the connection stays open, idle,
				// on the goroutine serving it.
				req := fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
				if _, err := io.WriteString(c, req); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("connection %d, with %d others open: %v", i, i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := fmt.Sprintf("GET /%d ", i); string(body) != want {
					t.Fatalf("connection %d: %q, want %q", i, body, want)
				}
				conns = append(conns, c)
			}
			for _, c := range conns {
				c.Close()
			}
			// The engine sees the clients leave; their goroutines then
			// wait as spares, up to the bound, or end.
			deadline := time.Now().Add(10 * time.Second)
			for p.spares.Load() < int64(spares) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // any goroutine over the bound would be waiting by now
			if n := p.spares.Load(); n != int64(spares) {
				t.Errorf("%d goroutines wait as spares after %d connections ended, want %d (the bound)", n, open, spares)
			}
			if got := exchange(t, p.addr(), "GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasSuffix(got, "GET /after ") {
				t.Errorf("a connection after the others ended: %q", got)
			}
		})
	}
}
