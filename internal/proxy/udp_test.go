package proxy

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/freeport"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/poll"
)

// udpEcho is a UDP backend on loopback that answers every datagram with
// "name|the gateway's address as the backend saw it|payload", from the
// socket it came to.
type udpEcho struct {
	name string
	conn *net.UDPConn
}

func newUDPEcho(t testing.TB, name string) *udpEcho {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, udpMaxDatagram)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			reply := append([]byte(fmt.Sprintf("%s|%s|", name, from)), buf[:n]...)
			conn.WriteToUDPAddrPort(reply, from)
		}
	}()
	return &udpEcho{name: name, conn: conn}
}

func (e *udpEcho) endpoint() ir.Endpoint {
	a := e.conn.LocalAddr().(*net.UDPAddr)
	return ir.Endpoint{Address: a.IP.String(), Port: uint32(a.Port)}
}

func udpBackend(name string, weight uint32, eps ...ir.Endpoint) ir.Backend {
	return ir.Backend{Name: name, Weight: weight, Endpoints: eps}
}

func udpListener(name string, backends ...ir.Backend) ir.Listener {
	return ir.Listener{Name: name, Gateway: "default/gw", Address: "127.0.0.1", Protocol: ir.ProtocolUDP,
		VirtualHosts: []ir.VirtualHost{{Name: "default/gw/udp", Routes: []ir.Route{prefixRoute("udproute/default/r/rule/0", "/", backends...)}}}}
}

// udpClient is one client address: a connected UDP socket to the gateway.
func udpClient(t testing.TB, gw net.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, gw.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// udpExchange sends payload and waits up to wait for one reply; a connected
// client socket takes replies from the gateway's address only.
func udpExchange(c *net.UDPConn, payload []byte, wait time.Duration) ([]byte, error) {
	if _, err := c.Write(payload); err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, udpMaxDatagram+100)
	n, err := c.Read(buf)
	return buf[:n], err
}

// parseReply splits an echo reply into backend name, the gateway's source
// address at the backend, and payload.
func parseReply(t *testing.T, b []byte) (string, string, []byte) {
	t.Helper()
	parts := bytes.SplitN(b, []byte("|"), 3)
	if len(parts) != 3 {
		t.Fatalf("reply %q is not name|addr|payload", b)
	}
	return string(parts[0]), string(parts[1]), parts[2]
}

// Datagrams go both ways through one flow per client address: a client's
// datagrams leave from the same gateway socket (the backend sees one
// source), two clients get two flows (two sources), replies reach each
// client from the listener's address, a 60,000-byte datagram passes
// whole, and the collector counts flows and bytes.
func TestUDPRouteRelaysBothWays(t *testing.T) {
	echo := newUDPEcho(t, "echo")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{udpListener("udp", udpBackend("default/echo:53", 1, echo.endpoint()))}}, Options{})
	gw := p.Addr("udp")
	if gw == nil || gw.Network() != "udp" {
		t.Fatalf("listener address %v, want a UDP address", gw)
	}
	a, b := udpClient(t, gw), udpClient(t, gw)
	sources := map[*net.UDPConn]string{}
	for i := range 3 {
		for _, c := range []*net.UDPConn{a, b} {
			payload := []byte(fmt.Sprintf("datagram %d from %s", i, c.LocalAddr()))
			reply, err := udpExchange(c, payload, 5*time.Second)
			if err != nil {
				t.Fatalf("datagram %d from %s: %v", i, c.LocalAddr(), err)
			}
			name, src, got := parseReply(t, reply)
			if name != "echo" || !bytes.Equal(got, payload) {
				t.Fatalf("reply %q, want echo of %q", reply, payload)
			}
			if prev, ok := sources[c]; ok && prev != src {
				t.Errorf("client %s: datagram %d left the gateway from %s, earlier ones from %s: want one flow per client", c.LocalAddr(), i, src, prev)
			}
			sources[c] = src
		}
	}
	if sources[a] == sources[b] {
		t.Errorf("two clients share the gateway source %s: want a flow each", sources[a])
	}
	big := bytes.Repeat([]byte("x"), 60000)
	reply, err := udpExchange(a, big, 5*time.Second)
	if err != nil {
		t.Fatalf("60,000-byte datagram: %v", err)
	}
	if _, _, got := parseReply(t, reply); !bytes.Equal(got, big) {
		t.Fatalf("60,000-byte datagram came back as %d bytes", len(got))
	}

	if got := gathered(t, p.reg, "rauta_udp_flows", "listener", "udp"); got != 2 {
		t.Errorf("open flows %v, want 2", got)
	}
	if got := gathered(t, p.reg, "rauta_udp_flows_total", "listener", "udp"); got != 2 {
		t.Errorf("flows started %v, want 2", got)
	}
	var sent float64
	for i := range 3 {
		for _, c := range []*net.UDPConn{a, b} {
			sent += float64(len(fmt.Sprintf("datagram %d from %s", i, c.LocalAddr())))
		}
	}
	if got := gathered(t, p.reg, "rauta_udp_bytes_total", "listener", "udp", "direction", "received"); got != sent+60000 {
		t.Errorf("bytes received from clients %v, want %v", got, sent+60000)
	}
	// The relay counts a reply after sending it, so the client may read
	// the last one before it is counted.
	var got float64
	for i := 0; i < 500; i++ {
		if got = gathered(t, p.reg, "rauta_udp_bytes_total", "listener", "udp", "direction", "sent"); got > sent+60000 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got <= sent+60000 {
		t.Errorf("bytes sent to clients %v, want more than the %v received (the echo adds a prefix)", got, sent+60000)
	}
}

