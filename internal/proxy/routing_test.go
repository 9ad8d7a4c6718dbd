package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

func TestRoutingStatuses(t *testing.T) {
	be := newEchoBackend(t, "a")
	invalid := ir.Backend{Name: "default/missing:80", Weight: 1, Invalid: true}
	empty := ir.Backend{Name: "default/empty:80", Weight: 1}
	snap := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l",
		ir.VirtualHost{Name: "exact", Hostname: "app.example.com", Routes: []ir.Route{prefixRoute("app", "/", be.backend(1))}},
		catchAll(
			prefixRoute("ok", "/ok", be.backend(1)),
			prefixRoute("invalid", "/invalid", invalid),
			prefixRoute("nobackends", "/nobackends"),
			prefixRoute("empty", "/empty", empty),
			prefixRoute("zero", "/zero", be.backend(0)),
		),
	)}}
	p := startProxy(t, snap, Options{})
	c := newClient()
	tests := []struct {
		host, path  string
		wantStatus  int
		wantBackend string
	}{
		{"", "/ok/1", 200, "a"},
		{"app.example.com", "/anything", 200, "a"},
		{"APP.example.com:1234", "/anything", 200, "a"},
		{"", "/nowhere", 404, ""},
		{"", "/invalid", 500, ""},
		{"", "/nobackends", 500, ""},
		{"", "/empty", 503, ""},
		{"", "/zero", 500, ""},
		{"", "/okay", 404, ""}, // segment-wise prefix
	}
	for _, tc := range tests {
		req := mustReq(t, "GET", p.url(t, "l")+tc.path, nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, e, body := do(t, c, req)
		if resp.StatusCode != tc.wantStatus || e.Backend != tc.wantBackend {
			t.Errorf("%s%s: status %d backend %q, want %d %q (body %q)", tc.host, tc.path, resp.StatusCode, e.Backend, tc.wantStatus, tc.wantBackend, body)
		}
	}
}

func TestForwardedHeadersAndHopByHop(t *testing.T) {
	be := newEchoBackend(t, "a")
	r := prefixRoute("r", "/", be.backend(1))
	// The filter sets a header the client named in Connection: it must
	// survive, which proves hop-by-hop stripping ran before the filter.
	r.Filters = []ir.Filter{{RequestHeaders: &ir.HeaderModifier{Set: []ir.Header{{Name: "x-token", Value: "from-filter"}}}}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(r))}}, Options{})
	req := mustReq(t, "GET", p.url(t, "l")+"/p", nil)
	req.Host = "shop.example.com"
	req.Header.Set("Connection", "keep-alive, X-Token, X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("X-Token", "from-client")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("Proxy-Custom", "1")
	req.Header.Set("Te", "trailers, deflate")
	req.Header.Set("Upgrade", "something") // without Connection: Upgrade it is not an upgrade
	req.Header.Add("X-Forwarded-For", "203.0.113.9")
	req.Header.Add("X-Forwarded-For", "198.51.100.2")
	req.Header.Set("X-Kept", "yes")
	resp, e, _ := do(t, newClient(), req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h := http.Header(e.Header)
	for _, gone := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Authorization", "Proxy-Custom", "Upgrade"} {
		if v, ok := h[gone]; ok {
			t.Errorf("hop-by-hop header %s reached the backend: %q", gone, v)
		}
	}
	checks := map[string]string{
		"X-Token":           "from-filter",
		"X-Kept":            "yes",
		"Te":                "trailers",
		"X-Forwarded-For":   "203.0.113.9, 198.51.100.2, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "shop.example.com",
	}
	for k, want := range checks {
		if got := strings.Join(h[k], ","); got != want {
			t.Errorf("backend saw %s = %q, want %q", k, got, want)
		}
	}
	if e.Host != "shop.example.com" {
		t.Errorf("backend saw Host %q, want the client's", e.Host)
	}
	if _, ok := h["User-Agent"]; !ok {
		// The client sent Go's default User-Agent: it must pass through.
		t.Error("User-Agent dropped")
	}
}

func TestPathAndQueryForwardedAsReceived(t *testing.T) {
	be := newEchoBackend(t, "a")
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(
		ir.Route{Name: "enc", Match: ir.Match{Path: ir.PathMatch{Type: ir.PathExact, Value: "/a%2Fb"}}, Backends: []ir.Backend{be.backend(1)}},
	))}}, Options{})
	resp, e, body := do(t, newClient(), mustReq(t, "GET", p.url(t, "l")+"/a%2Fb?x=%20y&z", nil))
	if resp.StatusCode != 200 || e.URI != "/a%2Fb?x=%20y&z" {
		t.Fatalf("status %d, backend URI %q (%s)", resp.StatusCode, e.URI, body)
	}
	resp, _, _ = do(t, newClient(), mustReq(t, "GET", p.url(t, "l")+"/a/b", nil))
	if resp.StatusCode != 404 {
		t.Errorf("decoded path matched the escaped Exact route: %d", resp.StatusCode)
	}
}

func TestRequestBodyAndMethods(t *testing.T) {
	be := newEchoBackend(t, "a")
	m := ir.Route{Name: "post-only", Match: ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"}, Method: "POST"}, Backends: []ir.Backend{be.backend(1)}}
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(m))}}, Options{})
	payload := strings.Repeat("body-", 50000)
	resp, e, _ := do(t, newClient(), mustReq(t, "POST", p.url(t, "l")+"/upload", strings.NewReader(payload)))
	if resp.StatusCode != 200 || e.Body != payload {
		t.Errorf("status %d, backend got %d body bytes, want %d", resp.StatusCode, len(e.Body), len(payload))
	}
	resp, _, _ = do(t, newClient(), mustReq(t, "GET", p.url(t, "l")+"/upload", nil))
	if resp.StatusCode != 404 {
		t.Errorf("GET on a POST-only route: %d, want 404", resp.StatusCode)
	}
}
