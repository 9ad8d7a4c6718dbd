package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"

	"github.com/false-systems/rauta/internal/ir"
)

// heldBackend answers "late" delay after a request arrives, and reports
// each arrival on arrived, so tests know a request is in flight.
func heldBackend(t *testing.T, delay time.Duration) (ir.Backend, <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 16)
	be := newEchoBackend(t, "held")
	be.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		case <-t.Context().Done(): // the test ended: let the server close
			return
		}
		io.WriteString(w, "late")
	})
	b := be.backend(1)
	b.Name = "default/held:80"
	return b, arrived
}

// runProxy serves snap until the returned stop is called; stop waits for
// Run to return and fails the test if it does not within 10s.
func runProxy(t *testing.T, snap *ir.Snapshot, opts Options) (s *Server, stop func()) {
	t.Helper()
	opts.DefaultAddress, opts.Registerer = "127.0.0.1", prometheus.NewRegistry()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(snap); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s")
		}
	}
	t.Cleanup(stop)
	return s, stop
}

// rawGet sends one HTTP/1.1 GET on c and reads the response.
func rawGet(t testing.TB, c net.Conn, br *bufio.Reader, path string) *http.Response {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: drain.test\r\n\r\n", path); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("read body: %v", err)
	}
	resp.Body.Close()
	return resp
}

// closedByServer reports whether the server closed c (a read ends with
// EOF or a reset) within 5s.
func closedByServer(c net.Conn, br *bufio.Reader) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := br.ReadByte()
	var ne net.Error
	return err != nil && (!errors.As(err, &ne) || !ne.Timeout())
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// TestDrainHTTP1: once Drain is called, a response in flight carries
// Connection: close and ends its connection, an idle keep-alive connection
// is closed, and a new connection is still served (its response also the
// last); after Run's context ends, new connections are refused.
func TestDrainHTTP1(t *testing.T) {
	echo := newEchoBackend(t, "echo")
	held, arrived := heldBackend(t, 300*time.Millisecond)
	l := httpListener("l", catchAll(prefixRoute("slow", "/slow", held), prefixRoute("r", "/", echo.backend(1))))
	s, stop := runProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{ShutdownTimeout: 5 * time.Second})
	addr := s.Addr("l").String()

	idle, idleR := dial(t, addr)
	if resp := rawGet(t, idle, idleR, "/"); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("before the drain: status %d, close %v; want 200 and keep-alive", resp.StatusCode, resp.Close)
	}
	busy, busyR := dial(t, addr)
	busyResp := make(chan *http.Response, 1)
	go func() {
		busy.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(busy, "GET /slow HTTP/1.1\r\nHost: drain.test\r\n\r\n")
		resp, err := http.ReadResponse(busyR, nil)
		if err == nil {
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		busyResp <- resp
	}()
	<-arrived
	s.Drain()

	if !closedByServer(idle, idleR) {
		t.Error("idle keep-alive connection still open after Drain")
	}
	resp := <-busyResp
	if resp == nil || resp.StatusCode != 200 || !resp.Close {
		t.Errorf("response in flight at Drain: %+v; want 200 with Connection: close", resp)
	} else if !closedByServer(busy, busyR) {
		t.Error("connection still open after its Connection: close response")
	}

	fresh, freshR := dial(t, addr)
	if resp := rawGet(t, fresh, freshR, "/"); resp.StatusCode != 200 || !resp.Close {
		t.Errorf("new connection during the drain: status %d, close %v; want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
	if !closedByServer(fresh, freshR) {
		t.Error("new connection still open after its Connection: close response")
	}
	// An ordinary client keeps succeeding: it reconnects for each request.
	c := newClient()
	for i := range 3 {
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("request %d during the drain: %v", i, err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d during the drain: status %d", i, resp.StatusCode)
		}
	}

	stop()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("a connection was accepted after Run returned")
	}
	if n := s.Cut(); n != 0 {
		t.Errorf("Cut() = %d after a clean shutdown, want 0", n)
	}
}

// TestDrainHTTP2: an HTTP/2 connection gets GOAWAY with the largest stream
// id at Drain, its in-flight stream completes, the final GOAWAY names that
// stream, and the connection closes.
func TestDrainHTTP2(t *testing.T) {
	held, arrived := heldBackend(t, 500*time.Millisecond)
	l := httpListener("l", catchAll(prefixRoute("slow", "/", held)))
	s, _ := runProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{ShutdownTimeout: 5 * time.Second})
	conn, br := dial(t, s.Addr("l").String())
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, br)
	fr.ReadMetaHeaders = newHpackDecoder()
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	writeHeaders(t, fr, 1, "/slow", "drain.test")
	<-arrived
	s.Drain()

	var goAways []uint32
	status, body, ended := "", "", false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("read: %v (want the server to close after the stream)", err)
			}
			break
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeNo {
				t.Errorf("GOAWAY %v, want NO_ERROR", f.ErrCode)
			}
			goAways = append(goAways, f.LastStreamID)
		case *http2.MetaHeadersFrame:
			status = f.PseudoValue("status")
			ended = ended || f.StreamEnded()
		case *http2.DataFrame:
			body += string(f.Data())
			ended = ended || f.StreamEnded()
		}
	}
	if status != "200" || body != "late" || !ended {
		t.Errorf("in-flight stream: status %q body %q ended %v; want 200 \"late\"", status, body, ended)
	}
	if len(goAways) != 2 || goAways[0] != 1<<31-1 || goAways[1] != 1 {
		t.Errorf("GOAWAY last-stream ids %v, want [2147483647 1]", goAways)
	}
}