// Each flow draws its backend by weight (weight 0 takes none), and
// keeps it: a client's later datagrams go where its first went.
func TestUDPRouteWeights(t *testing.T) {
	heavy, light, none := newUDPEcho(t, "heavy"), newUDPEcho(t, "light"), newUDPEcho(t, "none")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{udpListener("udp",
		udpBackend("default/heavy:53", 3, heavy.endpoint()),
		udpBackend("default/light:53", 1, light.endpoint()),
		udpBackend("default/none:53", 0, none.endpoint()))}}, Options{})
	gw := p.Addr("udp")
	const flows = 400
	counts := map[string]int{}
	for i := range flows {
		c := udpClient(t, gw)
		reply, err := udpExchange(c, []byte("first"), 5*time.Second)
		if err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
		first, _, _ := parseReply(t, reply)
		counts[first]++
		if i%50 == 0 {
			reply, err := udpExchange(c, []byte("second"), 5*time.Second)
			if err != nil {
				t.Fatalf("flow %d, second datagram: %v", i, err)
			}
			if again, _, _ := parseReply(t, reply); again != first {
				t.Fatalf("flow %d moved from %s to %s", i, first, again)
			}
		}
		c.Close()
	}
	if counts["none"] != 0 {
		t.Errorf("the weight-0 backend got %d flows", counts["none"])
	}
	// 3:1 expects 300:100; binomial sd is about 8.7, so 240..360 is
	// about 7 sd either way.
	if h := counts["heavy"]; h < 240 || h > 360 || counts["heavy"]+counts["light"] != flows {
		t.Errorf("flows per backend %v, want about 300 heavy and 100 light", counts)
	}
}

