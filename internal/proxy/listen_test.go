package proxy

import (
	"net"
	"sync"
	"syscall"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

// TestOptionsListenOpensListeners: with Options.Listen the server binds
// nothing itself: each TCP listener is opened through it, by its Address
// and Port (which need not be an IP: the mesh uses names), and serves the
// connections that listener accepts.
func TestOptionsListenOpensListeners(t *testing.T) {
	a, b := newEchoBackend(t, "a"), newEchoBackend(t, "b")
	var mu sync.Mutex
	asked := map[string]net.Listener{}
	listen := func(address string) (net.Listener, error) {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		mu.Lock()
		asked[address] = ln
		mu.Unlock()
		return ln, nil
	}
	la := ir.Listener{Name: "mesh/a", Gateway: "mesh", Address: "mesh/a", Port: 80, Protocol: ir.ProtocolHTTP,
		VirtualHosts: []ir.VirtualHost{catchAll(prefixRoute("a", "/", a.backend(1)))}}
	lb := la
	lb.Name, lb.Address = "mesh/b", "mesh/b"
	lb.VirtualHosts = []ir.VirtualHost{catchAll(prefixRoute("b", "/", b.backend(1)))}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{la, lb}}, Options{Listen: listen})

	mu.Lock()
	if len(asked) != 2 || asked["mesh/a:80"] == nil || asked["mesh/b:80"] == nil {
		t.Fatalf("Listen was asked for %v, want mesh/a:80 and mesh/b:80", asked)
	}
	mu.Unlock()
	c := newClient()
	for name, want := range map[string]string{"mesh/a": "a", "mesh/b": "b"} {
		resp, got, _ := do(t, c, mustReq(t, "GET", p.url(t, name)+"/x", nil))
		if resp.StatusCode != 200 || got.Backend != want {
			t.Errorf("listener %s: %d from %q, want 200 from %s", name, resp.StatusCode, got.Backend, want)
		}
	}
}

// TestAcceptedConnsKeepAlive: client connections get TCP keep-alive (15 s
// idle, 15 s between 9 probes, as Go sets on each accepted connection)
// from the listening socket, which Linux copies to the connections it
// accepts: no setsockopt per connection.
func TestAcceptedConnsKeepAlive(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.listenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ac, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	rc, err := ac.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		name       string
		level, opt int
		want       int
	}{
		{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 15},
		{"TCP_KEEPINTVL", syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 15},
		{"TCP_KEEPCNT", syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 9},
	} {
		var v int
		var gerr error
		if err := rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), o.level, o.opt) }); err != nil || gerr != nil {
			t.Fatalf("getsockopt %s: %v %v", o.name, err, gerr)
		}
		if v != o.want {
			t.Errorf("accepted connection's %s = %d, want %d", o.name, v, o.want)
		}
	}
}
