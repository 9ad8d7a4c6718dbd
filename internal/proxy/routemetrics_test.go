package proxy

import (
	"net/http"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

// resolvedRoutes is how many (gateway, route) pairs have metrics structs.
func (p *testProxy) resolvedRoutes() (routes, backends int) {
	p.resolved.mu.Lock()
	defer p.resolved.mu.Unlock()
	return len(p.resolved.routes), len(p.resolved.backends)
}

// TestRouteMetricsResolvedOnFirstRequest: an Apply makes metrics only for
// requests no route matched; a route's and its backend's come with their
// first request, are counted there, and stay the same across a reload
// that keeps the route (its series continue).
func TestRouteMetricsResolvedOnFirstRequest(t *testing.T) {
	a, b := newEchoBackend(t, "a"), newEchoBackend(t, "b")
	l := httpListener("l", catchAll(prefixRoute("ra", "/a", a.backend(1)), prefixRoute("rb", "/b", b.backend(1))))
	p := startProxy(t, &ir.Snapshot{Listeners: []ir.Listener{l}}, Options{})
	if r, bs := p.resolvedRoutes(); r != 1 || bs != 0 {
		t.Fatalf("after Apply: %d route and %d backend metrics, want 1 (no route) and 0", r, bs)
	}
	c := newClient()
	get := func() {
		t.Helper()
		if resp, _, _ := do(t, c, mustReq(t, "GET", p.url(t, "l")+"/a", nil)); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	get()
	if r, bs := p.resolvedRoutes(); r != 2 || bs != 1 {
		t.Fatalf("after a request to ra: %d route and %d backend metrics, want 2 and 1", r, bs)
	}
	p.resolved.mu.Lock()
	before := p.resolved.routes[routeKey{"default/gw", "ra"}]
	p.resolved.mu.Unlock()

	// Reloaded with rb changed: ra's compiled route is reused, and its
	// metrics are the same struct on the new configuration.
	l.VirtualHosts = []ir.VirtualHost{catchAll(prefixRoute("ra", "/a", a.backend(1)), prefixRoute("rb", "/b", b.backend(2)))}
	if err := p.Apply(&ir.Snapshot{Listeners: []ir.Listener{l}}); err != nil {
		t.Fatal(err)
	}
	get()
	p.resolved.mu.Lock()
	after := p.resolved.routes[routeKey{"default/gw", "ra"}]
	p.resolved.mu.Unlock()
	if after != before {
		t.Error("the route's metrics were made again after a reload that kept it")
	}
	if n := p.histogramCount(t, "http_server_request_duration_seconds", "http_route", "ra", "http_response_status_code", "200"); n != 2 {
		t.Errorf("ra counted %v requests, want 2", n)
	}
	if n := p.histogramCount(t, "http_client_request_duration_seconds", "backend", "default/a:80", "http_response_status_code", "200"); n != 2 {
		t.Errorf("backend default/a:80 counted %v attempts, want 2", n)
	}
	if r, bs := p.resolvedRoutes(); r != 2 || bs != 1 {
		t.Errorf("after the reload: %d route and %d backend metrics, want 2 and 1", r, bs)
	}
}