// A flow ends after UDPIdleTimeout without a datagram either way: the
// table frees it (a backend that never answers included), and the
// client's next datagram starts a new flow from a new gateway socket.
func TestUDPFlowIdleTimeout(t *testing.T) {
	echo := newUDPEcho(t, "echo")
	silent, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	sa := silent.LocalAddr().(*net.UDPAddr)
	const idle = 300 * time.Millisecond
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{
		udpListener("udp", udpBackend("default/echo:53", 1, echo.endpoint())),
		udpListener("silent", udpBackend("default/silent:53", 1, ir.Endpoint{Address: sa.IP.String(), Port: uint32(sa.Port)})),
	}}, Options{UDPIdleTimeout: idle})

	c := udpClient(t, p.Addr("udp"))
	reply, err := udpExchange(c, []byte("one"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, src1, _ := parseReply(t, reply)

	// The backend that never answers gets the datagram; nothing comes back.
	quiet := udpClient(t, p.Addr("silent"))
	if _, err := quiet.Write([]byte("hello?")); err != nil {
		t.Fatal(err)
	}
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	if n, _, err := silent.ReadFromUDP(buf); err != nil || string(buf[:n]) != "hello?" {
		t.Fatalf("silent backend read %q, %v", buf[:n], err)
	}
	for _, l := range []string{"udp", "silent"} {
		if got := gathered(t, p.reg, "rauta_udp_flows", "listener", l); got != 1 {
			t.Fatalf("listener %s: open flows %v before the idle timeout, want 1", l, got)
		}
	}
	// Both flows end within the timeout and generous slack.
	if !poll.Until(idle+5*time.Second, func() bool {
		return gathered(t, p.reg, "rauta_udp_flows", "listener", "udp") == 0 &&
			gathered(t, p.reg, "rauta_udp_flows", "listener", "silent") == 0
	}) {
		t.Fatalf("flows still open %v after the idle timeout", gathered(t, p.reg, "rauta_udp_flows"))
	}
	reply, err = udpExchange(c, []byte("two"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, src2, _ := parseReply(t, reply); src2 == src1 {
		t.Errorf("the datagram after expiry left from the expired flow's socket %s", src1)
	}
	if got := gathered(t, p.reg, "rauta_udp_flows_total", "listener", "udp"); got != 2 {
		t.Errorf("flows started %v, want 2", got)
	}
}

// A listener holds at most MaxUDPFlows flows: a datagram that would start
// one more is dropped and counted, and the flows already open keep
// working.
func TestUDPFlowLimit(t *testing.T) {
	echo := newUDPEcho(t, "echo")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{udpListener("udp", udpBackend("default/echo:53", 1, echo.endpoint()))}}, Options{MaxUDPFlows: 2})
	gw := p.Addr("udp")
	a, b, c := udpClient(t, gw), udpClient(t, gw), udpClient(t, gw)
	for _, cl := range []*net.UDPConn{a, b} {
		if _, err := udpExchange(cl, []byte("in"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write([]byte("over")); err != nil {
		t.Fatal(err)
	}
	if !poll.Until(5*time.Second, func() bool {
		return gathered(t, p.reg, "rauta_udp_flows_refused_total", "listener", "udp") == 1
	}) {
		t.Fatal("the third client's datagram was not refused")
	}
	if got := gathered(t, p.reg, "rauta_udp_datagrams_dropped_total", "listener", "udp", "reason", "flow_limit"); got != 1 {
		t.Errorf("datagrams dropped at the flow limit %v, want 1", got)
	}
	if got := gathered(t, p.reg, "rauta_udp_flows", "listener", "udp"); got != 2 {
		t.Errorf("open flows %v, want 2", got)
	}
	if _, err := udpExchange(a, []byte("still"), 5*time.Second); err != nil {
		t.Errorf("an open flow stopped working at the limit: %v", err)
	}
}

// An endpoint whose port is closed answers ICMP port unreachable: the flow
// ends, the endpoint is ejected, and the client's next datagram goes to
// the other endpoint.
func TestUDPRefusedEndpointIsEjected(t *testing.T) {
	echo := newUDPEcho(t, "echo")
	closed, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dead := closed.LocalAddr().(*net.UDPAddr)
	closed.Close()
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{udpListener("udp", udpBackend("default/svc:53", 1,
		ir.Endpoint{Address: dead.IP.String(), Port: uint32(dead.Port)}, echo.endpoint()))}}, Options{})
	gw := p.Addr("udp")
	// Round robin sends some of four clients to the dead endpoint first.
	for i := range 4 {
		c := udpClient(t, gw)
		var err error
		for range 20 {
			if _, err = udpExchange(c, []byte("q"), 250*time.Millisecond); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("client %d never got an answer: %v", i, err)
		}
	}
	if got := gathered(t, p.reg, "rauta_upstream_ejections_total", "backend", "default/svc:53"); got < 1 {
		t.Errorf("ejections %v, want the closed endpoint ejected", got)
	}
}

// Removing the listener closes its socket and its flows at once: the port
// is free to bind and no flow is left.
func TestUDPListenerRemovedClosesFlows(t *testing.T) {
	echo := newUDPEcho(t, "echo")
	l := udpListener("udp", udpBackend("default/echo:53", 1, echo.endpoint()))
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{})
	gw := p.Addr("udp").(*net.UDPAddr)
	if _, err := udpExchange(udpClient(t, gw), []byte("x"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(&ir.Snapshot{}); err != nil {
		t.Fatal(err)
	}
	if n := p.Conns(); n != 0 {
		t.Errorf("%d flows left after the listener was removed", n)
	}
	again, err := net.ListenUDP("udp", gw)
	if err != nil {
		t.Fatalf("the listener's port is still taken: %v", err)
	}
	again.Close()
}

// A TCP and a UDP listener may share an address and port.
func TestUDPAndTCPShareAPort(t *testing.T) {
	echo := newUDPEcho(t, "echo")
	port := freeTCPAndUDPPort(t)
	u := udpListener("dns-udp", udpBackend("default/echo:53", 1, echo.endpoint()))
	u.Port = uint32(port)
	tcp := httpListener("dns-tcp", ir.VirtualHost{Name: "default/gw/tcp", Routes: []ir.Route{prefixRoute("tcproute/default/t/rule/0", "/", tcpEcho(t, "tcp"))}})
	tcp.Protocol, tcp.Port = ir.ProtocolTCP, uint32(port)
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{u, tcp}}, Options{})
	if !strings.HasSuffix(p.Addr("dns-tcp").String(), fmt.Sprint(":", port)) {
		t.Fatalf("TCP listener on %v, want port %d", p.Addr("dns-tcp"), port)
	}
	reply, err := udpExchange(udpClient(t, netUDPAddr(p.Addr("dns-udp"))), []byte("u"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if name, _, _ := parseReply(t, reply); name != "echo" {
		t.Fatalf("reply from %s", name)
	}
}

func netUDPAddr(a net.Addr) *net.UDPAddr {
	return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(a.String()))
}

// freeTCPAndUDPPort finds a port free for both TCP and UDP, outside the
// ephemeral range (internal/freeport).
func freeTCPAndUDPPort(t *testing.T) int {
	t.Helper()
	p, err := freeport.PortTCPAndUDP()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
