package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/false-systems/rauta/internal/echo"
)

// protoGateway serves backend "proto" on a plain HTTP port and on an HTTPS
// port with two certificates chosen by SNI (a.tls.test and b.tls.test).
type protoGateway struct {
	plain, secure int
	ca            *testCA
}

func startProtoGateway(t *testing.T) protoGateway {
	t.Helper()
	be := startBackend(t, "proto")
	h2cBackend := startBackend(t, "proto-h2c")
	ca := newCA(t)
	certA, keyA := ca.issue(t, 10, "a.tls.test")
	certB, keyB := ca.issue(t, 20, "b.tls.test")
	pg := protoGateway{plain: freePort(t), secure: freePort(t), ca: ca}
	startGateway(t, map[string]string{
		"gateway.yaml": gatewayYAML("gw",
			listenerSpec{name: "http", port: pg.plain, protocol: "HTTP"},
			listenerSpec{name: "https-a", port: pg.secure, protocol: "HTTPS", hostname: "a.tls.test", certs: []string{"cert-a"}},
			listenerSpec{name: "https-b", port: pg.secure, protocol: "HTTPS", hostname: "b.tls.test", certs: []string{"cert-b"}},
		),
		"secrets.yaml":  secretYAML("cert-a", certA, keyA) + secretYAML("cert-b", certB, keyB),
		"backends.yaml": servicesYAML(be) + serviceAppYAML("proto-h2c", h2cBackend.port, "kubernetes.io/h2c"),
		"routes.yaml": routeYAML("all", nil, catchAll("proto")) +
			routeYAML("h2c-backend", []string{"h2c-backend.test"}, catchAll("proto-h2c")),
	})
	return pg
}

// tlsClient trusts the test CA and offers HTTP/2 via ALPN when h2 is set.
func (pg protoGateway) tlsClient(serverName string, h2 bool) *http.Client {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(h2)
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pg.ca.pool, ServerName: serverName},
			Protocols:       protocols,
		},
		Timeout: 10 * time.Second,
	}
}

