package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

// cannedBackend is a loopback HTTP/1.1 server that answers every request
// with the same 1 KiB response and allocates nothing per request, so a
// benchmark's allocs/op are the proxy's own. It reads header blocks only:
// the benchmarks send requests without bodies.
type cannedBackend struct {
	ln    net.Listener
	resp  []byte
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newCannedBackend(tb testing.TB, bodySize int) *cannedBackend {
	tb.Helper()
	body := bytes.Repeat([]byte("x"), bodySize)
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
		strconv.Itoa(bodySize) + "\r\n\r\n")
	return newCannedResponse(tb, append(resp, body...))
}

// newCannedResponse is a canned backend answering every request with resp.
func newCannedResponse(tb testing.TB, resp []byte) *cannedBackend {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c := &cannedBackend{ln: ln, resp: resp, conns: map[net.Conn]struct{}{}}
	c.wg.Add(1)
	go c.accept()
	tb.Cleanup(c.close)
	return c
}

func (c *cannedBackend) accept() {
	defer c.wg.Done()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		c.conns[conn] = struct{}{}
		c.mu.Unlock()
		c.wg.Add(1)
		go c.serve(conn)
	}
}

func (c *cannedBackend) serve(conn net.Conn) {
	defer c.wg.Done()
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 8<<10)
	for {
		// One request: lines up to the empty line that ends the header block.
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
		}
		if _, err := conn.Write(c.resp); err != nil {
			return
		}
	}
}

func (c *cannedBackend) close() {
	c.ln.Close()
	c.mu.Lock()
	for conn := range c.conns {
		conn.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *cannedBackend) backend() ir.Backend {
	a := c.ln.Addr().(*net.TCPAddr)
	return ir.Backend{Name: "default/canned:80", Weight: 1,
		Endpoints: []ir.Endpoint{{Address: a.IP.String(), Port: uint32(a.Port)}}}
}

// discardWriter is a reusable http.ResponseWriter that drops the body; its
// header map is cleared between requests like net/http's own.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *discardWriter) Flush()                      {}
func (w *discardWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// benchRequest is what a typical browser or load tool sends.
func benchRequest(tb testing.TB) *http.Request {
	tb.Helper()
	raw := "GET /bench/item?id=7 HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: wrk\r\n" +
		"Accept: */*\r\nAccept-Encoding: gzip\r\n\r\n"
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader([]byte(raw))))
	if err != nil {
		tb.Fatal(err)
	}
	r.RemoteAddr = "127.0.0.1:50000"
	return r
}

// BenchmarkServeHTTP measures the proxy's request path: routing, building
// the outbound request, the backend round trip over a pooled loopback
// connection, copying the response and recording metrics. It calls the
// handler directly, so allocs/op are the proxy's own, not a client's.
func BenchmarkServeHTTP(b *testing.B) {
	be := newCannedBackend(b, 1024)
	snap := &ir.Snapshot{Listeners: []ir.Listener{
		httpListener("http", catchAll(prefixRoute("default/bench", "/", be.backend()))),
	}}
	p := startProxy(b, snap, Options{})
	p.mu.Lock()
	sock := p.byName["http"]
	p.mu.Unlock()
	h := &handler{s: p.Server, sock: sock, plain: true}
	req := benchRequest(b)
	w := &discardWriter{h: http.Header{}}

	h.ServeHTTP(w, req) // warm the connection pool and the metric series
	if w.status != http.StatusOK || w.n != 1024 {
		b.Fatalf("warm-up: status %d, %d body bytes; want 200 and 1024", w.status, w.n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkProxyLoopback measures the whole path through real sockets: a
// keep-alive client, the proxy's net/http server, and the backend.
// allocs/op include the client's.
func BenchmarkProxyLoopback(b *testing.B) {
	be := newCannedBackend(b, 1024)
	snap := &ir.Snapshot{Listeners: []ir.Listener{
		httpListener("http", catchAll(prefixRoute("default/bench", "/", be.backend()))),
	}}
	p := startProxy(b, snap, Options{})
	url := p.url(b, "http") + "/bench/item?id=7"
	c := newClient()
	defer c.CloseIdleConnections()
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil && !errors.Is(err, io.EOF) || resp.StatusCode != http.StatusOK || n != 1024 {
				b.Errorf("status %d, %d bytes, %v", resp.StatusCode, n, err)
				return
			}
		}
	})
}

// BenchmarkEngineLoopback measures the HTTP/1.1 engine end to end over
// loopback with a client that allocates nothing per request, so allocs/op
// are the engine's own (the canned backend allocates nothing either).
func BenchmarkEngineLoopback(b *testing.B) {
	ec := newEngineClient(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ec.get(b)
	}
}

// TestEngineAllocatesNothingPerRequest: a proxied request through the
// HTTP/1.1 engine (parse, route, pick an endpoint, pooled backend
// exchange, relay, metrics) allocates nothing once the connections are
// warm. The average over many requests absorbs a rare allocation by the
// runtime or a timer.
func TestEngineAllocatesNothingPerRequest(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers: allocation counts are not the engine's")
	}
	ec := newEngineClient(t)
	ec.get(t) // dial the backend, size the buffers
	if n := testing.AllocsPerRun(2000, func() { ec.get(t) }); n >= 1 {
		t.Errorf("%.2f allocations per request, want 0", n)
	}
}

// engineClient sends GET requests over one kept-alive connection to a
// proxy in front of a canned 1 KiB backend, allocating nothing per request.
type engineClient struct {
	conn net.Conn
	br   *bufio.Reader
	req  []byte
}

func newEngineClient(tb testing.TB) *engineClient { return newEngineClientWith(tb, Options{}) }

func newEngineClientWith(tb testing.TB, opts Options) *engineClient {
	tb.Helper()
	be := newCannedBackend(tb, 1024)
	snap := &ir.Snapshot{Listeners: []ir.Listener{
		httpListener("http", catchAll(prefixRoute("default/bench", "/", be.backend()))),
	}}
	p := startProxy(tb, snap, opts)
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.url(tb, "http"), "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &engineClient{conn: conn, br: bufio.NewReaderSize(conn, 16<<10),
		req: []byte("GET /bench/item?id=7 HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: wrk\r\n" +
			"Accept: */*\r\nAccept-Encoding: gzip\r\n\r\n")}
}

// get sends one request and reads its 200 response with a 1 KiB body.
func (ec *engineClient) get(tb testing.TB) {
	if _, err := ec.conn.Write(ec.req); err != nil {
		tb.Fatal(err)
	}
	status, length := false, -1
	for {
		line, err := ec.br.ReadSlice('\n')
		if err != nil {
			tb.Fatal(err)
		}
		if len(line) == 2 {
			break
		}
		if bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
			status = true
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if !status || length != 1024 {
		tb.Fatalf("status ok %v, Content-Length %d; want 200 and 1024", status, length)
	}
	if _, err := ec.br.Discard(length); err != nil {
		tb.Fatal(err)
	}
}