// TestInFlightFinishesAfterListenersClose: a request in flight when the
// drain ends (a backend answering after 2s) completes after the listeners
// closed, while new connections are refused; Cut stays 0.
func TestInFlightFinishesAfterListenersClose(t *testing.T) {
	held, arrived := heldBackend(t, 2*time.Second)
	l := httpListener("l", catchAll(prefixRoute("slow", "/", held)))
	s, stop := runProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{ShutdownTimeout: 10 * time.Second})
	addr := s.Addr("l").String()
	s.Drain()
	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := newClient().Get("http://" + addr + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{resp.StatusCode, string(b), err}
	}()
	<-arrived
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	// The listener closes at once; the request is still in flight.
	refused := false
	for i := 0; i < 100 && !refused; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			refused = true
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	if !refused {
		t.Error("new connections still accepted after Run's context ended")
	}
	if r := <-got; r.err != nil || r.status != 200 || r.body != "late" {
		t.Errorf("request in flight when the listeners closed: %+v, want 200 \"late\"", r)
	}
	<-stopped
	if n := s.Cut(); n != 0 {
		t.Errorf("Cut() = %d, want 0: the request finished within ShutdownTimeout", n)
	}
}

// TestShutdownTimeoutCuts: a request still in flight when ShutdownTimeout
// ends is cut, and counted.
func TestShutdownTimeoutCuts(t *testing.T) {
	held, arrived := heldBackend(t, time.Minute)
	l := httpListener("l", catchAll(prefixRoute("slow", "/", held)))
	s, stop := runProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{ShutdownTimeout: 200 * time.Millisecond})
	errc := make(chan error, 1)
	go func() {
		resp, err := newClient().Get("http://" + s.Addr("l").String() + "/")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	stop()
	if n := s.Cut(); n != 1 {
		t.Errorf("Cut() = %d, want 1", n)
	}
	if err := <-errc; err == nil {
		t.Error("a request cut by the shutdown timeout succeeded")
	}
}