func TestProtocols(t *testing.T) {
	pg := startProtoGateway(t)

	t.Run("HTTP/1.1 keep-alive reuses one connection", func(t *testing.T) {
		var dials atomic.Int32
		c := countingClient(&dials)
		defer c.CloseIdleConnections()
		const n = 100
		reused := 0
		for i := 0; i < n; i++ {
			req := request(t, http.MethodGet, pg.plain, "ka.test", "/"+strconv.Itoa(i))
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(info httptrace.GotConnInfo) {
					if info.Reused {
						reused++
					}
				},
			}))
			res := do(t, c, req)
			if res.status != http.StatusOK || res.proto != "HTTP/1.1" {
				t.Fatalf("request %d: %d %s, want 200 HTTP/1.1", i, res.status, res.proto)
			}
		}
		if d := dials.Load(); d != 1 || reused != n-1 {
			t.Errorf("%d requests took %d dials and reused a connection %d times; want 1 dial, %d reuses", n, d, reused, n-1)
		}
	})

	t.Run("HTTPS picks the certificate by SNI", func(t *testing.T) {
		for _, name := range []string{"a.tls.test", "b.tls.test"} {
			c := pg.tlsClient(name, false)
			req, err := http.NewRequest(http.MethodGet, "https://127.0.0.1:"+strconv.Itoa(pg.secure)+"/sni", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = name
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", name, err) // includes certificate verification against the name
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := resp.TLS.PeerCertificates[0].DNSNames; len(got) != 1 || got[0] != name {
				t.Errorf("SNI %s: served certificate for %v", name, got)
			}
			if resp.StatusCode != http.StatusOK || resp.Proto != "HTTP/1.1" {
				t.Errorf("SNI %s: %d %s, want 200 HTTP/1.1", name, resp.StatusCode, resp.Proto)
			}
			var rep echo.Reply
			if err := json.Unmarshal(body, &rep); err != nil || rep.Backend != "proto" {
				t.Errorf("SNI %s: body %s (%v)", name, body, err)
			}
			if got := headerValues(rep, "X-Forwarded-Proto"); len(got) != 1 || got[0] != "https" {
				t.Errorf("SNI %s: X-Forwarded-Proto %q, want [https]", name, got)
			}
			c.CloseIdleConnections()
		}
	})

	t.Run("HTTP/2 over TLS via ALPN", func(t *testing.T) {
		c := pg.tlsClient("a.tls.test", true)
		defer c.CloseIdleConnections()
		req, err := http.NewRequest(http.MethodGet, "https://127.0.0.1:"+strconv.Itoa(pg.secure)+"/h2", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "a.tls.test"
		res := do(t, c, req)
		if res.status != http.StatusOK || res.proto != "HTTP/2.0" {
			t.Fatalf("%d %s, want 200 HTTP/2.0", res.status, res.proto)
		}
		if rep := res.reply(t); rep.Backend != "proto" || rep.Path != "/h2" || rep.Host != "a.tls.test" {
			t.Errorf("backend saw %s %s %s", rep.Backend, rep.Host, rep.Path)
		}
	})

	t.Run("HTTP/2 multiplexes concurrent requests on one connection", func(t *testing.T) {
		var dials atomic.Int32
		protocols := new(http.Protocols)
		protocols.SetHTTP2(true)
		tr := &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pg.ca.pool, ServerName: "b.tls.test"},
			Protocols:       protocols,
			DialContext:     countingDial(&dials),
		}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		// Warm up: the first request opens the connection, so the
		// concurrent ones below find it instead of racing to dial.
		target := "https://127.0.0.1:" + strconv.Itoa(pg.secure)
		warm, err := http.NewRequest(http.MethodGet, target+"/warm", nil)
		if err != nil {
			t.Fatal(err)
		}
		warm.Host = "b.tls.test"
		if res := do(t, c, warm); res.proto != "HTTP/2.0" {
			t.Fatalf("proto %s, want HTTP/2.0", res.proto)
		}
		const n = 20
		errs := make(chan string, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each stream waits 200ms at the backend, so they overlap.
				req, err := http.NewRequest(http.MethodGet, target+"/m?delay=200ms", nil)
				if err != nil {
					errs <- err.Error()
					return
				}
				req.Host = "b.tls.test"
				resp, err := c.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.Proto != "HTTP/2.0" {
					errs <- resp.Status + " " + resp.Proto
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("concurrent stream: %s", e)
		}
		if d := dials.Load(); d != 1 {
			t.Errorf("%d dials for %d concurrent HTTP/2 requests, want 1", d, n+1)
		}
	})

	t.Run("h2c with prior knowledge", func(t *testing.T) {
		// HTTP/2 in clear text only (x/net's http2.Transport with
		// AllowHTTP is deprecated in favour of this).
		protocols := new(http.Protocols)
		protocols.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: protocols}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		for i := 0; i < 3; i++ {
			res := do(t, c, request(t, http.MethodGet, pg.plain, "h2c.test", "/prior"))
			if res.status != http.StatusOK || res.proto != "HTTP/2.0" {
				t.Fatalf("%d %s, want 200 HTTP/2.0", res.status, res.proto)
			}
			if rep := res.reply(t); rep.Backend != "proto" || rep.Host != "h2c.test" || rep.Path != "/prior" {
				t.Errorf("backend saw %s %s %s", rep.Backend, rep.Host, rep.Path)
			}
		}
	})

	t.Run("h2c via Upgrade", func(t *testing.T) {
		status, body := h2cUpgrade(t, pg.plain, "upgrade.test", "/upgraded")
		if status != "200" {
			t.Fatalf(":status %q, want 200; body %s", status, body)
		}
		var rep echo.Reply
		if err := json.Unmarshal(body, &rep); err != nil || rep.Backend != "proto" || rep.Path != "/upgraded" {
			t.Errorf("body %s (%v), want an echo reply of proto for /upgraded", body, err)
		}
	})

	t.Run("h2c to a backend with appProtocol kubernetes.io/h2c", func(t *testing.T) {
		c := newClient()
		defer c.CloseIdleConnections()
		for _, host := range []string{"h2c-backend.test", "plain.test"} {
			res := get(t, c, pg.plain, host, "/")
			if res.status != http.StatusOK || res.proto != "HTTP/1.1" {
				t.Fatalf("%s: %d %s, want 200 HTTP/1.1", host, res.status, res.proto)
			}
			rep := res.reply(t)
			want := map[string]string{"h2c-backend.test": "HTTP/2.0", "plain.test": "HTTP/1.1"}[host]
			if rep.Proto != want {
				t.Errorf("%s: backend %s was spoken to in %s, want %s", host, rep.Backend, rep.Proto, want)
			}
		}
	})

	t.Run("WebSocket", func(t *testing.T) {
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		conn, resp, err := d.Dial("ws://127.0.0.1:"+strconv.Itoa(pg.plain)+"/ws", http.Header{"Host": {"ws.test"}})
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Fatalf("dial through gateway: %v (status %d)", err, status)
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for i, msg := range []string{"hello", "second", strings.Repeat("x", 70000)} {
			if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatalf("write message %d: %v", i, err)
			}
			typ, got, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("read message %d: %v", i, err)
			}
			if typ != websocket.TextMessage || string(got) != "proto: "+msg {
				t.Errorf("message %d: got type %d %q, want %q", i, typ, abbreviate(string(got)), abbreviate("proto: "+msg))
			}
		}
		if err := conn.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2}); err != nil {
			t.Fatalf("write binary: %v", err)
		}
		typ, got, err := conn.ReadMessage()
		if err != nil || typ != websocket.BinaryMessage || !bytes.Equal(got, append([]byte("proto: "), 0, 1, 2)) {
			t.Errorf("binary echo: type %d %q, err %v", typ, got, err)
		}
	})

	t.Run("WebSocket over TLS", func(t *testing.T) {
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{RootCAs: pg.ca.pool, ServerName: "b.tls.test"}}
		conn, _, err := d.Dial("wss://127.0.0.1:"+strconv.Itoa(pg.secure)+"/ws", http.Header{"Host": {"b.tls.test"}})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := conn.WriteMessage(websocket.TextMessage, []byte("secure")); err != nil {
			t.Fatal(err)
		}
		if _, got, err := conn.ReadMessage(); err != nil || string(got) != "proto: secure" {
			t.Errorf("got %q, %v; want %q", got, err, "proto: secure")
		}
	})
}

