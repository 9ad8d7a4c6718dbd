package mesh

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/translate"
)

func route(name string) ir.Route {
	return ir.Route{Name: name, Match: ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"}}}
}

// TestBuildGammaSteersRoutedFrontends: the TCP frontends of a routed
// Service port, of a family the proxy has an address for, are steered and
// get a relay, a producer and a consumer listener; everything else is
// left alone.
func TestBuildGammaSteersRoutedFrontends(t *testing.T) {
	v4 := Frontend{Addr: netip.MustParseAddr("10.96.0.10"), Port: 80, Proto: TCP}
	v6 := Frontend{Addr: netip.MustParseAddr("fd00::10"), Port: 80, Proto: TCP}
	dns := Frontend{Addr: netip.MustParseAddr("10.96.0.10"), Port: 53, Proto: UDP}
	admin := Frontend{Addr: netip.MustParseAddr("10.96.0.10"), Port: 81, Proto: TCP}
	other := Frontend{Addr: netip.MustParseAddr("10.96.0.20"), Port: 80, Proto: TCP}
	ep := netip.MustParseAddrPort("10.1.0.1:8080")
	st := State{
		v4: {Service: "store/echo", Backends: []netip.AddrPort{ep}}, v6: {Service: "store/echo"},
		dns: {Service: "store/echo"}, admin: {Service: "store/echo"}, other: {Service: "store/other"},
	}
	mr := translate.MeshResult{Ports: []translate.MeshPort{{
		Service: "store/echo", Port: 80,
		Producer:  []ir.Route{route("producer")},
		Consumers: []translate.MeshConsumer{{Namespace: "client", Routes: []ir.Route{route("consumer")}}},
	}}}
	g := buildGamma(st, mr, true, false)

	for f, want := range map[Frontend]bool{v4: true, v6: false, dns: false, admin: false, other: false} {
		if st[f].Steer != want {
			t.Errorf("%s: Steer %v, want %v", f, st[f].Steer, want)
		}
	}
	if len(g.frontends) != 1 {
		t.Fatalf("frontends %v, want only %s", g.frontends, v4)
	}
	fr := g.frontends[netip.AddrPortFrom(v4.Addr, v4.Port)]
	if fr == nil || !fr.sniff {
		t.Fatalf("frontend %s: %+v, want routes and sniffing (no appProtocol)", v4, fr)
	}
	listeners := map[string]ir.Listener{}
	for _, l := range g.snap.Listeners {
		listeners[listenKey(l.Address, l.Port)] = l
	}
	for _, c := range []struct {
		ns       string
		http     bool
		protocol ir.Protocol
		route    string
	}{
		{"client", true, ir.ProtocolHTTP, "consumer"},
		{"other", true, ir.ProtocolHTTP, "producer"},
		{"", true, ir.ProtocolHTTP, "producer"},
	} {
		key, isHTTP := fr.pick(c.ns)
		l, ok := listeners[key]
		if !ok || isHTTP != c.http || l.Protocol != c.protocol || l.VirtualHosts[0].Routes[0].Name != c.route {
			t.Errorf("client namespace %q: listener %q (HTTP %v) %+v, want %s route %s", c.ns, key, isHTTP, l, c.protocol, c.route)
		}
	}
	direct, ok := listeners[fr.direct]
	if !ok || direct.Protocol != ir.ProtocolTCP {
		t.Fatalf("relay listener %q: %+v", fr.direct, direct)
	}
	if eps := direct.VirtualHosts[0].Routes[0].Backends[0].Endpoints; len(eps) != 1 || eps[0] != (ir.Endpoint{Address: "10.1.0.1", Port: 8080}) {
		t.Errorf("relay endpoints %v, want the frontend's endpoint %s", eps, ep)
	}

	// Without producer routes, clients of other namespaces are relayed.
	st2 := State{v4: {Service: "store/echo"}}
	mr.Ports[0].Producer = nil
	mr.Ports[0].AppProtocol = "http"
	g2 := buildGamma(st2, mr, true, true)
	fr2 := g2.frontends[netip.AddrPortFrom(v4.Addr, v4.Port)]
	if key, isHTTP := fr2.pick("other"); key != fr2.direct || isHTTP {
		t.Errorf("no producer route: namespace other gets %q (HTTP %v), want the relay %q", key, isHTTP, fr2.direct)
	}
	if fr2.sniff {
		t.Error("appProtocol http: want no sniffing")
	}

	// While the maps change from g to g2, both are served.
	u := union(g, g2)
	if !covers(u, g) || !covers(u, g2) {
		t.Error("the union does not serve every listener of both")
	}
	if covers(g2, g) {
		t.Error("g2 lacks g's producer listener, but covers says it has it")
	}
}

func TestHTTPVerdict(t *testing.T) {
	for in, want := range map[string]verdict{
		"GET / HTTP/1.1\r\n":      isHTTPRequest,
		"OPTIONS * HTTP/1.1":      isHTTPRequest,
		"GET http://x/ HTTP/1.1":  isHTTPRequest,
		"PRI * HTTP/2.0\r\n\r\n":  isHTTPRequest,
		"PROPFIND /dav HTTP/1.1":  isHTTPRequest,
		"GE":                      needMore,
		"GET":                     needMore,
		"GET ":                    needMore,
		"get / HTTP/1.1":          notHTTP,
		"\x16\x03\x01\x02\x00":    notHTTP,
		"SSH-2.0-OpenSSH":         notHTTP,
		"GET  / HTTP/1.1":         notHTTP,
		"ABCDEFGHIJKLMNOPQRSTUV ": notHTTP,
		"ABCDEFGHIJKLMNOPQRSTUVW": notHTTP,
	} {
		if got := httpVerdict([]byte(in)); got != want {
			t.Errorf("httpVerdict(%q) = %d, want %d", in, got, want)
		}
	}
}

// FuzzHTTPVerdict: any bytes are classified without panicking, and a
// request is only seen when a method token and a space start them.
func FuzzHTTPVerdict(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte("\x16\x03\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if httpVerdict(b) == isHTTPRequest {
			i := 0
			for i < len(b) && b[i] >= 'A' && b[i] <= 'Z' {
				i++
			}
			if i == 0 || i >= len(b) || b[i] != ' ' {
				t.Fatalf("%q classified as HTTP", b)
			}
		}
	})
}