// TestBindError: a listener whose port is taken is reported as a
// *BindError naming it, while the other listener is served.
func TestBindError(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	echo := newEchoBackend(t, "echo")
	busy := httpListener("busy", catchAll(prefixRoute("r", "/", echo.backend(1))))
	busy.Port = uint32(taken.Addr().(*net.TCPAddr).Port)
	free := httpListener("free", catchAll(prefixRoute("r", "/", echo.backend(1))))
	s, err := New(Options{DefaultAddress: "127.0.0.1", Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Apply(&ir.Snapshot{Listeners: []ir.Listener{busy, free}})
	var be *BindError
	if !errors.As(err, &be) || be.Listener != "busy" || !strings.Contains(be.Error(), "address already in use") {
		t.Fatalf("Apply: %v; want a *BindError for listener busy", err)
	}
	if all := BindErrors(err); len(all) != 1 || all[0] != be {
		t.Errorf("BindErrors = %v, want just the one", all)
	}
	if s.Addr("free") == nil || s.Addr("busy") != nil {
		t.Errorf("served: free %v, busy %v; want only free", s.Addr("free"), s.Addr("busy"))
	}
	if err := s.Apply(&ir.Snapshot{Listeners: []ir.Listener{free}}); err != nil || BindErrors(err) != nil {
		t.Errorf("Apply without the busy listener: %v", err)
	}
}

// TestDrainHTTPS: on an HTTPS listener (net/http for HTTP/1.1, internal/h2
// by ALPN) Conns counts each connection once; at Drain an idle HTTP/1.1
// connection is closed, a new one is served with Connection: close, and
// the HTTP/2 connection gets GOAWAY, after which the client reconnects.
func TestDrainHTTPS(t *testing.T) {
	echo := newEchoBackend(t, "echo")
	cert := newTestCert(t, "c", []string{"app.example.com"}, "")
	l := httpsListener("tls", []ir.Certificate{cert.ir}, catchAll(prefixRoute("r", "/", echo.backend(1))))
	s, _ := runProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{ShutdownTimeout: 5 * time.Second})
	addr := s.Addr("tls").String()
	dialTLS := func(alpn string) (net.Conn, *bufio.Reader) {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{ServerName: "app.example.com", InsecureSkipVerify: true, NextProtos: []string{alpn}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	h1, h1R := dialTLS("http/1.1")
	if resp := rawGet(t, h1, h1R, "/"); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("HTTP/1.1 before the drain: %d, close %v", resp.StatusCode, resp.Close)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.x509)
	h2c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "app.example.com"}, ForceAttemptHTTP2: true,
	}}
	h2get := func() string {
		t.Helper()
		resp, err := h2c.Get("https://" + addr + "/")
		if err != nil {
			t.Fatalf("HTTP/2 request: %v", err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Fatalf("HTTP/2 request: %d %s", resp.StatusCode, resp.Proto)
		}
		return resp.Proto
	}
	h2get()
	counted := false
	for i := 0; i < 200 && !counted; i++ {
		counted = s.Conns() == 2
		time.Sleep(10 * time.Millisecond)
	}
	if !counted {
		t.Errorf("Conns() = %d with one HTTP/1.1 and one HTTP/2 connection open, want 2", s.Conns())
	}

	s.Drain()
	if !closedByServer(h1, h1R) {
		t.Error("idle HTTPS keep-alive connection still open after Drain")
	}
	fresh, freshR := dialTLS("http/1.1")
	if resp := rawGet(t, fresh, freshR, "/"); resp.StatusCode != 200 || !resp.Close {
		t.Errorf("new HTTPS connection during the drain: %d, close %v; want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
	// The HTTP/2 connection closes after its GOAWAY; the client's next
	// requests succeed on new connections.
	for range 3 {
		h2get()
	}
	gone := false
	for i := 0; i < 500 && !gone; i++ {
		gone = s.Conns() <= 1 // at most the h2 connection the client opened last
		time.Sleep(10 * time.Millisecond)
	}
	if !gone {
		t.Errorf("Conns() = %d during the drain, want the old connections closed", s.Conns())
	}
}

// TestDrainAnswersARacingRequest: a keep-alive connection idle when the
// drain begins is not closed at once, so a request its client sends right
// then is answered (with Connection: close), not reset: over the HTTP/1.1
// engine and over net/http (HTTPS).
func TestDrainAnswersARacingRequest(t *testing.T) {
	echo := newEchoBackend(t, "echo")
	cert := newTestCert(t, "c", []string{"app.example.com"}, "")
	vh := catchAll(prefixRoute("r", "/", echo.backend(1)))
	s, _ := runProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("http", vh), httpsListener("https", []ir.Certificate{cert.ir}, vh)}}, Options{})
	s.idleGrace = time.Hour // the request below always comes first
	dialers := map[string]func() net.Conn{
		"engine": func() net.Conn { c, _ := dial(t, s.Addr("http").String()); return c },
		"net/http": func() net.Conn {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.Addr("https").String(),
				&tls.Config{ServerName: "app.example.com", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		},
	}
	conns := map[string]net.Conn{}
	readers := map[string]*bufio.Reader{}
	for name, d := range dialers {
		conns[name] = d()
		readers[name] = bufio.NewReader(conns[name])
		if resp := rawGet(t, conns[name], readers[name], "/"); resp.StatusCode != 200 || resp.Close {
			t.Fatalf("%s before the drain: %d, close %v", name, resp.StatusCode, resp.Close)
		}
	}
	s.Drain()
	for name, c := range conns {
		if resp := rawGet(t, c, readers[name], "/"); resp.StatusCode != 200 || !resp.Close {
			t.Errorf("%s: request on a keep-alive connection right after Drain: %d, close %v; want 200 with Connection: close", name, resp.StatusCode, resp.Close)
		}
		if !closedByServer(c, readers[name]) {
			t.Errorf("%s: connection open after its Connection: close response", name)
		}
	}
}

// TestDrainLeavesWebSockets: a WebSocket connection keeps working through
// the drain, its idle sweep included, and is closed (and counted in Cut)
// only by Run's shutdown.
func TestDrainLeavesWebSockets(t *testing.T) {
	b := newWSEchoBackend(t, "", nil)
	s, stop := runProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("ws", "/", b)))}}, Options{})
	c, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr("l").String()+"/chat", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	echo := func() error {
		if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, got, err := c.ReadMessage()
		if err == nil && string(got) != "hi" {
			err = fmt.Errorf("got %q", got)
		}
		return err
	}
	if err := echo(); err != nil {
		t.Fatal(err)
	}
	s.Drain()
	// The sweep that follows a drain by idleGrace, run now.
	s.mu.Lock()
	for _, sock := range s.sockets {
		sock.h1.CloseIdle()
		sock.srv.SetKeepAlivesEnabled(false)
	}
	s.mu.Unlock()
	if err := echo(); err != nil {
		t.Errorf("WebSocket during the drain: %v", err)
	}
	stop()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Error("WebSocket still open after Run returned")
	}
	if n := s.Cut(); n != 1 {
		t.Errorf("Cut() = %d, want 1 (the WebSocket)", n)
	}
}
