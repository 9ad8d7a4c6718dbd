package proxy

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

// TestH2CBackendGetsFields pins the request an h2c backend receives now
// that the proxy hands internal/h2client its field list instead of a
// header map: repeated fields arrive in order, the hop-by-hop ones (also
// those Connection names) do not, X-Forwarded-For is set, the Host is the
// client's and the body's length is announced.
func TestH2CBackendGetsFields(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		Header http.Header
		Host   string
		Length int64
		Body   string
	}
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Protocols: protocols,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			json.NewEncoder(w).Encode(seen{r.Header, r.Host, r.ContentLength, string(body)}) //nolint:errcheck // the test reads it
		}),
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	defer srv.Close()
	backend := ir.Backend{Name: "default/h2c:80", Weight: 1, AppProtocol: "h2c", Endpoints: []ir.Endpoint{endpointOf(t, ln.Addr().String())}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("web", catchAll(prefixRoute("r", "/", backend)))}}, Options{})

	req, err := http.NewRequest("POST", p.url(t, "web")+"/svc?x=1", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "app.test"
	req.Header["X-Multi"] = []string{"a", "b"}
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("Keep-Alive", "timeout=5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got seen
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("status %d, decoding the backend's echo: %v", resp.StatusCode, err)
	}
	if !slices.Equal(got.Header["X-Multi"], []string{"a", "b"}) {
		t.Errorf("X-Multi %q, want [a b] in order", got.Header["X-Multi"])
	}
	for _, hop := range []string{"X-Hop", "Keep-Alive", "Connection"} {
		if v, ok := got.Header[hop]; ok {
			t.Errorf("backend got hop-by-hop %s: %q", hop, v)
		}
	}
	if got.Header.Get("X-Forwarded-For") == "" {
		t.Errorf("no X-Forwarded-For at the backend: %v", got.Header)
	}
	if got.Host != "app.test" || got.Length != int64(len("payload")) || got.Body != "payload" {
		t.Errorf("backend got Host %q, length %d, body %q; want app.test, 7, payload", got.Host, got.Length, got.Body)
	}
}

// TestH2CBackendResponseHead: an h2c backend's response head, which
// internal/h2client gives the proxy as a list, reaches an HTTP/2 client
// as that list (h2.WriteHead) and an HTTP/1.1 client through a header
// map, the same either way: repeated values in order, the route's
// response modifiers applied once, no Content-Type made up for a response
// without one; and the trailers to the HTTP/2 client (net/http frames
// this short body with a Content-Length for the HTTP/1.1 one, which
// leaves no room for trailers).
func TestH2CBackendResponseHead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Protocols: protocols,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["X-Multi"] = []string{"a", "b"}
			h.Set("X-Remove", "1")
			h["Content-Type"] = nil // none
			h.Set("Trailer", "X-Trailer")
			io.WriteString(w, "<html>body") //nolint:errcheck // the test reads it
			h.Set("X-Trailer", "t")
		}),
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	defer srv.Close()
	backend := ir.Backend{Name: "default/h2c:80", Weight: 1, AppProtocol: "h2c", Endpoints: []ir.Endpoint{endpointOf(t, ln.Addr().String())}}
	rt := prefixRoute("r", "/", backend)
	rt.Filters = []ir.Filter{{ResponseHeaders: &ir.HeaderModifier{
		Set: []ir.Header{{Name: "X-Set", Value: "1"}}, Add: []ir.Header{{Name: "X-Multi", Value: "c"}}, Remove: []string{"X-Remove"},
	}}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("web", catchAll(rt))}}, Options{})
	for name, c := range map[string]*http.Client{"HTTP/2": h2cClient(), "HTTP/1.1": newClient()} {
		resp, err := c.Get(p.url(t, "web") + "/x")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if string(body) != "<html>body" || !slices.Equal(h["X-Multi"], []string{"a", "b", "c"}) || h.Get("X-Set") != "1" ||
			h["X-Remove"] != nil || h["Content-Type"] != nil || name == "HTTP/2" && resp.Trailer.Get("X-Trailer") != "t" {
			t.Errorf("%s: %q, header %v, trailer %v", name, body, h, resp.Trailer)
		}
	}
}
