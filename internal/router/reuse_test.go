package router

import (
	"testing"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
)

// TestCompileReusesUnchangedRoutes: a recompile keeps the compiled Route of
// every route whose IR did not change (same pointer, so its balancer state
// and metrics carry on), compiles changed and new ones afresh, never hands
// one compiled Route to two IR routes, and reuses nothing across a port
// change (redirects depend on the port).
func TestCompileReusesUnchangedRoutes(t *testing.T) {
	reg := lb.NewRegistry()
	listener := func(port uint32, routes ...ir.Route) *ir.Listener {
		return &ir.Listener{Name: "l", Port: port, VirtualHosts: []ir.VirtualHost{{Name: "vh", Routes: routes}}}
	}
	a, b, c := route("a", prefix("/a")), route("b", prefix("/b")), route("c", prefix("/c"))
	// Two matches of one rule share a name.
	twin1, twin2 := route("twin", exact("/t1")), route("twin", exact("/t2"))
	prev, err := CompileReusing(listener(80, a, b, c, twin1, twin2), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := func(tbl *Table, path string) *Route {
		return tbl.Match(&Request{Host: "x", Path: path, Method: "GET"})
	}
	changed := route("b", prefix("/b"))
	changed.Backends[0].Weight = 7
	d := route("d", prefix("/d"))
	next, err := CompileReusing(listener(80, d, a, changed, twin2, twin1), reg, prev)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/a", "/t1", "/t2"} {
		if byName(next, path) != byName(prev, path) {
			t.Errorf("%s: an unchanged route was compiled again", path)
		}
	}
	if byName(next, "/t1") == byName(next, "/t2") {
		t.Error("two IR routes of one name got the same compiled route")
	}
	if byName(next, "/b") == byName(prev, "/b") {
		t.Error("a changed route was reused")
	}
	if byName(next, "/d") == nil || byName(next, "/c") != nil {
		t.Errorf("new route /d %v, removed route /c %v", byName(next, "/d"), byName(next, "/c"))
	}
	if got := len(next.Routes()); got != 5 {
		t.Errorf("%d routes, want 5", got)
	}

	moved, err := CompileReusing(listener(8080, a), reg, next)
	if err != nil {
		t.Fatal(err)
	}
	if byName(moved, "/a") == byName(next, "/a") {
		t.Error("a route was reused across a port change")
	}
}

// Routes with fingerprints (the config stream's encodings) are compared by
// them alone: an equal fingerprint reuses the compiled route, a different
// one compiles again, and a route without one is compared field by field.
func TestCompileReusesByFingerprint(t *testing.T) {
	reg := lb.NewRegistry()
	listener := func(routes ...ir.Route) *ir.Listener {
		return &ir.Listener{Name: "l", Port: 80, VirtualHosts: []ir.VirtualHost{{Name: "vh", Routes: routes}}}
	}
	a, b := route("a", prefix("/a")), route("b", prefix("/b"))
	a.Fingerprint, b.Fingerprint = "fa", "fb"
	prev, err := CompileReusing(listener(a, b), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	match := func(tbl *Table, path string) *Route { return tbl.Match(&Request{Host: "x", Path: path, Method: "GET"}) }
	a2, b2 := route("a", prefix("/a")), route("b", prefix("/b"))
	a2.Fingerprint, b2.Fingerprint = "fa", "fb-changed" // b2 equal field by field, but another encoding
	next, err := CompileReusing(listener(a2, b2), reg, prev)
	if err != nil {
		t.Fatal(err)
	}
	if match(next, "/a") != match(prev, "/a") {
		t.Error("a route with the same fingerprint was compiled again")
	}
	if match(next, "/b") == match(prev, "/b") {
		t.Error("a route with another fingerprint reused the old compiled route")
	}
	b3 := route("b", prefix("/b")) // no fingerprint: field by field
	last, err := CompileReusing(listener(a2, b3), reg, next)
	if err != nil {
		t.Fatal(err)
	}
	if match(last, "/b") == match(next, "/b") {
		t.Error("a route without a fingerprint was taken as equal to one with")
	}
}
