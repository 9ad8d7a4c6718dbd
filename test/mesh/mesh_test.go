package mesh

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/internal/mesh"
)

// dials is how many connections a test makes to see the spread: with two
// endpoints chosen at random, all 40 on one is a 2^-39 chance.
const dials = 40

// TestTCPThroughClusterIP: a client in the cgroup dials a ClusterIP and
// reaches the endpoints, sees the ClusterIP as its peer, and its socket's
// cookie leads to the original destination. An endpoint removed from the
// map gets no new connection; a frontend without endpoints refuses.
func TestTCPThroughClusterIP(t *testing.T) {
	cgroup, cg := testCgroup(t)
	d, w := openDatapath(t, cgroup)
	a, b := tcpServer(t, "tcp4", "a"), tcpServer(t, "tcp4", "b")
	vip := vipPrefix4 + "1:80"
	down := vipPrefix4 + "2:80"
	state := mesh.State{
		frontend(vip, mesh.TCP):  {Backends: []netip.AddrPort{a, b}},
		frontend(down, mesh.TCP): {},
	}
	if err := w.Apply(state); err != nil {
		t.Fatal(err)
	}
	byName := map[string]netip.AddrPort{"a": a, "b": b}

	seen := map[string]int{}
	for i, r := range runChild(t, cg, "tcp", vip, dials) {
		if r.Err != "" || r.Errno != "" {
			t.Fatalf("dial %d: %s%s", i, r.Errno, r.Err)
		}
		seen[r.Name]++
		if r.Peer != vip {
			t.Errorf("dial %d: getpeername %s, want the ClusterIP %s", i, r.Peer, vip)
		}
		orig, err := d.OriginalDestination(r.Cookie)
		if err != nil {
			t.Fatalf("dial %d: original destination of cookie %d: %v", i, r.Cookie, err)
		}
		want := mesh.Original{Frontend: netip.MustParseAddrPort(vip), Proto: mesh.TCP, Backend: byName[r.Name]}
		if orig != want {
			t.Errorf("dial %d: original destination %+v, want %+v", i, orig, want)
		}
	}
	if seen["a"] == 0 || seen["b"] == 0 || seen["a"]+seen["b"] != dials {
		t.Fatalf("connections per endpoint %v: want both of a and b, nothing else", seen)
	}

	// b leaves: every new connection goes to a.
	state[frontend(vip, mesh.TCP)] = mesh.Entry{Backends: []netip.AddrPort{a}}
	if err := w.Apply(state); err != nil {
		t.Fatal(err)
	}
	for i, r := range runChild(t, cg, "tcp", vip, dials) {
		if r.Name != "a" {
			t.Fatalf("dial %d after b was removed: %+v, want a", i, r)
		}
	}

	// No endpoints: refused at once, like kube-proxy's REJECT.
	r := runChild(t, cg, "tcp", down, 1)[0]
	if r.Errno != "ECONNREFUSED" {
		t.Fatalf("dial to a frontend without endpoints: %+v, want ECONNREFUSED", r)
	}
	st, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Translated < 2*dials || st.NoEndpoints < 1 {
		t.Errorf("kernel counters %+v: want at least %d translated and 1 without endpoints", st, 2*dials)
	}
}

// TestTCPThroughIPv6ClusterIP: the same over IPv6 to [::1] endpoints.
func TestTCPThroughIPv6ClusterIP(t *testing.T) {
	cgroup, cg := testCgroup(t)
	d, w := openDatapath(t, cgroup)
	a := tcpServer(t, "tcp6", "a6")
	vip := netip.AddrPortFrom(netip.MustParseAddr(vipPrefix6+"1"), 80).String()
	if err := w.Apply(mesh.State{frontend(vip, mesh.TCP): {Backends: []netip.AddrPort{a}}}); err != nil {
		t.Fatal(err)
	}
	r := runChild(t, cg, "tcp", vip, 1)[0]
	if r.Name != "a6" || r.Peer != vip {
		t.Fatalf("dial %s: %+v, want a6 with peer %s", vip, r, vip)
	}
	if orig, err := d.OriginalDestination(r.Cookie); err != nil || orig.Frontend.String() != vip || orig.Backend != a {
		t.Fatalf("original destination: %+v, %v", orig, err)
	}
}

