package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// tlsBackend is an HTTPS server with its own certificate, answering its
// name: passthrough must deliver the client's TLS to it untouched.
type tlsBackend struct {
	name string
	srv  *httptest.Server
}

func newTLSBackend(t *testing.T, name string, dnsNames ...string) *tlsBackend {
	t.Helper()
	cert := newTestCert(t, name, dnsNames)
	kp, err := tls.X509KeyPair(cert.ir.CertPEM, cert.ir.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s sni=%s", name, r.TLS.ServerName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{kp}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &tlsBackend{name: name, srv: srv}
}

func (b *tlsBackend) backend(t *testing.T, weight uint32) ir.Backend {
	return ir.Backend{Name: "default/" + b.name + ":443", Weight: weight, Endpoints: []ir.Endpoint{endpointOf(t, b.srv.Listener.Addr().String())}}
}

func passthroughListener(name string, vhosts ...ir.VirtualHost) ir.Listener {
	l := httpListener(name, vhosts...)
	l.Protocol = ir.ProtocolTLS
	return l
}

func sniRoute(name string, hostnames []string, backends ...ir.Backend) ir.Route {
	r := prefixRoute(name, "/", backends...)
	r.Hostnames = hostnames
	return r
}

// getTLS makes one HTTPS request through addr with SNI and returns the
// served certificate's common name and the body.
func getTLS(addr, sni string) (string, string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{ServerName: sni, InsecureSkipVerify: true},
		DisableKeepAlives: true,
	}}
	res, err := c.Get("https://" + addr + "/")
	if err != nil {
		return "", "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.TLS.PeerCertificates[0].Subject.CommonName, string(body), err
}

func TestTLSPassthroughRoutesBySNI(t *testing.T) {
	a := newTLSBackend(t, "alpha", "a.example.com")
	b := newTLSBackend(t, "beta", "b.example.com")
	snap := &ir.Snapshot{Listeners: []ir.Listener{passthroughListener("tls",
		ir.VirtualHost{Name: "default/gw/tls", Hostname: "*.example.com", Routes: []ir.Route{
			sniRoute("tlsroute/default/a/rule/0", []string{"a.example.com"}, a.backend(t, 1)),
			sniRoute("tlsroute/default/rest/rule/0", []string{"*.example.com"}, b.backend(t, 1)),
		}})}}
	p := startProxy(t, snap, Options{})
	addr := p.Addr("tls").String()

	for _, tc := range []struct{ sni, cert, body string }{
		{"a.example.com", "alpha", "alpha sni=a.example.com"},
		{"b.example.com", "beta", "beta sni=b.example.com"},
		{"x.example.com", "beta", "beta sni=x.example.com"},
	} {
		cn, body, err := getTLS(addr, tc.sni)
		if err != nil {
			t.Fatalf("SNI %s: %v", tc.sni, err)
		}
		// The backend's own certificate: TLS was not terminated.
		if cn != tc.cert || body != tc.body {
			t.Errorf("SNI %s: certificate %q body %q, want %q %q", tc.sni, cn, body, tc.cert, tc.body)
		}
	}
	// A name no route takes, and no name at all: the connection closes
	// without a byte of any backend.
	for _, sni := range []string{"other.test", ""} {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err == nil {
			conn.Close()
			t.Errorf("SNI %q: handshake succeeded, want the connection closed", sni)
		}
	}
}

func TestTLSPassthroughRefusesWhatIsNotTLS(t *testing.T) {
	a := newTLSBackend(t, "alpha", "a.example.com")
	snap := &ir.Snapshot{Listeners: []ir.Listener{passthroughListener("tls",
		ir.VirtualHost{Name: "default/gw/tls", Routes: []ir.Route{sniRoute("r", nil, a.backend(t, 1))}})}}
	p := startProxy(t, snap, Options{ReadHeaderTimeout: 300 * time.Millisecond})
	addr := p.Addr("tls").String()

	// Plain HTTP gets the connection closed, not relayed.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 64)); n != 0 || err == nil {
		t.Errorf("plain HTTP: read %d bytes, err %v; want the connection closed", n, err)
	}
	// A client that never finishes its ClientHello is cut at the head
	// timeout.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.Write([]byte{22, 3, 1, 0, 200, 1}) // a record of 200 bytes, 1 sent
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := slow.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("stalled ClientHello not cut: %v after %v", err, time.Since(start))
	}
}

func TestTLSPassthroughFailsOverAndSplitsByWeight(t *testing.T) {
	a := newTLSBackend(t, "alpha", "a.example.com")
	b := newTLSBackend(t, "beta", "a.example.com")
	// A dead endpoint beside a live one: a refused connect moves to the
	// other endpoint, so no connection is lost.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadEP := endpointOf(t, dead.Addr().String())
	dead.Close()
	withDead := a.backend(t, 1)
	withDead.Endpoints = append(withDead.Endpoints, deadEP)
	snap := &ir.Snapshot{Listeners: []ir.Listener{passthroughListener("tls",
		ir.VirtualHost{Name: "default/gw/tls", Routes: []ir.Route{sniRoute("r", nil, withDead, b.backend(t, 3))}})}}
	p := startProxy(t, snap, Options{})
	addr := p.Addr("tls").String()
	counts := map[string]int{}
	for i := range 80 {
		cn, _, err := getTLS(addr, "a.example.com")
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		counts[cn]++
	}
	// Weights 1:3 over 80 connections: beta ~60; a broken split puts
	// it near 40 or 80.
	if counts["beta"] < 45 || counts["beta"] > 75 || counts["alpha"] == 0 {
		t.Errorf("split %v, want about 20 alpha / 60 beta", counts)
	}
	if n := p.counter(t, "rauta_upstream_ejections_total"); n < 1 {
		t.Errorf("the dead endpoint was not ejected (%v)", n)
	}
}

