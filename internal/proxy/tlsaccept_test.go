package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/false-systems/rauta/internal/ir"
)

// dialTLS opens a TLS connection to addr with the server name and ALPN
// protocols given, certificate unchecked (the tests' certificates are
// self-signed).
func dialTLS(t *testing.T, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.InsecureSkipVerify = true
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTLSHandedOffRequestKeepsTLS: a request the HTTP/1.1 engine hands to
// net/http (HTTP/1.0 here) on an HTTPS connection is still checked against
// the TLS server name (421) and forwarded as https.
func TestTLSHandedOffRequestKeepsTLS(t *testing.T) {
	be := newEchoBackend(t, "one")
	two := newEchoBackend(t, "two")
	cert := newTestCert(t, "shared", []string{"example.org", "second.example.org"}, "")
	l := httpsListener("tls", []ir.Certificate{cert.ir},
		ir.VirtualHost{Name: "default/gw/second", Hostname: "second.example.org", Routes: []ir.Route{prefixRoute("two", "/", two.backend(1))}},
		ir.VirtualHost{Name: "default/gw/first", Hostname: "example.org", Routes: []ir.Route{prefixRoute("one", "/", be.backend(1))}})
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{})
	for _, tc := range []struct {
		proto, host string
		status      int
	}{
		{"HTTP/1.0", "example.org", 200},
		{"HTTP/1.0", "second.example.org", 421},
		{"HTTP/1.1", "example.org", 200},
		{"HTTP/1.1", "second.example.org", 421},
	} {
		c := dialTLS(t, p.Addr("tls").String(), &tls.Config{ServerName: "example.org"})
		io.WriteString(c, "GET /x "+tc.proto+"\r\nHost: "+tc.host+"\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s Host %s: %v", tc.proto, tc.host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s Host %s: status %d (%q), want %d", tc.proto, tc.host, resp.StatusCode, body, tc.status)
		}
		if tc.status == 200 && !contains(string(body), `"X-Forwarded-Proto":["https"]`) {
			t.Errorf("%s: the backend saw %q, want X-Forwarded-Proto https", tc.proto, body)
		}
	}
}

// TestTLSALPN: the protocol ALPN picks is the one served, and a client
// that offers none gets HTTP/1.1.
func TestTLSALPN(t *testing.T) {
	be := newEchoBackend(t, "a")
	cert := newTestCert(t, "c", []string{"app.example.com"}, "")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpsListener("tls", []ir.Certificate{cert.ir},
		catchAll(prefixRoute("r", "/", be.backend(1))))}}, Options{})
	for _, tc := range []struct {
		offer []string
		want  string
	}{{nil, ""}, {[]string{"http/1.1"}, "http/1.1"}, {[]string{"h2", "http/1.1"}, "h2"}, {[]string{"h2"}, "h2"}} {
		c := dialTLS(t, p.Addr("tls").String(), &tls.Config{NextProtos: tc.offer})
		if got := c.ConnectionState().NegotiatedProtocol; got != tc.want {
			t.Errorf("offered %q: negotiated %q, want %q", tc.offer, got, tc.want)
		}
		if tc.want == "h2" {
			// The HTTP/2 server answers the preface with its SETTINGS.
			io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
			var head [9]byte
			if _, err := io.ReadFull(c, head[:]); err != nil || head[3] != 0x4 {
				t.Errorf("offered %q: first frame %x, %v; want SETTINGS", tc.offer, head, err)
			}
			continue
		}
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("offered %q: %v %v, want 200", tc.offer, resp, err)
		}
	}
}

// TestTLSResumption: TLS 1.2 and 1.3 clients resume their sessions, also
// after an Apply that keeps the socket (the ticket keys live with it).
func TestTLSResumption(t *testing.T) {
	be := newEchoBackend(t, "a")
	cert := newTestCert(t, "c", []string{"app.example.com"}, "")
	snap := func(prefix string) *ir.Snapshot {
		return &ir.Snapshot{Listeners: []ir.Listener{httpsListener("tls", []ir.Certificate{cert.ir},
			catchAll(prefixRoute("r", prefix, be.backend(1))))}}
	}
	p := startProxy(t, snap("/"), Options{})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := &tls.Config{ServerName: "app.example.com", MinVersion: v, MaxVersion: v,
			ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		get := func() bool {
			c := dialTLS(t, p.Addr("tls").String(), cfg)
			// A request and its answer: TLS 1.3 tickets come after the
			// handshake.
			io.WriteString(c, "GET /x HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("TLS %x: %v %v", v, resp, err)
			}
			io.Copy(io.Discard, resp.Body)
			return c.ConnectionState().DidResume
		}
		if get() {
			t.Errorf("TLS %x: the first handshake resumed", v)
		}
		if !get() {
			t.Errorf("TLS %x: the second handshake did not resume", v)
		}
		if err := p.Apply(snap("/x")); err != nil {
			t.Fatal(err)
		}
		if !get() {
			t.Errorf("TLS %x: no resumption after an Apply that kept the socket", v)
		}
	}
}

