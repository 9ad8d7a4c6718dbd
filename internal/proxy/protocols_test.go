package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/net/http2"

	"github.com/false-systems/rauta/internal/ir"
)

func TestHTTP11KeepAlive(t *testing.T) {
	be := newEchoBackend(t, "a")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", be.backend(1))))}}, Options{})
	cl := newClient()
	var reused []bool
	for i := 0; i < 3; i++ {
		req := mustReq(t, "GET", p.url(t, "l")+"/", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = append(reused, info.Reused) },
		}))
		if resp, _, _ := do(t, cl, req); resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" {
			t.Fatalf("status %d proto %s", resp.StatusCode, resp.Proto)
		}
	}
	if fmt.Sprint(reused) != "[false true true]" {
		t.Errorf("connection reuse %v, want [false true true]", reused)
	}
}

// h2cClient speaks HTTP/2 with prior knowledge over clear text (net/http's
// successor of x/net's http2.Transport with AllowHTTP).
func h2cClient() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Timeout: 5 * time.Second, Transport: tr}
}

func TestH2CPriorKnowledge(t *testing.T) {
	be := newEchoBackend(t, "a")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", be.backend(1))))}}, Options{})
	resp, e, _ := do(t, h2cClient(), mustReq(t, "POST", p.url(t, "l")+"/h2?x=1", strings.NewReader("hello")))
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
		t.Fatalf("status %d proto %s", resp.StatusCode, resp.Proto)
	}
	if e.URI != "/h2?x=1" || e.Body != "hello" || e.Proto != "HTTP/1.1" {
		t.Errorf("backend saw %s %s body %q", e.Proto, e.URI, e.Body)
	}
}

func TestH2CUpgrade(t *testing.T) {
	be := newEchoBackend(t, "a")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", be.backend(1))))}}, Options{})
	conn, err := net.DialTimeout("tcp", p.Addr("l").String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// An empty SETTINGS payload, base64url-encoded, is "".
	fmt.Fprintf(conn, "GET /upgraded?q=1 HTTP/1.1\r\nHost: up.example.com\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "h2c" {
		t.Fatalf("upgrade answered %d %v", resp.StatusCode, resp.Header)
	}
	// Speak HTTP/2: preface and SETTINGS, then read the answer to stream 1
	// (the upgrade request) and send a second request on stream 3.
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, br)
	fr.ReadMetaHeaders = newHpackDecoder()
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	bodies := readStreams(t, fr, 1)
	var e echoed
	if err := json.Unmarshal([]byte(bodies[1]), &e); err != nil {
		t.Fatalf("stream 1 body %q: %v", bodies[1], err)
	}
	if e.URI != "/upgraded?q=1" || e.Host != "up.example.com" {
		t.Errorf("upgraded request reached the backend as %s on %s", e.URI, e.Host)
	}
	if _, ok := e.Header["Http2-Settings"]; ok {
		t.Error("HTTP2-Settings leaked to the backend")
	}
	if _, ok := e.Header["Upgrade"]; ok {
		t.Error("Upgrade leaked to the backend")
	}
	writeHeaders(t, fr, 3, "/second", "up.example.com")
	bodies = readStreams(t, fr, 3)
	if !strings.Contains(bodies[3], `"uri":"/second"`) {
		t.Errorf("stream 3 body %q", bodies[3])
	}
}

func TestH2CBackend(t *testing.T) {
	var protos = make(chan string, 4)
	h2srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.Proto
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "from h2c backend")
		w.Header().Set("X-Checksum", "abc")
	}))
	h2srv.Config.Protocols = new(http.Protocols)
	h2srv.Config.Protocols.SetUnencryptedHTTP2(true)
	h2srv.Start()
	t.Cleanup(h2srv.Close)
	b := ir.Backend{Name: "default/grpc:50051", Weight: 1, AppProtocol: "h2c", Endpoints: []ir.Endpoint{endpointOf(t, h2srv.Listener.Addr().String())}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", b)))}}, Options{})
	resp, err := h2cClient().Get(p.url(t, "l") + "/svc/Method")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "from h2c backend" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if got := <-protos; got != "HTTP/2.0" {
		t.Errorf("backend spoke %s, want HTTP/2.0", got)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
		t.Errorf("trailer X-Checksum %q, want abc", got)
	}
}

// newWSEchoBackend is a WebSocket backend that sends every message back
// after prefix, its 101 carrying hdr.
func newWSEchoBackend(t *testing.T, prefix string, hdr http.Header) ir.Backend {
	t.Helper()
	ws := httptest.NewServer(wsEcho(prefix, hdr))
	t.Cleanup(ws.Close)
	return ir.Backend{Name: "default/ws:80", Weight: 1, Endpoints: []ir.Endpoint{endpointOf(t, ws.Listener.Addr().String())}}
}

// wsEcho upgrades to WebSocket, its 101 carrying hdr, and sends every
// message back after prefix.
func wsEcho(prefix string, hdr http.Header) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, hdr)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, append([]byte(prefix), msg...)); err != nil {
				return
			}
		}
	}
}

func TestWebSocket(t *testing.T) {
	b := newWSEchoBackend(t, "echo:", http.Header{"X-Ws-Backend": {"1"}})
	r := prefixRoute("ws", "/ws", b)
	r.Timeouts.Request = 200 * time.Millisecond // must not cut an upgraded connection
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(r))}}, Options{})
	url := "ws://" + p.Addr("l").String() + "/ws/chat"
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if resp.Header.Get("X-Ws-Backend") != "1" {
		t.Errorf("101 response lacks the backend's headers: %v", resp.Header)
	}
	for i := 0; i < 5; i++ {
		msg := fmt.Sprintf("m%d", i)
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo:"+msg {
			t.Errorf("got %q, want echo:%s", got, msg)
		}
		if i == 2 {
			time.Sleep(300 * time.Millisecond) // past the route's request timeout
		}
	}
	// Both directions end when the client closes.
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("close: %v", err)
	}
}

// An h2c backend that resets a stream before answering (a gRPC server does
// at a call's deadline) has its reset relayed to an HTTP/2 client: the
// client sees the backend's code, as without a proxy, not a 502, and not a
// wait for its own deadline while its request body is still open (the
// body reader that the backend round trip closed must return).
func TestH2CBackendResetRelayed(t *testing.T) {
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler) // net/http resets with INTERNAL_ERROR
	}))
	be.Config.Protocols = new(http.Protocols)
	be.Config.Protocols.SetUnencryptedHTTP2(true)
	be.Config.ErrorLog = log.New(io.Discard, "", 0)
	be.Start()
	t.Cleanup(be.Close)
	b := ir.Backend{Name: "default/r:1", Weight: 1, AppProtocol: "h2c", Endpoints: []ir.Endpoint{endpointOf(t, be.Listener.Addr().String())}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", b)))}}, Options{})
	for _, open := range []bool{false, true} {
		var body io.Reader = strings.NewReader("payload")
		if open {
			pr, pw := io.Pipe() // the body stays open: nothing written until the end
			t.Cleanup(func() { pw.Close() })
			body = pr
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "POST", p.url(t, "l")+"/svc/Method", body)
		resp, err := h2cClient().Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			t.Fatalf("open body %v: status %d, want the backend's stream reset", open, resp.StatusCode)
		}
		var se http2.StreamError
		if !errors.As(err, &se) || se.Code != http2.ErrCodeInternal {
			t.Errorf("open body %v: %v, want a stream error INTERNAL_ERROR", open, err)
		}
	}
}
