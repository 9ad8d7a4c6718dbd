package proxy

import (
	"net/http"
	"slices"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

// With ForgetRoutes (the data plane) the served configuration shows the
// listeners and virtual hosts but no route, so nothing keeps the decoded
// routes; a next configuration eliding its unchanged routes is served
// from the compiled ones, and the tidy keeps the endpoints of those (and of
// their mirrors), which only the compiled backends still name, while it
// forgets those of a removed route.
func TestForgetRoutesServesElidedRoutesAndKeepsTheirEndpoints(t *testing.T) {
	echo := newEchoBackend(t, "a")
	backend := func(name string, port uint32) ir.Backend {
		return ir.Backend{Name: name, Weight: 1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: port}}}
	}
	a := prefixRoute("a", "/a", echo.backend(1))
	b := prefixRoute("b", "/b", backend("b", 2))
	c := prefixRoute("c", "/c", backend("c", 3))
	c.Filters = []ir.Filter{{Mirror: &ir.Mirror{Backend: backend("m", 4), Numerator: 1, Denominator: 1}}}
	a.Fingerprint, b.Fingerprint, c.Fingerprint = "fa", "fb", "fc"
	first := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(a, b, c))}}
	p := startProxy(t, first, Options{ForgetRoutes: true})

	dump := p.Active()
	if len(dump.Listeners) != 1 || len(dump.Listeners[0].VirtualHosts) != 1 {
		t.Fatalf("the served configuration lost its listener or virtual host: %+v", dump)
	}
	if n := len(dump.Listeners[0].VirtualHosts[0].Routes); n != 0 {
		t.Errorf("the served configuration shows %d routes, want none", n)
	}
	if n := len(first.Listeners[0].VirtualHosts[0].Routes); n != 3 {
		t.Fatalf("Apply changed the caller's snapshot: %d routes", n)
	}

	second := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(
		ir.Route{Fingerprint: "fa", Elided: true},
		ir.Route{Fingerprint: "fc", Elided: true},
	))}}
	if err := p.Apply(second); err != nil {
		t.Fatal(err)
	}
	c1 := newClient()
	if resp, e, _ := do(t, c1, mustReq(t, http.MethodGet, p.url(t, "l")+"/a", nil)); resp.StatusCode != 200 || e.Backend != "a" {
		t.Errorf("/a after the elided config: %d from %q", resp.StatusCode, e.Backend)
	}
	if resp, _, _ := do(t, c1, mustReq(t, http.MethodGet, p.url(t, "l")+"/b", nil)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/b, removed: %d, want 404", resp.StatusCode)
	}
	p.tidy()
	var got []string
	p.registry.Prune(func(addr string) bool { got = append(got, addr); return true })
	slices.Sort(got)
	want := []string{echo.srv.Listener.Addr().String(), "127.0.0.1:3", "127.0.0.1:4"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("registry holds %v after tidy, want %v", got, want)
	}
}