// TestTLSHandshakeBounded: a client that connects and sends no
// ClientHello is closed after the head's read timeout, and a handshake in
// progress counts as a connection.
func TestTLSHandshakeBounded(t *testing.T) {
	cert := newTestCert(t, "c", []string{"a"}, "")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpsListener("tls", []ir.Certificate{cert.ir})}},
		Options{ReadHeaderTimeout: time.Second}) // long enough to see it counted on a busy machine
	c, err := net.Dial("tcp", p.Addr("tls").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	end := time.Now().Add(slack)
	for p.Conns() == 0 && time.Now().Before(end) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := p.Conns(); n != 1 {
		t.Errorf("%d connections while one handshakes, want 1", n)
	}
	c.SetReadDeadline(time.Now().Add(slack))
	if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read %d bytes, %v; want the proxy to close the silent connection (EOF)", n, err)
	}
}

// TestTLSPlainHTTPOnHTTPSPort: a clear-text HTTP request on an HTTPS port
// gets a 400 that says so, as net/http answered it.
func TestTLSPlainHTTPOnHTTPSPort(t *testing.T) {
	cert := newTestCert(t, "c", []string{"a"}, "")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpsListener("tls", []ir.Certificate{cert.ir})}}, Options{})
	c, err := net.Dial("tcp", p.Addr("tls").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(slack))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	got, _ := io.ReadAll(c)
	if want := "HTTP/1.0 400 Bad Request"; !contains(string(got), want, "HTTPS server") {
		t.Errorf("answer %q, want %q saying an HTTPS server got HTTP", got, want)
	}
}

// TestTLSWebSocket: a WebSocket over TLS (wss), which the HTTP/1.1 engine
// hands to net/http with the bytes it read, is upgraded and relayed both
// ways.
func TestTLSWebSocket(t *testing.T) {
	b := newWSEchoBackend(t, "echo:", nil)
	cert := newTestCert(t, "c", []string{"a"}, "")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpsListener("tls", []ir.Certificate{cert.ir},
		catchAll(prefixRoute("ws", "/ws", b)))}}, Options{})
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("wss://"+p.Addr("tls").String()+"/ws/chat", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	for i := range 3 {
		msg := fmt.Sprintf("m%d", i)
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, got, err := c.ReadMessage(); err != nil || string(got) != "echo:"+msg {
			t.Fatalf("got %q, %v; want echo:%s", got, err, msg)
		}
	}
}

// recordCounter counts the TLS application-data records a client reads.
type recordCounter struct {
	net.Conn
	pending []byte // bytes of the record header or body being read
	left    int    // body bytes of the current record still to come
	appData int
}

func (r *recordCounter) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	for b := p[:n]; len(b) > 0; {
		if r.left > 0 {
			k := min(r.left, len(b))
			r.left -= k
			b = b[k:]
			continue
		}
		need := 5 - len(r.pending)
		k := min(need, len(b))
		r.pending = append(r.pending, b[:k]...)
		b = b[k:]
		if len(r.pending) == 5 {
			if r.pending[0] == 23 {
				r.appData++
			}
			r.left = int(r.pending[3])<<8 | int(r.pending[4])
			r.pending = r.pending[:0]
		}
	}
	return n, err
}

// TestTLSResponseInOneRecord: a small answer leaves in one TLS record (one
// write), as nginx and HAProxy send it, not split at a TCP segment's size
// (crypto/tls's dynamic record sizing).
func TestTLSResponseInOneRecord(t *testing.T) {
	be := newCannedBackend(t, 2000) // head and body past one segment's 1.2 KB
	cert := newTestCert(t, "c", []string{"a"}, "")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpsListener("tls", []ir.Certificate{cert.ir},
		catchAll(prefixRoute("default/bench", "/", be.backend())))}}, Options{})
	nc, err := net.DialTimeout("tcp", p.Addr("tls").String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	rc := &recordCounter{Conn: nc}
	// TLS 1.2: only application data travels in application-data records.
	c := tls.Client(rc, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != 2000 {
		t.Fatalf("%d body bytes, %v; want 2000", n, err)
	}
	if rc.appData != 1 {
		t.Errorf("the answer came in %d records, want 1", rc.appData)
	}
}

// serveWithListener is a ConnServer (Options.Listen) like the mesh's:
// once given a serve function it serves each connection itself.
type serveWithListener struct {
	net.Listener
	mu    sync.Mutex
	serve func(net.Conn)
	ch    chan net.Conn
}

func (l *serveWithListener) ServeWith(serve func(net.Conn)) {
	l.mu.Lock()
	l.serve = serve
	l.mu.Unlock()
}

func (l *serveWithListener) Accept() (net.Conn, error) {
	c, ok := <-l.ch
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}

func (l *serveWithListener) run() {
	defer close(l.ch)
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		serve := l.serve
		l.mu.Unlock()
		if serve != nil {
			go serve(c)
			continue
		}
		l.ch <- c
	}
}

// TestTLSListenerServingItself: an HTTPS listener from Options.Listen that
// can serve connections itself (ConnServer) still gets them handshaken:
// the engine's serve function is offered to clear-text listeners only.
func TestTLSListenerServingItself(t *testing.T) {
	be := newEchoBackend(t, "a")
	cert := newTestCert(t, "c", []string{"a"}, "")
	listen := func(string) (net.Listener, error) {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		l := &serveWithListener{Listener: ln, ch: make(chan net.Conn)}
		go l.run()
		return l, nil
	}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpsListener("tls", []ir.Certificate{cert.ir},
		catchAll(prefixRoute("r", "/", be.backend(1))))}}, Options{Listen: listen})
	c := dialTLS(t, p.Addr("tls").String(), &tls.Config{ServerName: "a"})
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v, want 200", resp, err)
	}
}