// TestDualStackSocketToV4MappedClusterIP: an IPv6 socket that dials the
// v4-mapped form of an IPv4 ClusterIP is translated by connect6 to the
// v4-mapped endpoint, and getpeername6 shows the mapped ClusterIP.
func TestDualStackSocketToV4MappedClusterIP(t *testing.T) {
	cgroup, cg := testCgroup(t)
	_, w := openDatapath(t, cgroup)
	a := tcpServer(t, "tcp4", "a")
	vip := vipPrefix4 + "9:80"
	if err := w.Apply(mesh.State{frontend(vip, mesh.TCP): {Backends: []netip.AddrPort{a}}}); err != nil {
		t.Fatal(err)
	}
	mapped := "[::ffff:" + vipPrefix4 + "9]:80"
	r := runChild(t, cg, "tcp6-mapped", mapped, 1)[0]
	if r.Name != "a" || r.Peer != mapped {
		t.Fatalf("IPv6 socket to %s: %+v, want a with peer %s", mapped, r, mapped)
	}
}

// TestUDPThroughClusterIP: a datagram to a ClusterIP reaches an endpoint,
// and the reply comes from the ClusterIP (recvmsg), for unconnected and
// connected sockets; the cookie map has the destination.
func TestUDPThroughClusterIP(t *testing.T) {
	cgroup, cg := testCgroup(t)
	d, w := openDatapath(t, cgroup)
	a, b := udpServer(t, "udp4", "ua"), udpServer(t, "udp4", "ub")
	vip := vipPrefix4 + "3:53"
	a6 := udpServer(t, "udp6", "ua6")
	vip6 := netip.AddrPortFrom(netip.MustParseAddr(vipPrefix6+"3"), 53).String()
	if err := w.Apply(mesh.State{
		frontend(vip, mesh.UDP):  {Backends: []netip.AddrPort{a, b}},
		frontend(vip6, mesh.UDP): {Backends: []netip.AddrPort{a6}},
	}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i, r := range runChild(t, cg, "udp", vip, 10) {
		if r.Peer != vip || (r.Name != "ua" && r.Name != "ub") {
			t.Fatalf("datagram %d: %+v, want a reply of ua or ub from %s", i, r, vip)
		}
		seen[r.Name]++
		orig, err := d.OriginalDestination(r.Cookie)
		if err != nil || orig.Frontend.String() != vip || orig.Proto != mesh.UDP {
			t.Fatalf("datagram %d: original destination %+v, %v", i, orig, err)
		}
	}
	for i, r := range runChild(t, cg, "udp-connected", vip, 3) {
		if r.Peer != vip || (r.Name != "ua" && r.Name != "ub") {
			t.Fatalf("connected round trip %d: %+v, want ua or ub, peer %s", i, r, vip)
		}
	}
	r := runChild(t, cg, "udp", vip6, 1)[0]
	if r.Peer != vip6 || r.Name != "ua6" {
		t.Fatalf("IPv6 datagram: %+v, want a reply of ua6 from %s", r, vip6)
	}

	// Without endpoints sendto fails at once, as connect does.
	if err := w.Apply(mesh.State{frontend(vip, mesh.UDP): {}}); err != nil {
		t.Fatal(err)
	}
	if r := runChild(t, cg, "udp", vip, 1)[0]; r.Errno != "ECONNREFUSED" {
		t.Fatalf("datagram to a frontend without endpoints: %+v, want ECONNREFUSED", r)
	}
}

// TestOutsideTheCgroupIsUnaffected: a socket of a process outside the
// cgroup connects to the ClusterIP itself, while the same operation inside
// is translated. UDP connect sends nothing, so nothing leaves the host.
func TestOutsideTheCgroupIsUnaffected(t *testing.T) {
	cgroup, cg := testCgroup(t)
	d, w := openDatapath(t, cgroup)
	a := udpServer(t, "udp4", "ua")
	vip := vipPrefix4 + "4:53"
	if err := w.Apply(mesh.State{frontend(vip, mesh.UDP): {Backends: []netip.AddrPort{a}}}); err != nil {
		t.Fatal(err)
	}

	in := runChild(t, cg, "udp-connect-only", vip, 1)[0]
	if !strings.HasPrefix(in.Local, "127.0.0.1:") {
		t.Fatalf("inside the cgroup: local address %s, want loopback (translated to %s)", in.Local, a)
	}
	if _, err := d.OriginalDestination(in.Cookie); err != nil {
		t.Fatalf("inside the cgroup: %v", err)
	}

	// This test process is not in the cgroup, and neither is a child
	// started without CgroupFD. Without a route to the ClusterIP the
	// connect fails (ENETUNREACH), which is "not translated" too.
	outside := []result{runChild(t, nil, "udp-connect-only", vip, 1)[0]}
	if c, err := net.Dial("udp", vip); err == nil {
		defer c.Close()
		cookie, err := mesh.SocketCookie(c.(*net.UDPConn))
		if err != nil {
			t.Fatal(err)
		}
		outside = append(outside, result{Cookie: cookie, Local: c.LocalAddr().String()})
	} else if !errors.Is(err, unix.ENETUNREACH) {
		t.Fatal(err)
	}
	for _, r := range outside {
		if strings.HasPrefix(r.Local, "127.") {
			t.Errorf("outside the cgroup: local address %s: the socket was translated", r.Local)
		}
		if r.Cookie == 0 {
			continue
		}
		if _, err := d.OriginalDestination(r.Cookie); !errors.Is(err, mesh.ErrNotTranslated) {
			t.Errorf("outside the cgroup: cookie %d in the original destination map (%v)", r.Cookie, err)
		}
	}
}

// proxyServer stands in for the node mesh proxy: it answers each
// connection with the original destination the kernel recorded for the
// client's address and port, and reports the client address.
func proxyServer(t *testing.T, d *mesh.Datapath) (netip.AddrPort, <-chan netip.AddrPort) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	clients := make(chan netip.AddrPort, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peer := netip.MustParseAddrPort(c.RemoteAddr().String())
			answer := "proxy"
			if orig, err := d.SteeredOriginal(peer); err != nil {
				answer += " " + err.Error()
			} else {
				answer += " for " + orig.Frontend.String()
			}
			_, _ = c.Write([]byte(answer + "\n"))
			select {
			case clients <- peer:
			default:
			}
			// The client closes first, so its socket reaches TCP_CLOSE.
			_, _ = c.Read(make([]byte, 1))
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return netip.MustParseAddrPort(ln.Addr().String()), clients
}

// TestSteerToMeshProxy: a frontend flagged for the mesh proxy goes to the
// configured proxy address, not its endpoints; the application still sees
// the ClusterIP, the cookie map says where it was going, and the proxy
// finds the original destination from the accepted connection's peer
// address until the client's socket closes.
func TestSteerToMeshProxy(t *testing.T) {
	cgroup, cg := testCgroup(t)
	d, w := openDatapath(t, cgroup)
	ep := tcpServer(t, "tcp4", "endpoint")
	proxy, clients := proxyServer(t, d)
	vip := vipPrefix4 + "5:80"
	f := frontend(vip, mesh.TCP)
	if err := w.Apply(mesh.State{f: {Backends: []netip.AddrPort{ep}, Steer: true}}); err != nil {
		t.Fatal(err)
	}
	// Flagged but no proxy configured: balanced as any frontend.
	if r := runChild(t, cg, "tcp", vip, 1)[0]; r.Name != "endpoint" {
		t.Fatalf("steered frontend without a proxy address: %+v, want endpoint", r)
	}
	if err := d.SetProxy(proxy, netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	r := runChild(t, cg, "tcp", vip, 1)[0]
	if r.Name != "proxy for "+vip || r.Peer != vip {
		t.Fatalf("steered frontend: %+v, want the proxy naming %s, with peer %s", r, vip, vip)
	}
	orig, err := d.OriginalDestination(r.Cookie)
	want := mesh.Original{Frontend: netip.MustParseAddrPort(vip), Proto: mesh.TCP, Backend: proxy, Steered: true}
	if err != nil || orig != want {
		t.Fatalf("original destination %+v, %v; want %+v", orig, err, want)
	}
	// The client has exited: its entry goes with its socket.
	client := <-clients
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := d.SteeredOriginal(client)
		if errors.Is(err, mesh.ErrNotTranslated) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the steered entry of %s outlived its socket by 10s (%v)", client, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The flag cleared: back to the endpoints.
	if err := w.Apply(mesh.State{f: {Backends: []netip.AddrPort{ep}}}); err != nil {
		t.Fatal(err)
	}
	if r := runChild(t, cg, "tcp", vip, 1)[0]; r.Name != "endpoint" {
		t.Fatalf("after the steer flag was cleared: %+v, want endpoint", r)
	}
}
