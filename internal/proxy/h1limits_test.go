package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/h1"
	"github.com/false-systems/rauta/internal/ir"
)

// headOfSize is a GET request head of exactly n bytes for target, padded
// with one field.
func headOfSize(n int, target string) string {
	base := "GET " + target + " HTTP/1.1\r\nHost: x\r\nX-Pad: \r\n\r\n"
	return strings.Replace(base, "X-Pad: ", "X-Pad: "+strings.Repeat("p", n-len(base)), 1)
}

// headWithFields is a request head with n field lines, Host included.
func headWithFields(n int, start string) string {
	var b strings.Builder
	b.WriteString(start + "Host: x\r\n")
	for i := 1; i < n; i++ {
		b.WriteString("X-F" + strconv.Itoa(i) + ": v\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// limitsProxy serves one echo route on a clear-text listener and an HTTPS
// one, both on the HTTP/1.1 engine (over TLS on HTTPS, tlsaccept.go), which
// hands what it does not serve to net/http's HTTP/1.1 server.
func limitsProxy(t *testing.T, opts Options) (p *testProxy, dialers map[string]func() (net.Conn, error)) {
	t.Helper()
	be := newEchoBackend(t, "a")
	cert := newTestCert(t, "limits", []string{"x"})
	vh := catchAll(prefixRoute("r", "/", be.backend(1)))
	p = startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{
		httpListener("http", vh),
		httpsListener("https", []ir.Certificate{cert.ir}, vh),
	}}, opts)
	plain, secure := p.Addr("http").String(), p.Addr("https").String()
	return p, map[string]func() (net.Conn, error){
		"engine": func() (net.Conn, error) { return net.DialTimeout("tcp", plain, wireTimeout) },
		"https": func() (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: wireTimeout}, "tcp", secure,
				&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		},
	}
}

// sendRaw writes raw from its own goroutine (so a server that answers
// before reading everything cannot block the test), reads the first
// response, and then, when the response closes the connection, what ends
// it: nil for a clean close (FIN), else the error (a reset).
func sendRaw(t *testing.T, dial func() (net.Conn, error), raw string) (status int, end error) {
	t.Helper()
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wireTimeout))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.Close() // unblocks the writer if the server stopped reading
	wg.Go(func() { _, _ = io.WriteString(c, raw) })
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp.StatusCode, err
	}
	if !resp.Close {
		return resp.StatusCode, nil
	}
	_, err = br.ReadByte()
	if errors.Is(err, io.EOF) {
		err = nil
	} else if err == nil {
		err = errors.New("bytes after a response that closes the connection")
	}
	return resp.StatusCode, err
}

// TestRequestHeadLimits pins issue 14's finding 3 on both HTTP/1.1
// servers: a 64 KiB header block and 10,000 fields were forwarded with
// 200, a 1 MiB URI got a reset. Heads at the limits pass; one byte or one
// field more is 431, a longer URI 414; every refusal closes the
// connection cleanly (FIN after the answer, no reset) even while the
// client is still sending.
func TestRequestHeadLimits(t *testing.T) {
	const maxBytes = 60 << 10 // the defaults
	const maxFields = 100
	p, dialers := limitsProxy(t, Options{})
	chunkedPost := "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n" // the engine hands these to net/http
	longURI := "/" + strings.Repeat("u", 1<<20)
	tests := []struct {
		name string
		raw  string
		want int
	}{
		{name: "head at the byte limit", raw: headOfSize(maxBytes, "/"), want: 200},
		{name: "head one byte over", raw: headOfSize(maxBytes+1, "/"), want: 431},
		{name: "64 KiB field", raw: headOfSize(64<<10+100, "/"), want: 431},
		{name: "fields at the limit", raw: headWithFields(maxFields, "GET / HTTP/1.1\r\n"), want: 200},
		{name: "one field over", raw: headWithFields(maxFields+1, "GET / HTTP/1.1\r\n"), want: 431},
		{name: "10,000 fields", raw: headWithFields(10000, "GET / HTTP/1.1\r\n"), want: 431},
		{name: "chunked upload with one field over", raw: headWithFields(maxFields+1, chunkedPost) + "0\r\n\r\n", want: 431},
		{name: "URI at the limit", raw: "GET /" + strings.Repeat("u", h1.MaxRequestURI-1) + " HTTP/1.1\r\nHost: x\r\n\r\n", want: 200},
		{name: "URI one byte over", raw: "GET /" + strings.Repeat("u", h1.MaxRequestURI) + " HTTP/1.1\r\nHost: x\r\n\r\n", want: 414},
		{name: "1 MiB URI", raw: "GET " + longURI + " HTTP/1.1\r\nHost: x\r\n\r\n", want: 414},
	}
	for path, dial := range dialers {
		for _, tc := range tests {
			want := tc.want
			status, end := sendRaw(t, dial, tc.raw)
			if status != want {
				t.Errorf("%s, %s: status %d (%v), want %d", path, tc.name, status, end, want)
				continue
			}
			if want != 200 && end != nil {
				t.Errorf("%s, %s: %d, then the connection ended with %v, want a clean close", path, tc.name, status, end)
			}
		}
	}
	waitConns(t, p, 0)
}

// TestRequestHeadLimitsConfigured: MaxHeaderBytes and MaxHeaderFields are
// the limits, not constants.
func TestRequestHeadLimitsConfigured(t *testing.T) {
	_, dialers := limitsProxy(t, Options{MaxHeaderBytes: 16 << 10, MaxHeaderFields: 10})
	for path, dial := range dialers {
		for _, tc := range []struct {
			name string
			raw  string
			want int
		}{
			{"bytes at the limit", headOfSize(16<<10, "/"), 200},
			{"bytes over", headOfSize(16<<10+1, "/"), 431},
			{"fields at the limit", headWithFields(10, "GET / HTTP/1.1\r\n"), 200},
			{"fields over", headWithFields(11, "GET / HTTP/1.1\r\n"), 431},
		} {
			if status, end := sendRaw(t, dial, tc.raw); status != tc.want {
				t.Errorf("%s, %s: status %d (%v), want %d", path, tc.name, status, end, tc.want)
			}
		}
	}
}

// waitConns waits until the proxy's client connections number n: every
// test of a cut or refused connection checks that it is really gone.
func waitConns(t *testing.T, p *testProxy, n int) {
	t.Helper()
	deadline := time.Now().Add(wireTimeout)
	for p.Conns() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d client connections open, want %d", p.Conns(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
