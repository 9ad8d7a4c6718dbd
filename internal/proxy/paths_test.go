package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/router"
)

// rawTarget sends one request line as is over a new connection (no client
// library to clean the path) and returns the status and body.
func rawTarget(t *testing.T, addr, target string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: paths.test\r\nConnection: close\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func decodeEcho(body string) echoed {
	var e echoed
	_ = json.Unmarshal([]byte(body), &e)
	return e
}

// getBoth asks through both engines: the HTTP/1.1 engine (raw request
// line) and net/http's handler (HTTP/2 with prior knowledge, whose client
// sends :path as written too).
func getBoth(t *testing.T, p *testProxy, target string) (h1, h2 int, h1body, h2body string) {
	t.Helper()
	h1, h1body = rawTarget(t, p.Addr("l").String(), target)
	resp, _, body := do(t, h2cClient(), mustReq(t, "GET", p.url(t, "l")+target, nil))
	if resp.ProtoMajor != 2 {
		t.Fatalf("h2c client spoke %s", resp.Proto)
	}
	return h1, resp.StatusCode, h1body, body
}

// Finding 6 of issue 14: "/api/../secret" matched the /api prefix and was
// forwarded as is, escaping the route's boundary.
func TestPathTraversalDoesNotEscapeRoute(t *testing.T) {
	api := newEchoBackend(t, "api")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("api", "/api", api.backend(1))))}}, Options{})
	for _, target := range []string{"/api/../secret", "/api/%2e%2e/secret", "/api/.%2E/secret", "/api/../../secret?x=1"} {
		h1, h2, _, _ := getBoth(t, p, target)
		if h1 != http.StatusNotFound || h2 != http.StatusNotFound {
			t.Errorf("GET %s: HTTP/1.1 %d, HTTP/2 %d; want 404 from both", target, h1, h2)
		}
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.seen) != 0 {
		t.Errorf("the /api backend received %d requests, first %q", len(api.seen), api.seen[0].URI)
	}
}

// The path that was matched is the path forwarded, query untouched, and
// what a prefix rewrite sees.
func TestNormalizedPathForwarded(t *testing.T) {
	api, secret, rw := newEchoBackend(t, "api"), newEchoBackend(t, "secret"), newEchoBackend(t, "rw")
	rewrite := prefixRoute("rw", "/old", rw.backend(1))
	rewrite.Filters = []ir.Filter{{Rewrite: &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/new"}}}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(
		prefixRoute("api", "/api", api.backend(1)),
		prefixRoute("secret", "/secret", secret.backend(1)),
		rewrite,
	))}}, Options{})
	tests := []struct{ target, backend, uri string }{
		{"/api/../secret", "secret", "/secret"},
		{"/api/../secret?a=/../b&c=%2e%2e", "secret", "/secret?a=/../b&c=%2e%2e"},
		{"/../secret/./x", "secret", "/secret/x"},
		{"/api/%2E%2e/secret/%7Ex", "secret", "/secret/~x"},
		{"//api///v1//", "api", "/api/v1/"},
		{"/api/v1/..", "api", "/api/"},
		{"/api/x/../../old/./a/../b", "rw", "/new/b"},
	}
	for _, tt := range tests {
		h1, h2, b1, b2 := getBoth(t, p, tt.target)
		if h1 != 200 || h2 != 200 {
			t.Errorf("GET %s: HTTP/1.1 %d %q, HTTP/2 %d %q", tt.target, h1, b1, h2, b2)
			continue
		}
		for i, body := range []string{b1, b2} {
			if e := decodeEcho(body); e.Backend != tt.backend || e.URI != tt.uri {
				t.Errorf("GET %s (engine %d): backend %q saw %q, want %q %q", tt.target, i+1, e.Backend, e.URI, tt.backend, tt.uri)
			}
		}
	}
}

func TestPathOptions(t *testing.T) {
	be := newEchoBackend(t, "a")
	snap := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("all", "/", be.backend(1))))}}
	tests := []struct {
		opts   router.PathOptions
		target string
		status int
		uri    string
	}{
		{router.PathOptions{}, "/a%2Fb", 200, "/a%2Fb"},
		{router.PathOptions{}, "/a%2fb%2F..c", 200, "/a%2Fb%2F..c"},
		// Kept escaped slashes never hide a dot segment (a backend that
		// decodes them would leave the matched prefix).
		{router.PathOptions{}, "/a%2F..%2Fb", 400, ""},
		{router.PathOptions{}, "/api/..%2fsecret", 400, ""},
		{router.PathOptions{}, `/api/..\secret`, 400, ""},
		{router.PathOptions{EscapedSlashes: router.EscapedSlashesReject}, "/a%2F..%2Fb", 400, ""},
		{router.PathOptions{EscapedSlashes: router.EscapedSlashesReject}, "/a%5cb", 400, ""},
		{router.PathOptions{EscapedSlashes: router.EscapedSlashesReject}, "/a/b", 200, "/a/b"},
		{router.PathOptions{KeepSlashes: true}, "//a//b", 200, "//a//b"},
		{router.PathOptions{Disable: true}, "/x/../y", 200, "/x/../y"},
	}
	for _, tt := range tests {
		p := startProxy(t, snap, Options{Paths: tt.opts})
		h1, h2, b1, b2 := getBoth(t, p, tt.target)
		if h1 != tt.status || h2 != tt.status {
			t.Errorf("%+v GET %s: HTTP/1.1 %d, HTTP/2 %d; want %d", tt.opts, tt.target, h1, h2, tt.status)
			continue
		}
		if tt.status != 200 {
			continue
		}
		for _, body := range []string{b1, b2} {
			if e := decodeEcho(body); e.URI != tt.uri {
				t.Errorf("%+v GET %s: backend saw %q, want %q", tt.opts, tt.target, e.URI, tt.uri)
			}
		}
	}
	if _, err := New(Options{Paths: router.PathOptions{EscapedSlashes: "unescape"}}); err == nil {
		t.Error("New accepted escaped slashes \"unescape\"")
	}
}

// RFC 9113 8.3.1: an HTTP/2 :path must be origin-form (or "*" for OPTIONS);
// "http://evil.example/api" is malformed, not a request for /api.
func TestHTTP2AbsolutePathRefused(t *testing.T) {
	be := newEchoBackend(t, "a")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(prefixRoute("api", "/api", be.backend(1))))}}, Options{})
	conn, err := net.DialTimeout("tcp", p.Addr("l").String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = newHpackDecoder()
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	writeHeaders(t, fr, 1, "http://evil.example/api", "paths.test")
read:
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if st := f.PseudoValue("status"); st != "400" {
				t.Fatalf("absolute-form :path answered %s, want 400", st)
			}
			break read
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			break read // a stream or connection error is a fine answer too
		}
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.seen) != 0 {
		t.Fatalf("backend received %d requests", len(be.seen))
	}
}
