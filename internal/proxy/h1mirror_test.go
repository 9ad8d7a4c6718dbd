package proxy

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// TestH1WireMirror: the engine itself mirrors a request whose body came
// with the head. The main answer keeps the backend's header case (only
// the engine does), the copy carries the method, target, fields and body
// intact although the connection's buffer served other requests since, a
// body over the mirror limit is forwarded and not copied, and a request
// the engine hands to net/http (an h2c backend) is mirrored once, not by
// both.
func TestH1WireMirror(t *testing.T) {
	main := newWireBackend(t, scripted(func(r *http.Request, body []byte) (string, bool) {
		return withLength("HTTP/1.1 200 OK\r\nx-main-CASE: kept\r\nContent-Length: LEN\r\n\r\n", describe(r, body)), false
	}))
	var mu sync.Mutex
	var seen []string // the copies' fields, "host x-lower x-before-mirror"
	copies := newWireBackend(t, scripted(func(r *http.Request, body []byte) (string, bool) {
		mu.Lock()
		seen = append(seen, r.Host+" "+r.Header.Get("X-Lower")+" "+r.Header.Get("X-Before-Mirror"))
		mu.Unlock()
		return echoAnswer(r, body)
	}))
	mirrored := func(name, prefix string, b ir.Backend) ir.Route {
		r := prefixRoute(name, prefix, b)
		r.Filters = []ir.Filter{
			{RequestHeaders: &ir.HeaderModifier{Set: []ir.Header{{Name: "X-Before-Mirror", Value: "set"}}}},
			{Mirror: &ir.Mirror{Backend: copies.backend(), Numerator: 1, Denominator: 1}},
		}
		return r
	}
	h2c := main.backend()
	h2c.AppProtocol = "h2c" // an HTTP/1.1 server: the main answer fails, the copy goes
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(
		mirrored("m", "/m", main.backend()), mirrored("h", "/h2c", h2c), prefixRoute("rest", "/", main.backend())))}}, Options{MirrorBodyLimit: 8})
	addr := strings.TrimPrefix(p.url(t, "l"), "http://")

	cl := dialWire(t, addr)
	cl.send(withLength("POST /m/one?q=1 HTTP/1.1\r\nHost: x\r\nx-lower: v\r\nContent-Length: LEN\r\n\r\n", "body") +
		"GET /next HTTP/1.1\r\nHost: y\r\n\r\n")
	resp, body, err := cl.response(http.MethodPost)
	if err != nil || resp.StatusCode != 200 || body != "POST /m/one?q=1 4:body" {
		t.Fatalf("mirrored POST: %d %q %v", resp.StatusCode, body, err)
	}
	if !strings.Contains(cl.raw.String(), "\r\nx-main-CASE: kept\r\n") {
		t.Errorf("the engine did not serve the mirrored request: client got %q", cl.raw.String())
	}
	// Overwrite the connection's buffer with other requests.
	for range 3 {
		cl.send(withLength("PUT /m/other HTTP/1.1\r\nHost: zzzzzzzzzzzz\r\nx-lower: wwwwwwwwwwww\r\nContent-Length: LEN\r\n\r\n", "0123456789"))
	}
	for range 4 {
		if resp, _, err := cl.response(http.MethodGet); err != nil || resp.StatusCode != 200 {
			t.Fatalf("request after the mirrored one: %v %v", resp.StatusCode, err)
		}
	}
	late := dialWire(t, addr)
	late.send("GET /h2c/x HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _, err := late.response(http.MethodGet); err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("h2c route: %v %v, want 502 (the backend speaks HTTP/1.1)", resp.StatusCode, err)
	}

	// The copies: the POST, and the h2c route's GET once; the PUTs' bodies
	// are over the limit.
	want := []string{"POST /m/one?q=1 4:body", "GET /h2c/x 0:"}
	var got []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = copies.requests(); len(got) >= len(want) {
			break
		}
	}
	time.Sleep(100 * time.Millisecond) // room for a second copy of the h2c route's request
	got = copies.requests()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("mirror saw %q, want %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(seen, "x v set") {
		t.Errorf("the copies' fields %q: none is the POST's (x v set)", seen)
	}
}
