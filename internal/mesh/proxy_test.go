package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
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

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := newMeshProxy("127.0.0.1:0", oneOriginal{netip.AddrPortFrom(fe.Addr, fe.Port)}, prometheus.NewRegistry(), logger, proxy.DefaultMaxPeerValues)
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
// its caller's goroutine and returns when that is done; a closed listener
// closes what it is given without serving it.
func TestConnListenerServesOnTheGiver(t *testing.T) {
	l := &connListener{ch: make(chan net.Conn), done: make(chan struct{}), onClose: func() {}}
	var served atomic.Int64
	l.ServeWith(func(c net.Conn) {
		served.Add(1)
		c.Close()
	})
	a, b := net.Pipe()
	defer b.Close()
	l.give(a)
	if served.Load() != 1 {
		t.Fatalf("give returned with %d connections served, want 1 served before it returns", served.Load())
	}
	l.Close()
	c, d := net.Pipe()
	l.give(c)
	if served.Load() != 1 {
		t.Errorf("a closed listener served a connection")
	}
	_ = d.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := d.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("given to a closed listener: peer reads %v, want EOF (closed)", err)
	}
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