// h2cUpgrade sends an HTTP/1.1 request asking to upgrade to h2c (RFC 7540
// section 3.2) on a raw socket, then reads the HTTP/2 response to it on
// stream 1. It returns the :status and the body.
func h2cUpgrade(t *testing.T, port int, host, path string) (string, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// HTTP2-Settings: an empty SETTINGS payload, base64url.
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" +
		"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("write upgrade request: %v", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read upgrade response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "h2c") {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade answered %s (Upgrade %q), want 101 to h2c; body %s", resp.Status, resp.Header.Get("Upgrade"), body)
	}
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatalf("write preface: %v", err)
	}
	fr := http2.NewFramer(conn, br)
	if err := fr.WriteSettings(); err != nil {
		t.Fatalf("write settings: %v", err)
	}
	var status string
	var body []byte
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status = f.Value
		}
	})
	for i := 0; i < 100; i++ {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("read frame: %v (status %q so far)", err, status)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					t.Fatalf("ack settings: %v", err)
				}
			}
		case *http2.HeadersFrame:
			if f.StreamID != 1 {
				t.Fatalf("HEADERS on stream %d, want 1", f.StreamID)
			}
			if _, err := dec.Write(f.HeaderBlockFragment()); err != nil {
				t.Fatalf("decode headers: %v", err)
			}
			if f.StreamEnded() {
				return status, body
			}
		case *http2.ContinuationFrame:
			if _, err := dec.Write(f.HeaderBlockFragment()); err != nil {
				t.Fatalf("decode headers: %v", err)
			}
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			if f.StreamEnded() {
				return status, body
			}
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v before the response ended", f.ErrCode)
		case *http2.RSTStreamFrame:
			t.Fatalf("RST_STREAM %v", f.ErrCode)
		}
	}
	t.Fatalf("no complete response within 100 frames")
	return "", nil
}
