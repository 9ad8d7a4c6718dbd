package router

import (
	"errors"
	"reflect"
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

// An elided route (the config stream's unchanged route: only its
// Fingerprint) is the previous Table's compiled route of that Fingerprint,
// the same pointer; a changed route next to it is compiled again; a second
// elided route of one Fingerprint gets a compiled route of its own that
// matches the same; an elided route the previous Table does not have, or
// had for another port, is refused with ErrUnknownRoute. A Table of routes
// with fingerprints keeps no IR.
func TestCompileResolvesElidedRoutes(t *testing.T) {
	reg := lb.NewRegistry()
	listener := func(port uint32, vhs ...[]ir.Route) *ir.Listener {
		l := &ir.Listener{Name: "l", Port: port}
		for i, routes := range vhs {
			l.VirtualHosts = append(l.VirtualHosts, ir.VirtualHost{Name: "vh" + string(rune('0'+i)), Hostname: []string{"x", "y"}[i], Routes: routes})
		}
		return l
	}
	elided := func(fp string) ir.Route { return ir.Route{Fingerprint: fp, Elided: true} }
	a, b, c := route("a", prefix("/a")), route("b", prefix("/b")), route("c", prefix("/c"))
	a.Fingerprint, b.Fingerprint, c.Fingerprint = "fa", "fb", "fc"
	prev, err := CompileReusing(listener(80, []ir.Route{a, b, c}), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if prev.sources != nil {
		t.Error("a table of routes with fingerprints keeps their IR")
	}
	match := func(tbl *Table, host, path string) *Route {
		return tbl.Match(&Request{Host: host, Path: path, Method: "GET"})
	}
	changed := route("b", prefix("/b2"))
	changed.Fingerprint = "fb2"
	next, err := CompileReusing(listener(80, []ir.Route{elided("fa"), changed, elided("fc")}, []ir.Route{elided("fa")}), reg, prev)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/a", "/c"} {
		if got := match(next, "x", path); got == nil || got != match(prev, "x", path) {
			t.Errorf("%s: the elided route is %p, want the previous table's %p", path, got, match(prev, "x", path))
		}
	}
	if got := match(next, "x", "/b2"); got == nil || got == match(prev, "x", "/b") {
		t.Errorf("the changed route is %p: not compiled again", got)
	}
	if match(next, "x", "/b") != nil {
		t.Error("the route before the change still matches")
	}
	again, first := match(next, "y", "/a"), match(next, "x", "/a")
	if again == nil || again == first || again.Name != "a" {
		t.Errorf("the second elided route of one fingerprint: %p (name %q), the first %p", again, again.Name, first)
	}
	if got := len(next.Routes()); got != 4 {
		t.Errorf("%d routes, want 4", got)
	}

	// The table after that resolves elided routes too (it keeps the
	// fingerprints of what it compiled, not the IR).
	last, err := CompileReusing(listener(80, []ir.Route{elided("fb2")}), reg, next)
	if err != nil {
		t.Fatal(err)
	}
	if match(last, "x", "/b2") != match(next, "x", "/b2") {
		t.Error("an elided route compiled in the table before was compiled again")
	}

	for name, tc := range map[string]struct {
		l    *ir.Listener
		prev *Table
	}{
		"unknown fingerprint": {listener(80, []ir.Route{elided("fa"), elided("nope")}), prev},
		"no previous table":   {listener(80, []ir.Route{elided("fa")}), nil},
		"another port":        {listener(8080, []ir.Route{elided("fa")}), prev},
	} {
		if _, err := CompileReusing(tc.l, reg, tc.prev); !errors.Is(err, ErrUnknownRoute) {
			t.Errorf("%s: %v, want ErrUnknownRoute", name, err)
		}
	}
}

// TestRouteCopyOfCopiesEveryField: copyOf lists Route's fields by name (a
// Route holds an atomic and is not copied whole); a field added to Route
// must be added there, which this count says.
func TestRouteCopyOfCopiesEveryField(t *testing.T) {
	const fields = 8 // Name, Timeouts, Retry, Filters, matcher, backends, hosts, Telemetry
	if n := reflect.TypeFor[Route]().NumField(); n != fields {
		t.Fatalf("Route has %d fields, copyOf was written for %d: copy the new one in copyOf and update this count", n, fields)
	}
	r := &Route{Name: "r", Retry: &ir.Retry{Attempts: 2}, Filters: []Filter{{Kind: FilterRequestHeaders}}, backends: &backendSet{}, hosts: &[]routeHost{{key: "h"}}}
	r.Telemetry.Store(&Telemetry{Gen: 7})
	cp := r.copyOf()
	if cp.Name != r.Name || cp.Retry != r.Retry || &cp.Filters[0] != &r.Filters[0] || cp.backends != r.backends || cp.hosts != r.hosts {
		t.Errorf("copyOf lost a field: %+v", cp)
	}
	if cp.Telemetry.Load() != nil {
		t.Error("a copy carries the original's telemetry")
	}
}
