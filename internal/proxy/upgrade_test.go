package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/false-systems/rauta/internal/ir"
)

// rawUpgradeBackend answers every connection's first request with answer,
// in one write, then echoes what follows.
func rawUpgradeBackend(t *testing.T, answer string) ir.Backend {
	addr := serveTCP(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		if _, err := io.WriteString(c, answer); err != nil {
			return
		}
		io.Copy(c, br)
	})
	return ir.Backend{Name: "default/raw:80", Weight: 1, Endpoints: []ir.Endpoint{endpointOf(t, addr)}}
}

// upgradeRequest sends an Upgrade: raw request on a new connection and
// returns it with the response read from it.
func upgradeRequest(t *testing.T, addr string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: raw\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, br, resp
}

// A backend that sends informational responses before its 101, and its
// first bytes of the new protocol in the same write as the 101 head: the
// client gets the 101 and then those bytes, then the tunnel echoes.
func TestUpgradeFirstBytesWithTheHead(t *testing.T) {
	b := rawUpgradeBackend(t, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"+
		"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: raw\r\n\r\nHELLO")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", b)))}}, Options{})
	c, br, resp := upgradeRequest(t, p.Addr("l").String())
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "raw" {
		t.Fatalf("status %d, Upgrade %q; want 101 raw", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "HELLO" {
		t.Fatalf("first bytes %q, %v; want the backend's HELLO", got, err)
	}
	io.WriteString(c, "ping")
	got = make([]byte, 4)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo %q, %v", got, err)
	}
}

// A backend's answer to an upgrade that is not 101 is relayed as a
// response; one whose head passes MaxResponseHeaderBytes is a 502.
func TestUpgradeDeclinedAndOversizedHead(t *testing.T) {
	declined := rawUpgradeBackend(t, "HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\nX-Why: no\r\n\r\nno way!")
	huge := rawUpgradeBackend(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: raw\r\nX-Big: "+
		strings.Repeat("b", 4<<10)+"\r\n\r\n")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{
		httpListener("declined", catchAll(prefixRoute("d", "/", declined))),
		httpListener("huge", catchAll(prefixRoute("h", "/", huge))),
	}}, Options{MaxResponseHeaderBytes: 2 << 10})
	_, _, resp := upgradeRequest(t, p.Addr("declined").String())
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Why") != "no" || string(body) != "no way!" || err != nil {
		t.Fatalf("declined: %d %v %q %v; want the backend's 403 relayed", resp.StatusCode, resp.Header, body, err)
	}
	_, _, resp = upgradeRequest(t, p.Addr("huge").String())
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("oversized 101 head: status %d, want 502", resp.StatusCode)
	}
}

// An upgraded connection that moves no byte for UpgradeIdleTimeout is
// closed; one that keeps talking is not.
func TestWebSocketIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	b := newWSEchoBackend(t, "", nil)
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("ws", "/", b)))}},
		Options{UpgradeIdleTimeout: idle})
	c, _, err := websocket.DefaultDialer.Dial("ws://"+p.Addr("l").String()+"/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 8 { // 8 x 100 ms: longer than the idle timeout
		if err := c.WriteMessage(websocket.TextMessage, []byte("m")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatalf("message %d: %v; closed while talking", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	quiet := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = c.ReadMessage()
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("an idle upgraded connection was not closed: %v", err)
	}
	if waited := time.Since(quiet); waited < idle-100*time.Millisecond {
		t.Fatalf("closed %s after the last message, before the idle timeout %s", waited, idle)
	}
}

// A WebSocket to a backend with TLS settings (BackendTLSPolicy) is
// upgraded over TLS with the policy's name checked, and refused (502) when
// the backend's certificate does not verify.
func TestWebSocketToTLSBackend(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	serve := func(cert tls.Certificate) string {
		srv := httptest.NewUnstartedServer(wsEcho("tls:", nil)) // serves TLS only
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	good := serve(ca.leaf(t, []string{"ws.example.com"}))
	untrusted := serve(other.leaf(t, []string{"ws.example.com"}))
	policy := &ir.BackendTLS{ServerName: "ws.example.com", CACertPEM: ca.pem}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(
		prefixRoute("good", "/good", tlsIRBackend(t, good, policy)),
		prefixRoute("bad", "/bad", tlsIRBackend(t, untrusted, policy)),
	))}}, Options{})
	c, _, err := websocket.DefaultDialer.Dial("ws://"+p.Addr("l").String()+"/good", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, []byte("hi"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, got, err := c.ReadMessage(); err != nil || string(got) != "tls:hi" {
		t.Fatalf("got %q, %v; want the backend's echo over TLS", got, err)
	}
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+p.Addr("l").String()+"/bad", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("untrusted backend: %v, %v; want 502", resp, err)
	}
}

// A backend that closes an upgraded connection is seen closing by the
// client (EOF after its last bytes), without the client closing first.
func TestUpgradeBackendCloseReachesClient(t *testing.T) {
	addr := serveTCP(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: raw\r\n\r\n")
		time.Sleep(50 * time.Millisecond) // the bye and the close after the tunnel started
		io.WriteString(c, "bye")
	})
	b := ir.Backend{Name: "default/raw:80", Weight: 1, Endpoints: []ir.Endpoint{endpointOf(t, addr)}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", b)))}}, Options{})
	_, br, resp := upgradeRequest(t, p.Addr("l").String())
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	got, err := io.ReadAll(br)
	if err != nil || string(got) != "bye" {
		t.Fatalf("read %q, %v; want the backend's bye, then EOF", got, err)
	}
}