func TestTLSPassthroughIdleTimeoutAndHalfClose(t *testing.T) {
	// A raw TCP backend behind a passthrough route: after the client's
	// hello it echoes what it reads until EOF, then writes "bye" and
	// closes (a half-close must reach it).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, _, err := readClientHello(c); err != nil {
					return
				}
				io.Copy(c, c)
				io.WriteString(c, "bye")
			}()
		}
	}()
	be := ir.Backend{Name: "default/raw:9", Weight: 1, Endpoints: []ir.Endpoint{endpointOf(t, ln.Addr().String())}}
	snap := &ir.Snapshot{Listeners: []ir.Listener{passthroughListener("tls",
		ir.VirtualHost{Name: "default/gw/tls", Routes: []ir.Route{sniRoute("r", nil, be)}})}}
	p := startProxy(t, snap, Options{StreamIdleTimeout: 400 * time.Millisecond})
	addr := p.Addr("tls").String()

	hello := clientHelloBytes(t, "raw.example.com")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write(hello)
	io.WriteString(conn, "ping")
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != "pingbye" {
		t.Fatalf("half-closed relay returned %q, %v; want pingbye", got, err)
	}

	// Idle both ways: closed after StreamIdleTimeout.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.Write(hello)
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = idle.Read(make([]byte, 1))
	if err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("idle relay not closed by the gateway: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("closed after %v, before the idle timeout", d)
	}
	// An active connection outlives the idle timeout.
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busy.Write(hello)
	buf := make([]byte, 4)
	for range 8 {
		time.Sleep(100 * time.Millisecond)
		io.WriteString(busy, "tick")
		busy.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(busy, buf); err != nil || string(buf) != "tick" {
			t.Fatalf("active relay broken after idle-timeout span: %q %v", buf, err)
		}
	}
}

// tcpEcho is a TCP backend that writes its name, then echoes until EOF.
func tcpEcho(t *testing.T, name string) ir.Backend {
	addr := serveTCP(t, func(c net.Conn) {
		io.WriteString(c, name+"\n")
		io.Copy(c, c)
	})
	return ir.Backend{Name: "default/" + name + ":9", Weight: 1, Endpoints: []ir.Endpoint{endpointOf(t, addr)}}
}

// serveTCP runs serve on its own goroutine for every connection a new
// loopback listener accepts, closing the connection after; it returns the
// listener's address.
func serveTCP(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestTCPRouteRelays(t *testing.T) {
	first, second := tcpEcho(t, "first"), tcpEcho(t, "second")
	l := httpListener("tcp", ir.VirtualHost{Name: "default/gw/tcp", Routes: []ir.Route{
		prefixRoute("tcproute/default/first/rule/0", "/", first),
		prefixRoute("tcproute/default/second/rule/0", "/", second),
	}})
	l.Protocol = ir.ProtocolTCP
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{})
	for i := range 3 {
		conn, err := net.Dial("tcp", p.Addr("tcp").String())
		if err != nil {
			t.Fatal(err)
		}
		// The client speaks first or not at all: the backend's greeting
		// comes through before any client byte (nothing is peeked).
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		greeting := make([]byte, len("first\n"))
		if _, err := io.ReadFull(conn, greeting); err != nil || string(greeting) != "first\n" {
			t.Fatalf("connection %d: greeting %q, %v; want the first route's backend", i, greeting, err)
		}
		fmt.Fprintf(conn, "payload %d", i)
		conn.(*net.TCPConn).CloseWrite()
		rest, err := io.ReadAll(conn)
		conn.Close()
		if err != nil || string(rest) != fmt.Sprintf("payload %d", i) {
			t.Fatalf("connection %d: echoed %q, %v", i, rest, err)
		}
	}
}

// TestTLSRouteTerminateAndPassthroughOnOnePort: one TLS socket with a
// Terminate virtual host (the gateway's certificate, plaintext relayed to a
// TCP backend) and a Passthrough one (the backend's own TLS).
func TestTLSRouteTerminateAndPassthroughOnOnePort(t *testing.T) {
	plain := tcpEcho(t, "plain")
	secure := newTLSBackend(t, "secure", "abc.example.com")
	gwCert := newTestCert(t, "gateway", []string{"tls.example.com"}, "tls.example.com")
	l := passthroughListener("tls",
		ir.VirtualHost{Name: "default/gw/terminate", Hostname: "tls.example.com", TerminateTLS: true,
			Routes: []ir.Route{sniRoute("tlsroute/default/term/rule/0", nil, plain)}},
		ir.VirtualHost{Name: "default/gw/passthrough", Hostname: "abc.example.com",
			Routes: []ir.Route{sniRoute("tlsroute/default/pass/rule/0", nil, secure.backend(t, 1))}})
	l.Certificates = []ir.Certificate{gwCert.ir}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{})
	addr := p.Addr("tls").String()

	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: "tls.example.com", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "gateway" {
		t.Errorf("terminated by certificate %q, want the listener's", cn)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	greeting := make([]byte, len("plain\n"))
	if _, err := io.ReadFull(conn, greeting); err != nil || string(greeting) != "plain\n" {
		t.Fatalf("greeting through the terminated TLS: %q, %v", greeting, err)
	}
	io.WriteString(conn, "over tls")
	echo := make([]byte, len("over tls"))
	if _, err := io.ReadFull(conn, echo); err != nil || string(echo) != "over tls" {
		t.Fatalf("echo %q, %v", echo, err)
	}

	cn, body, err := getTLS(addr, "abc.example.com")
	if err != nil || cn != "secure" || body != "secure sni=abc.example.com" {
		t.Errorf("passthrough beside terminate: %q %q %v", cn, body, err)
	}
}
