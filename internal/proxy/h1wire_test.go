package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/ir"
)

// Wire tests: a raw TCP client talks to a real proxy Server whose backend is
// a raw TCP server, so both sides see the exact bytes the HTTP/1.1 engine
// (or net/http, after a handoff) reads and writes.

// wireTimeout bounds every read and write of a wire test; tests finish in
// milliseconds unless the proxy hangs.
const wireTimeout = 10 * time.Second

// wireBackend is a loopback TCP server running serve on each connection.
type wireBackend struct {
	ln    net.Listener
	serve func(c net.Conn)
	wg    sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	accepted int
	seen     []string // requests, as the scripted server records them
}

func newWireBackend(t *testing.T, serve func(b *wireBackend, c net.Conn)) *wireBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &wireBackend{ln: ln, conns: map[net.Conn]struct{}{}}
	b.serve = func(c net.Conn) { serve(b, c) }
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.close)
	return b
}

func (b *wireBackend) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		c.SetDeadline(time.Now().Add(wireTimeout))
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.accepted++
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer c.Close()
			b.serve(c)
		}()
	}
}

// close stops the listener, closes every connection and waits for the
// serve goroutines. It is idempotent.
func (b *wireBackend) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *wireBackend) record(s string) {
	b.mu.Lock()
	b.seen = append(b.seen, s)
	b.mu.Unlock()
}

func (b *wireBackend) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.seen...)
}

func (b *wireBackend) connections() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.accepted
}

func (b *wireBackend) backend() ir.Backend {
	a := b.ln.Addr().(*net.TCPAddr)
	return ir.Backend{Name: "default/wire:80", Weight: 1,
		Endpoints: []ir.Endpoint{{Address: a.IP.String(), Port: uint32(a.Port)}}}
}

// describe is how a scripted backend records a request: method, target,
// body length and body.
func describe(r *http.Request, body []byte) string {
	return fmt.Sprintf("%s %s %d:%s", r.Method, r.RequestURI, len(body), body)
}

// scripted returns a serve function that reads requests with net/http's
// strict parser, records each one whose body arrived whole, and writes the
// exact bytes answer returns; close ends the connection after them.
func scripted(answer func(r *http.Request, body []byte) (raw string, close bool)) func(*wireBackend, net.Conn) {
	return func(b *wireBackend, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return // a truncated request is never recorded
			}
			b.record(describe(r, body))
			raw, closeAfter := answer(r, body)
			if _, err := io.WriteString(c, raw); err != nil || closeAfter {
				return
			}
		}
	}
}

// echoAnswer answers 200 with describe's line as the body.
func echoAnswer(r *http.Request, body []byte) (string, bool) {
	d := describe(r, body)
	return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(d)) + "\r\n\r\n" + d, false
}

// wireProxy is a Server on loopback serving one catch-all route to be.
type wireProxy struct {
	addr string
	stop func()
}

func startWireProxy(t *testing.T, route ir.Route) *wireProxy {
	t.Helper()
	s, err := New(Options{DefaultAddress: "127.0.0.1", Registerer: prometheus.NewRegistry(),
		ReadHeaderTimeout: wireTimeout, ShutdownTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(&ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(route))}}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wireTimeout):
			t.Error("Run did not return after cancel")
		}
	})
	t.Cleanup(stop)
	return &wireProxy{addr: s.Addr("l").String(), stop: stop}
}

// wireClient is a raw client connection that keeps every byte it read.
type wireClient struct {
	t   *testing.T
	c   net.Conn
	raw bytes.Buffer
	br  *bufio.Reader
}

func dialWire(t *testing.T, addr string) *wireClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wireTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(wireTimeout))
	t.Cleanup(func() { c.Close() })
	w := &wireClient{t: t, c: c}
	w.br = bufio.NewReader(io.TeeReader(c, &w.raw))
	return w
}