// TestSniffHTTP: a request is detected and the bytes read are handed back
// (the rest stays in the socket), also when it arrives in pieces; TLS and
// silence are not HTTP; a client that half-closes after a few bytes is
// not HTTP and its bytes are handed back; one that closes having sent
// nothing is an error.
func TestSniffHTTP(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pair := func(send string, close bool) (client, server *net.TCPConn) {
		t.Helper()
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if send != "" {
			if _, err := io.WriteString(c, send); err != nil {
				t.Fatal(err)
			}
		}
		if close {
			c.(*net.TCPConn).CloseWrite() //nolint:errcheck // the sniff sees it or fails
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return c.(*net.TCPConn), s.(*net.TCPConn)
	}
	// sniffed is what sniffHTTP handed back plus what is left in the
	// socket up to want's length.
	sniffed := func(s *net.TCPConn, n int, buf []byte, want string) string {
		t.Helper()
		rest := make([]byte, len(want)-n)
		_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(s, rest); err != nil {
			t.Fatalf("after sniffing %q: reading the rest: %v", buf[:n], err)
		}
		return string(buf[:n]) + string(rest)
	}
	buf := make([]byte, 4096)
	const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	_, s := pair(req, false)
	n, ok, err := sniffHTTP(s, 5*time.Second, buf)
	if !ok || err != nil {
		t.Fatalf("request: %v %v, want HTTP", ok, err)
	}
	if got := sniffed(s, n, buf, req); got != req {
		t.Fatalf("request: handed back and left %q, want %q", got, req)
	}

	// In pieces: "PO", "ST /x", the rest; each read waits for more.
	c, s := pair("PO", false)
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(20 * time.Millisecond)
		io.WriteString(c, "ST /x") //nolint:errcheck // the sniff reports it
		time.Sleep(20 * time.Millisecond)
		io.WriteString(c, " HTTP/1.1\r\nHost: x\r\n\r\n") //nolint:errcheck // as above
	}()
	n, ok, err = sniffHTTP(s, 5*time.Second, buf)
	<-done
	if !ok || err != nil {
		t.Fatalf("request in pieces: %v %v, want HTTP", ok, err)
	}
	const pieces = "POST /x HTTP/1.1\r\nHost: x\r\n\r\n"
	if got := sniffed(s, n, buf, pieces); got != pieces {
		t.Fatalf("request in pieces: handed back and left %q, want %q", got, pieces)
	}

	const hello = "\x16\x03\x01\x02\x00\x01"
	_, s = pair(hello, false)
	if n, ok, err := sniffHTTP(s, 5*time.Second, buf); ok || err != nil || string(buf[:n]) != hello {
		t.Errorf("TLS ClientHello: %v %v, handed back %q, want not HTTP and the hello", ok, err, buf[:n])
	}
	_, s = pair("", false)
	if n, ok, err := sniffHTTP(s, 50*time.Millisecond, buf); ok || err != nil || n != 0 {
		t.Errorf("silent client: %v %v %d bytes, want not HTTP once the wait ends", ok, err, n)
	}
	_, s = pair("GE", true)
	if n, ok, err := sniffHTTP(s, 5*time.Second, buf); ok || err != nil || string(buf[:n]) != "GE" {
		t.Errorf("half-closed after \"GE\": %v %v, handed back %q, want not HTTP and \"GE\"", ok, err, buf[:n])
	}
	_, s = pair("", true)
	if _, _, err := sniffHTTP(s, 5*time.Second, buf); err == nil {
		t.Error("client that closed: want an error")
	}
}
