package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// rawExchange writes raw bytes to addr and returns the status of the first
// response, or 0 when the server closed the connection without one.
func rawExchange(t *testing.T, addr, raw string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestMalformedAndOversizedRequests(t *testing.T) {
	be := newEchoBackend(t, "a")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", be.backend(1))))}}, Options{MaxHeaderBytes: 16 << 10, ReadHeaderTimeout: time.Second})
	addr := p.Addr("l").String()
	longURI := "/" + strings.Repeat("a", 9000)
	tests := []struct {
		name string
		raw  string
		want int
	}{
		{"well formed", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200},
		{"garbage request line", "HELLO THERE, SERVER\r\n\r\n", 400},
		// Shorter than the h2c preface net/http peeks for: answered once
		// ReadHeaderTimeout ends the peek.
		{"tiny garbage", "HELLO\r\n\r\n", 400},
		{"missing Host on HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400},
		{"bad header line", "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400},
		{"space in header name", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400},
		{"conflicting lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"bad escape in path", "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"unsupported version", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505},
		{"URI over 8 KiB", "GET " + longURI + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
		{"URI just under 8 KiB", "GET /" + strings.Repeat("a", 8000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 200},
		{"headers over the limit", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 40<<10) + "\r\n\r\n", 431},
	}
	for _, tc := range tests {
		if got := rawExchange(t, addr, tc.raw); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestSlowClientIsCutOff(t *testing.T) {
	be := newEchoBackend(t, "a")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("r", "/", be.backend(1))))}},
		Options{ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	addr := p.Addr("l").String()
	for _, tc := range []struct {
		name  string
		start string
	}{
		{"headers never finish", "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "},
		{"idle after a request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		io.WriteString(conn, tc.start)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, conn) // returns when the server closes
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: connection held for %v", tc.name, d)
		}
		conn.Close()
	}
}

// FuzzServe feeds arbitrary bytes to the proxy's HTTP/1.1 parser and handler
// over a real socket-free pipe: the proxy must answer or close, never panic.
func FuzzServe(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("GET /x/../y?%zz HTTP/1.1\r\nHost: [::1]:80\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: !!\r\n\r\n"))
	f.Add([]byte("POST /m HTTP/1.1\r\nHost: b.example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("GET http://other/abs HTTP/1.1\r\nHost: c\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"))
	f.Add([]byte("OPTIONS * HTTP/1.1\r\nHost: d\r\nX-Forwarded-For: ,,\r\nTE: trailers\r\n\r\n"))
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	be := newEchoBackend(f, "a")
	r := prefixRoute("r", "/", be.backend(1))
	r.Filters = []ir.Filter{
		{RequestHeaders: &ir.HeaderModifier{Set: []ir.Header{{Name: "Host", Value: "rewritten"}}}},
		{Rewrite: &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/x"}}},
	}
	redirect := ir.Route{Name: "redir", Match: ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/m"}},
		Filters: []ir.Filter{{Redirect: &ir.Redirect{Scheme: "https", Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/"}}}}}
	s, err := New(Options{DefaultAddress: "127.0.0.1"})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Apply(&ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(redirect, r))}}); err != nil {
		f.Fatal(err)
	}
	h := s.byName["l"].srv.Handler
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return // net/http answers 400 itself
		}
		req.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		func() {
			defer func() {
				if v := recover(); v != nil {
					if err, ok := v.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
						t.Fatalf("panic on %q: %v", raw, v)
					}
				}
			}()
			h.ServeHTTP(w, req)
		}()
		if w.Code < 100 || w.Code > 599 {
			t.Fatalf("status %d for %q", w.Code, raw)
		}
	})
}