func (w *wireClient) send(raw string) {
	w.t.Helper()
	if _, err := io.WriteString(w.c, raw); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// response reads one response to a request with method and its whole
// body; err is the body's read error.
func (w *wireClient) response(method string) (*http.Response, string, error) {
	w.t.Helper()
	resp, err := http.ReadResponse(w.br, &http.Request{Method: method})
	if err != nil {
		w.t.Fatalf("read response: %v (bytes so far %q)", err, w.raw.String())
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body), err
}

// closed reports whether the proxy closed the connection: after the bytes
// already read, none arrive. A reset counts as closed.
func (w *wireClient) closed() bool {
	w.br.Discard(w.br.Buffered()) // what a failed parse left unread
	_, err := w.br.ReadByte()
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// readAll reads responses until the proxy closes the connection; methods
// gives the request method of each response in turn (GET after the
// list). It returns each response as "status body", and whether the
// stream ended cleanly between responses.
func (w *wireClient) readAll(methods ...string) (got []string, clean bool) {
	w.t.Helper()
	for i := 0; ; i++ {
		if _, err := w.br.Peek(1); err != nil {
			return got, !errors.Is(err, os.ErrDeadlineExceeded)
		}
		method := http.MethodGet
		if i < len(methods) {
			method = methods[i]
		}
		resp, err := http.ReadResponse(w.br, &http.Request{Method: method})
		if err != nil {
			return got, false
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = append(got, fmt.Sprintf("%d %s", resp.StatusCode, body))
		if err != nil {
			return got, false
		}
	}
}

// summary shortens responses for comparison: "200 <echoed request>" for
// answers from the echo backend, the bare status for the proxy's own.
func summary(got []string) []string {
	out := make([]string, len(got))
	for i, g := range got {
		if strings.HasPrefix(g, "200 ") {
			out[i] = g
		} else {
			out[i], _, _ = strings.Cut(g, " ")
		}
	}
	return out
}

// outcome is one acceptable result of a raw exchange: what the client got
// (see summary) and the requests the backend saw, in order.
type outcome struct {
	client  []string
	backend []string
}

const endRequest = "GET /end HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

func withLength(head, body string) string {
	return strings.Replace(head, "LEN", strconv.Itoa(len(body)), 1) + body
}

func chunk(data string) string {
	return strconv.FormatInt(int64(len(data)), 16) + "\r\n" + data + "\r\n"
}

// TestH1WireSmuggling sends one client request whose framing is ambiguous
// or invalid, followed where the connection survives by GET /end with
// Connection: close. Whatever the proxy makes of it, the backend must see
// exactly the requests the client got answers for, in order, and the
// result must be one a correct HTTP/1.1 server may produce: a rejection,
// or RFC 9112 6.3's reading (Transfer-Encoding overrides Content-Length),
// never the other reading, which is the one a front end that frames by
// Content-Length would disagree with.
func TestH1WireSmuggling(t *testing.T) {
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	teBody := "0\r\n\r\n" + smuggled
	clData := "GPOST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nx=1"
	end := "200 GET /end 0:"
	rejected := func(status string) outcome { return outcome{client: []string{status}} }
	tests := []struct {
		name string
		raw  string
		want []outcome
	}{
		{
			name: "CL.TE: Content-Length then Transfer-Encoding",
			raw:  withLength("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: LEN\r\nTransfer-Encoding: chunked\r\n\r\n", teBody) + endRequest,
			want: []outcome{rejected("400"), {
				client:  []string{"200 POST /a 0:", "200 GET /smuggled 0:", end},
				backend: []string{"POST /a 0:", "GET /smuggled 0:", "GET /end 0:"},
			}},
		},
		{
			name: "TE.CL: Transfer-Encoding then Content-Length",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunk(clData) + "0\r\n\r\n" + endRequest,
			want: []outcome{rejected("400"), {
				client:  []string{fmt.Sprintf("200 POST /a %d:%s", len(clData), clData), end},
				backend: []string{fmt.Sprintf("POST /a %d:%s", len(clData), clData), "GET /end 0:"},
			}},
		},
		{
			name: "two Content-Length values",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: " + strconv.Itoa(len(smuggled)+3) + "\r\n\r\nabc" + smuggled + endRequest,
			want: []outcome{rejected("400")},
		},
		{
			name: "two equal Content-Length fields",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello" + endRequest,
			want: []outcome{rejected("400"), {
				client:  []string{"200 POST /a 5:hello", end},
				backend: []string{"POST /a 5:hello", "GET /end 0:"},
			}},
		},
		{
			name: "Content-Length list",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello" + endRequest,
			want: []outcome{rejected("400")},
		},
		{
			name: "signed Content-Length",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello" + endRequest,
			want: []outcome{rejected("400")},
		},
		{
			name: "negative Content-Length",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n" + endRequest,
			want: []outcome{rejected("400")},
		},
		{
			name: "Content-Length beyond int64",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n" + endRequest,
			want: []outcome{rejected("400")},
		},
		{
			name: "Content-Length with leading zeros",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 005\r\n\r\nhello" + endRequest,
			want: []outcome{{
				client:  []string{"200 POST /a 5:hello", end},
				backend: []string{"POST /a 5:hello", "GET /end 0:"},
			}},
		},
		{
			name: "space before colon in Content-Length",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello" + endRequest,
			want: []outcome{rejected("400")},
		},
		{
			name: "space before colon in Transfer-Encoding",
			raw:  withLength("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: LEN\r\nTransfer-Encoding : chunked\r\n\r\n", teBody) + endRequest,
			want: []outcome{rejected("400")},
		},
		{
			name: "obs-fold hides Transfer-Encoding in another field",
			raw:  withLength("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: LEN\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n", teBody) + endRequest,
			want: []outcome{rejected("400"), {
				client:  []string{fmt.Sprintf("200 POST /a %d:%s", len(teBody), teBody), end},
				backend: []string{fmt.Sprintf("POST /a %d:%s", len(teBody), teBody), "GET /end 0:"},
			}},
		},
		{
			name: "obs-fold continues Content-Length",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n 0\r\n\r\nhello" + endRequest,
			want: []outcome{rejected("400")},
		},
		{
			name: "Transfer-Encoding folded onto its own line",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\nabc" + endRequest,
			// net/http unfolds it to chunked, then fails reading "abc" as
			// a chunk: 502 with nothing forwarded.
			want: []outcome{rejected("400"), rejected("501"), rejected("502"), {
				client:  []string{"200 POST /a 3:abc", end},
				backend: []string{"POST /a 3:abc", "GET /end 0:"},
			}},
		},
		{
			name: "chunk size overflowing 64 bits",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n" + endRequest,
			want: []outcome{rejected("400"), rejected("502"), {}},
		},
		{
			name: "chunk extensions",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value;q=\"a;b\"\r\nhello\r\n0;last\r\n\r\n" + endRequest,
			want: []outcome{{
				client:  []string{"200 POST /a 5:hello", end},
				backend: []string{"POST /a 5:hello", "GET /end 0:"},
			}},
		},
		{
			name: "bare LF ends chunk lines",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n" + smuggled + endRequest,
			want: []outcome{rejected("400"), rejected("502"), {}},
		},
		{
			name: "bare LF inside a chunk extension",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x\nhello\r\n0\r\n\r\n" + endRequest,
			want: []outcome{rejected("400"), rejected("502"), {}},
		},
		{
			name: "Transfer-Encoding other than chunked",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\nContent-Length: 3\r\n\r\nabc" + endRequest,
			want: []outcome{rejected("400"), rejected("501")},
		},
		{
			name: "two Transfer-Encoding fields",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("abc") + "0\r\n\r\n" + endRequest,
			want: []outcome{rejected("400"), rejected("501")},
		},
		{
			name: "Transfer-Encoding in HTTP/1.0",
			raw:  "POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello" + smuggled,
			want: []outcome{rejected("400"), {
				client:  []string{"200 POST /a 5:hello"},
				backend: []string{"POST /a 5:hello"},
			}},
		},
		{
			name: "NUL in a field value",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nX-A: a\x00\r\nContent-Length: 5\r\n\r\nhello" + endRequest,
			want: []outcome{rejected("400")},
		},
		{
			name: "GET with a body holding a request",
			raw:  withLength("GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: LEN\r\n\r\n", smuggled) + endRequest,
			want: []outcome{{
				client:  []string{fmt.Sprintf("200 GET /a %d:%s", len(smuggled), smuggled), end},
				backend: []string{fmt.Sprintf("GET /a %d:%s", len(smuggled), smuggled), "GET /end 0:"},
			}},
		},
		{
			name: "request line ends in bare LF",
			raw:  withLength("POST /a HTTP/1.1\nHost: x\r\nContent-Length: LEN\r\n\r\n", smuggled) + endRequest,
			want: []outcome{rejected("400"), {
				client:  []string{fmt.Sprintf("200 POST /a %d:%s", len(smuggled), smuggled), end},
				backend: []string{fmt.Sprintf("POST /a %d:%s", len(smuggled), smuggled), "GET /end 0:"},
			}},
		},
		{
			name: "empty line of bare LF ends the head early",
			raw:  withLength("POST /a HTTP/1.1\r\nHost: x\r\n\nContent-Length: LEN\r\n\r\n", smuggled) + endRequest,
			// net/http ends the head at the bare LF: a POST without body,
			// then "Content-Length: ..." as a request line, 400 and close.
			want: []outcome{rejected("400"), {
				client:  []string{"200 POST /a 0:", "400"},
				backend: []string{"POST /a 0:"},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := newWireBackend(t, scripted(echoAnswer))
			p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
			cl := dialWire(t, p.addr)
			cl.send(tc.raw)
			got, _ := cl.readAll()
			// Stopping the proxy closes its pooled backend connections, so
			// once the backend's goroutines end it has recorded everything
			// the proxy sent.
			p.stop()
			be.close()
			res := outcome{client: summary(got), backend: be.requests()}
			var ok []string
			for _, g := range res.client {
				if strings.HasPrefix(g, "200 ") {
					ok = append(ok, strings.TrimPrefix(g, "200 "))
				}
			}
			if !slices.Equal(ok, res.backend) {
				t.Fatalf("backend saw %q, client got answers %q: the two disagree on the requests", res.backend, res.client)
			}
			for _, w := range tc.want {
				if slices.Equal(w.client, res.client) && slices.Equal(w.backend, res.backend) {
					return
				}
			}
			t.Errorf("client got %q, backend saw %q; want one of %+v", res.client, res.backend, tc.want)
		})
	}
}

// TestH1WireSmugglingOnLocalAnswer: a request the proxy answers itself
// (no route: 404) still has its body consumed by Content-Length, so a
// request hidden in the body never reaches a backend; a body too large to
// discard closes the connection instead.
func TestH1WireSmugglingOnLocalAnswer(t *testing.T) {
	smuggled := "GET /api/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct {
		name string
		body string
		want []string
	}{
		{"small body", smuggled, []string{"404", "200 GET /api/end 0:"}},
		{"body over the discard limit", strings.Repeat("x", maxDiscard) + smuggled, []string{"404"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newWireBackend(t, scripted(echoAnswer))
			p := startWireProxy(t, prefixRoute("r", "/api", be.backend()))
			cl := dialWire(t, p.addr)
			cl.send(withLength("POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: LEN\r\n\r\n", tc.body) +
				"GET /api/end HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			got, _ := cl.readAll()
			p.stop()
			be.close()
			if !slices.Equal(summary(got), tc.want) {
				t.Errorf("client got %q, want %q", summary(got), tc.want)
			}
			for _, r := range be.requests() {
				if strings.Contains(r, "smuggled") {
					t.Errorf("backend saw %q", r)
				}
			}
		})
	}
}

// TestH1WireAmbiguousFramingRefused: a request with both Content-Length
// and Transfer-Encoding, in either order, gets 400 and the connection is
// closed (RFC 9112 6.1), so nothing after it is read as another request
// and nothing reaches the backend.
func TestH1WireAmbiguousFramingRefused(t *testing.T) {
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, head := range []string{
		"Content-Length: 5\r\nTransfer-Encoding: chunked",
		"Transfer-Encoding: chunked\r\nContent-Length: 5",
		"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\nContent-Length: 5",
	} {
		t.Run(head, func(t *testing.T) {
			be := newWireBackend(t, scripted(echoAnswer))
			p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
			cl := dialWire(t, p.addr)
			cl.send("POST /a HTTP/1.1\r\nHost: x\r\n" + head + "\r\n\r\n0\r\n\r\n" + smuggled)
			resp, _, _ := cl.response(http.MethodPost)
			if resp.StatusCode != http.StatusBadRequest || !resp.Close {
				t.Errorf("got %d (close %v), want 400 with Connection: close", resp.StatusCode, resp.Close)
			}
			if !cl.closed() {
				t.Error("connection still open after the 400")
			}
			p.stop()
			be.close()
			if got := be.requests(); len(got) != 0 {
				t.Errorf("backend saw %q", got)
			}
		})
	}
}

// TestH1WireHeaderCasePreserved: field names travel in the case received,
// both ways, and values byte for byte.
func TestH1WireHeaderCasePreserved(t *testing.T) {
	heads := make(chan string, 1)
	be := newWireBackend(t, func(b *wireBackend, c net.Conn) {
		br := bufio.NewReader(c)
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		heads <- head.String()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nx-ReSpOnSe-CaSe: Mixed  Value\r\ncontent-length: 2\r\nSET-COOKIE: a=1\r\nset-cookie: b=2\r\n\r\nok")
	})
	p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
	cl := dialWire(t, p.addr)
	cl.send("GET /c HTTP/1.1\r\nhOsT: x\r\nx-CuStOm-HeAdEr: Keep  This\r\nACCEPT: */*\r\nx-dup: 1\r\nX-DUP: 2\r\n\r\n")
	resp, body, err := cl.response(http.MethodGet)
	if err != nil || resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("status %d body %q err %v", resp.StatusCode, body, err)
	}
	head := <-heads
	for _, want := range []string{"\r\nx-CuStOm-HeAdEr: Keep  This\r\n", "\r\nACCEPT: */*\r\n", "\r\nx-dup: 1\r\nX-DUP: 2\r\n"} {
		if !strings.Contains(head, want) {
			t.Errorf("backend head %q lacks %q", head, want)
		}
	}
	raw := cl.raw.String()
	for _, want := range []string{"\r\nx-ReSpOnSe-CaSe: Mixed  Value\r\n", "\r\nSET-COOKIE: a=1\r\nset-cookie: b=2\r\n"} {
		if !strings.Contains(raw, want) {
			t.Errorf("client got %q, lacking %q", raw, want)
		}
	}
}

// TestH1WireChunkedResponseWithTrailers: a chunked response is relayed
// chunk by chunk with its trailer section, chunk extensions dropped, and
// the client connection then serves the next request.
func TestH1WireChunkedResponseWithTrailers(t *testing.T) {
	const chunked = "5\r\nhello\r\n6;ext=\"v\"\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
	const relayed = "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
	be := newWireBackend(t, scripted(func(r *http.Request, _ []byte) (string, bool) {
		if r.RequestURI == "/next" {
			return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext", false
		}
		return "HTTP/1.1 200 OK\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked, false
	}))
	p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
	cl := dialWire(t, p.addr)
	cl.send("GET /c HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
	resp, body, err := cl.response(http.MethodGet)
	if err != nil || body != "hello world" {
		t.Fatalf("body %q, err %v", body, err)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
		t.Errorf("trailer X-Checksum %q, want abc", got)
	}
	if _, after, ok := strings.Cut(cl.raw.String(), "\r\n\r\n"); !ok || after != relayed {
		t.Errorf("relayed body %q, want %q", after, relayed)
	}
	cl.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body, err := cl.response(http.MethodGet); err != nil || resp.StatusCode != 200 || body != "next" {
		t.Errorf("next request on the connection: %d %q %v", resp.StatusCode, body, err)
	}
}

// TestH1WireCloseDelimitedResponse: a body that ends when the backend
// closes arrives whole, re-framed so the client connection stays usable.
func TestH1WireCloseDelimitedResponse(t *testing.T) {
	body := make([]byte, 300<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	be := newWireBackend(t, func(b *wireBackend, c net.Conn) {
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		b.record(r.RequestURI)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
		for rest := body; len(rest) > 0; { // several writes, several reads
			n := min(len(rest), 7000)
			if _, err := c.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
	})
	p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
	cl := dialWire(t, p.addr)
	for i := range 2 {
		cl.send("GET /eof HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, got, err := cl.response(http.MethodGet)
		if err != nil || resp.StatusCode != 200 || got != string(body) {
			t.Fatalf("request %d: status %d, %d of %d bytes, equal %v, err %v", i, resp.StatusCode, len(got), len(body), got == string(body), err)
		}
		if resp.Close {
			t.Errorf("request %d: client connection closed after a close-delimited response", i)
		}
	}
	if n := be.connections(); n != 2 {
		t.Errorf("backend connections %d, want 2 (a close-delimited one is never reused)", n)
	}
}

// staleAfterOne answers one request per connection and closes it without
// saying so (no Connection: close), like a backend whose keep-alive
// timeout just fired; closed gets a value after each close.
func staleAfterOne(closed chan<- struct{}) func(*wireBackend, net.Conn) {
	return func(b *wireBackend, c net.Conn) {
		defer func() { closed <- struct{}{} }()
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		b.record(describe(r, body))
		d := describe(r, body)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(d))+"\r\n\r\n"+d)
		c.Close()
	}
}

// TestH1WireStaleUpstreamConnection: the backend closes a pooled
// connection while it is idle. The next request goes out on it, finds it
// closed before any response byte, and is retried on a new connection when
// replaying it is safe (no body, and a safe method or an idempotency key).
// A request with a body must never reach the backend twice; it may get
// 502 (the engine does not replay bodies) or succeed on a fresh connection.
func TestH1WireStaleUpstreamConnection(t *testing.T) {
	for _, tc := range []struct {
		name, raw, want string
		mustSucceed     bool
	}{
		{"GET", "GET /again HTTP/1.1\r\nHost: x\r\n\r\n", "GET /again 0:", true},
		{"HEAD", "HEAD /again HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD /again 0:", true},
		{"POST with Idempotency-Key", "POST /again HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k1\r\n\r\n", "POST /again 0:", true},
		{"POST with body", "POST /again HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\ndata", "POST /again 4:data", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			closed := make(chan struct{}, 4)
			be := newWireBackend(t, staleAfterOne(closed))
			p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
			cl := dialWire(t, p.addr)
			cl.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, _, err := cl.response(http.MethodGet); err != nil || resp.StatusCode != 200 {
				t.Fatalf("first request: %v", err)
			}
			<-closed // the pooled connection is now closed by the backend
			method, _, _ := strings.Cut(tc.raw, " ")
			cl.send(tc.raw)
			resp, _, err := cl.response(method)
			p.stop()
			be.close()
			seen := be.requests()
			if len(seen) == 0 || seen[0] != "GET /first 0:" {
				t.Fatalf("backend saw %q", seen)
			}
			var again []string
			for _, s := range seen[1:] {
				if s == tc.want {
					again = append(again, s)
				}
			}
			switch {
			case err != nil:
				t.Errorf("response body: %v", err)
			case resp.StatusCode == 200 && len(again) == 1:
			case resp.StatusCode == 502 && len(again) == 0 && !tc.mustSucceed:
				t.Logf("%s on a connection the backend had closed: 502, not retried", tc.name)
			default:
				t.Errorf("status %d, backend saw the request %d times (all: %q)", resp.StatusCode, len(again), seen)
			}
		})
	}
}

// TestH1WireMalformedResponse: a response the proxy cannot relay safely is
// answered 502 in a well-formed response, and the client connection
// survives it.
func TestH1WireMalformedResponse(t *testing.T) {
	for _, tc := range []struct{ name, raw string }{
		{"status code of four digits", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"},
		{"status code missing", "HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n"},
		{"status code of two digits", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n"},
		{"letters in the status code", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"},
		{"HTTP/2.0 status line", "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"not HTTP", "ICY 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"lower-case protocol", "http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"bare LF line ends", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
		{"field without colon", "HTTP/1.1 200 OK\r\nno colon\r\nContent-Length: 0\r\n\r\n"},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"},
		{"NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n"},
		{"two Content-Length values", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"},
		{"negative Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
		{"Transfer-Encoding in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
		{"Content-Length beyond int64", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"},
		{"unasked 101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"},
		{"endless 1xx", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", h1.MaxInterim+1) + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"no response at all", ""},
		{"head cut short", "HTTP/1.1 200 OK\r\nContent-Len"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newWireBackend(t, scripted(func(r *http.Request, _ []byte) (string, bool) {
				if r.RequestURI == "/next" {
					return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext", true
				}
				return tc.raw, true
			}))
			p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
			cl := dialWire(t, p.addr)
			cl.send("GET /bad HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, body, err := cl.response(http.MethodGet)
			if err != nil || resp.StatusCode != http.StatusBadGateway || body != "backend unavailable\n" {
				t.Fatalf("status %d body %q err %v; want 502", resp.StatusCode, body, err)
			}
			cl.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, body, err := cl.response(http.MethodGet); err != nil || resp.StatusCode != 200 || body != "next" {
				t.Errorf("next request: %d %q %v", resp.StatusCode, body, err)
			}
		})
	}
}

// TestH1WireBackendFailsMidBody: when the backend's body ends early, the
// client sees its connection end without a complete message, never a
// response that parses as whole.
func TestH1WireBackendFailsMidBody(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		reset     bool
	}{
		{"Content-Length body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", false},
		{"chunked body without its last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", false},
		{"chunked body cut inside a chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nhello", false},
		{"chunked body with a bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nmore\r\n0\r\n\r\n", false},
		{"chunk without its CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", false},
		{"chunk size beyond 60 bits", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", false},
		{"trailer section cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n", false},
		{"close-delimited body reset", "HTTP/1.1 200 OK\r\n\r\npartial", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newWireBackend(t, func(b *wireBackend, c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, tc.raw)
				if tc.reset {
					c.(*net.TCPConn).SetLinger(0)
				}
			})
			p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
			cl := dialWire(t, p.addr)
			cl.send("GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(cl.br, &http.Request{Method: http.MethodGet})
			if err != nil {
				return // closed before a head: nothing that looks complete
			}
			body, err := io.ReadAll(resp.Body)
			if err == nil {
				t.Fatalf("client read a complete %d response with body %q (raw %q)", resp.StatusCode, body, cl.raw.String())
			}
			if !cl.closed() {
				t.Errorf("client connection left open after a truncated body (%v); got %q", err, cl.raw.String())
			}
		})
	}
}

// TestH1WireResponsesWithoutBody: HEAD responses keep the backend's
// Content-Length and carry no body; 204 and 304 carry no body and no
// framing the proxy made up; the next response follows at once.
func TestH1WireResponsesWithoutBody(t *testing.T) {
	answers := map[string]string{
		"/head": "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/plain\r\n\r\n",
		"/204":  "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
		"/304":  "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n",
		"/next": "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext",
	}
	be := newWireBackend(t, scripted(func(r *http.Request, _ []byte) (string, bool) { return answers[r.RequestURI], false }))
	p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
	cl := dialWire(t, p.addr)
	cl.send("HEAD /head HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /304 HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"v1\"\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	got, clean := cl.readAll(http.MethodHead)
	if want := []string{"200 ", "204 ", "304 ", "200 next"}; !slices.Equal(got, want) || !clean {
		t.Fatalf("responses %q (clean end %v), want %q", got, clean, want)
	}
	heads := strings.Split(cl.raw.String(), "\r\n\r\n")
	if len(heads) != 5 || heads[4] != "next" {
		t.Fatalf("raw responses %q", cl.raw.String())
	}
	if !strings.Contains(heads[0], "\r\nContent-Length: 1234") || strings.Contains(heads[0], "Transfer-Encoding") {
		t.Errorf("HEAD response head %q, want the backend's Content-Length and no Transfer-Encoding", heads[0])
	}
	for _, h := range heads[1:3] {
		if strings.Contains(h, "Content-Length") || strings.Contains(h, "Transfer-Encoding") {
			t.Errorf("bodiless response head %q has framing fields", h)
		}
	}
}

// TestH1WirePipelining: requests sent in one write are answered in order,
// including across a handoff to net/http in the middle (a chunked upload
// is outside the engine's subset) and back-to-back bodies.
func TestH1WirePipelining(t *testing.T) {
	be := newWireBackend(t, scripted(echoAnswer))
	p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
	cl := dialWire(t, p.addr)
	var raw strings.Builder
	var want []string
	for i := range 12 {
		body := strings.Repeat(strconv.Itoa(i), i)
		switch i % 3 {
		case 0:
			fmt.Fprintf(&raw, "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
			body = ""
		case 1:
			raw.WriteString(withLength(fmt.Sprintf("POST /%d HTTP/1.1\r\nHost: x\r\nContent-Length: LEN\r\n\r\n", i), body))
		case 2:
			if i == 8 {
				fmt.Fprintf(&raw, "POST /%d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%s0\r\n\r\n", i, chunk(body))
			} else {
				raw.WriteString(withLength(fmt.Sprintf("PUT /%d HTTP/1.1\r\nHost: x\r\nContent-Length: LEN\r\n\r\n", i), body))
			}
		}
		method := [...]string{"GET", "POST", "PUT"}[i%3]
		if i == 8 {
			method = "POST"
		}
		want = append(want, fmt.Sprintf("200 %s /%d %d:%s", method, i, len(body), body))
	}
	raw.WriteString(endRequest)
	want = append(want, "200 GET /end 0:")
	cl.send(raw.String())
	got, clean := cl.readAll()
	if !slices.Equal(got, want) || !clean {
		t.Errorf("responses (clean end %v):\n got %q\nwant %q", clean, got, want)
	}
}

// TestH1WireChunkedFramingRelayedCleanly: the engine relays chunk-size
// and trailer lines as received, so it must not relay a line that a
// client could split differently: a bare LF (many parsers end lines at
// LF), a bare CR, NUL. Either the response is cut off (the backend broke
// the framing) or the bytes are cleaned; what reaches the client must have
// CRLF line ends only.
// (Found by this test: the engine once passed extensions and trailer lines
// through unchecked.)
func TestH1WireChunkedFramingRelayedCleanly(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"bare LF in a chunk extension", "5;a\nb\r\nhello\r\n0\r\n\r\n"},
		{"bare CR in a chunk extension", "5;a\rb\r\nhello\r\n0\r\n\r\n"},
		{"NUL in a chunk extension", "5;a\x00\r\nhello\r\n0\r\n\r\n"},
		{"bare LF in the last chunk line", "5\r\nhello\r\n0;\n\r\n\r\n"},
		{"bare LF in a trailer", "5\r\nhello\r\n0\r\nX-T: a\nHTTP/1.1 200 OK\r\n\r\n"},
		{"NUL in a trailer", "5\r\nhello\r\n0\r\nX-T: a\x00\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newWireBackend(t, scripted(func(*http.Request, []byte) (string, bool) {
				return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + tc.body, true
			}))
			p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
			cl := dialWire(t, p.addr)
			cl.send("GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			io.Copy(io.Discard, cl.br) // up to the close after the response
			raw := cl.raw.Bytes()
			for i, c := range raw {
				bareLF := c == '\n' && (i == 0 || raw[i-1] != '\r')
				bareCR := c == '\r' && (i+1 == len(raw) || raw[i+1] != '\n')
				if bareLF || bareCR || c == 0 {
					t.Fatalf("byte %#x at %d relayed to the client: %q", c, i, raw)
				}
			}
		})
	}
}

// TestH1WireUnsolicitedBytesOnIdleConnection: bytes a backend sends on a
// pooled connection that has no request outstanding are not an answer to
// the next request. net/http's Transport notices them while the connection
// is idle ("Unsolicited response received on idle HTTP channel") and drops
// the connection.
// (Found by this test: the engine once peeked only at connections idle for
// over a second.)
func TestH1WireUnsolicitedBytesOnIdleConnection(t *testing.T) {
	sent204, sentExtra := make(chan struct{}), make(chan struct{})
	be := newWireBackend(t, func(b *wireBackend, c net.Conn) {
		br := bufio.NewReader(c)
		first := b.connections() == 1
		for i := 0; ; i++ {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			b.record(describe(r, nil))
			if first && i == 0 {
				io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
				<-sent204
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
				close(sentExtra)
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
		}
	})
	p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
	cl := dialWire(t, p.addr)
	cl.send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _, err := cl.response(http.MethodGet); err != nil || resp.StatusCode != 204 {
		t.Fatalf("first response: %v", err)
	}
	close(sent204)
	<-sentExtra
	cl.send("GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body, err := cl.response(http.MethodGet)
	if err != nil || resp.StatusCode != 200 || body != "good" {
		t.Errorf("second response: %d %q (%v), want 200 \"good\" from the backend's answer to it", resp.StatusCode, body, err)
	}
}

// TestH1WireClientClosesMidBody: a client that stops halfway through its
// body never makes the backend see a complete request.
func TestH1WireClientClosesMidBody(t *testing.T) {
	be := newWireBackend(t, scripted(echoAnswer))
	p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
	cl := dialWire(t, p.addr)
	cl.send("POST /half HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
	cl.c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, cl.br)
	p.stop()
	be.close()
	if seen := be.requests(); len(seen) != 0 {
		t.Errorf("backend saw %q from a request the client never finished", seen)
	}
}

// TestH1WireTransferCodings: RFC 9112 6.3. A response with both
// Transfer-Encoding: chunked and Content-Length is framed by the chunks
// and relayed without the Content-Length. A coding other than chunked must
// not get lost: the client either gets the response with that coding still
// named, the decoded content, or a 502 (net/http's path answers 502, as its
// Transport refuses such responses).
// (Found by this test: the engine once replaced "gzip, chunked" with its
// own "chunked"; it now answers 502.)
func TestH1WireTransferCodings(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("hello world"))
	zw.Close()
	for _, tc := range []struct{ name, head, body, want string }{
		{"chunked overrides Content-Length", "Content-Length: 3\r\nTransfer-Encoding: chunked", chunk("hello") + "0\r\n\r\n", "hello"},
		{"gzip then chunked", "Transfer-Encoding: gzip, chunked", chunk(gz.String()) + "0\r\n\r\n", "hello world"},
		{"gzip to EOF", "Transfer-Encoding: gzip", gz.String(), "hello world"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newWireBackend(t, scripted(func(*http.Request, []byte) (string, bool) {
				return "HTTP/1.1 200 OK\r\n" + tc.head + "\r\n\r\n" + tc.body, true
			}))
			p := startWireProxy(t, prefixRoute("r", "/", be.backend()))
			cl := dialWire(t, p.addr)
			cl.send("GET /te HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			io.Copy(io.Discard, cl.br)
			head, body, ok := strings.Cut(cl.raw.String(), "\r\n\r\n")
			if !ok {
				t.Fatalf("no response head in %q", cl.raw.String())
			}
			if strings.HasPrefix(head, "HTTP/1.1 502 ") {
				return
			}
			var te []string
			for _, line := range strings.Split(head, "\r\n")[1:] {
				name, value, _ := strings.Cut(line, ":")
				switch {
				case strings.EqualFold(name, "Transfer-Encoding"):
					te = append(te, strings.TrimSpace(value))
				case strings.EqualFold(name, "Content-Length"):
					t.Errorf("relayed %q next to chunked framing", line)
				}
			}
			if !slices.Equal(te, []string{"chunked"}) {
				return // the coding is still named; nothing to decode here
			}
			content, err := io.ReadAll(httputil.NewChunkedReader(strings.NewReader(body)))
			if err != nil || string(content) != tc.want {
				t.Errorf("client got Transfer-Encoding: chunked with content %q (%v), want %q", content, err, tc.want)
			}
		})
	}
}
