package router

import (
	"testing"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
)

// TestCompileSharesPlainBackends: routes of one Compile that send to an
// equal plain backend get one Backend (one balancer: a round robin over
// the Service's endpoints, whichever route a request matched); a backend
// that differs in endpoints, policy, TLS or filters gets its own. When the
// Service's endpoints move, every route to it is recompiled onto one new
// Backend with the new endpoints, none left on the old ones.
func TestCompileSharesPlainBackends(t *testing.T) {
	eps := func(ports ...uint32) []ir.Endpoint {
		var out []ir.Endpoint
		for _, p := range ports {
			out = append(out, ir.Endpoint{Address: "127.0.0.1", Port: p})
		}
		return out
	}
	svc := func(endpoints []ir.Endpoint) ir.Backend {
		return ir.Backend{Name: "ns/svc:80", Weight: 1, Endpoints: endpoints}
	}
	rt := func(name, path string, b ir.Backend) ir.Route {
		return ir.Route{Name: name, Match: prefix(path), Backends: []ir.Backend{b}}
	}
	withFilter := svc(eps(8001, 8002))
	withFilter.Filters = []ir.Filter{{RequestHeaders: &ir.HeaderModifier{Set: []ir.Header{{Name: "X-A", Value: "1"}}}}}
	withTLS := svc(eps(8001, 8002))
	withTLS.TLS = &ir.BackendTLS{ServerName: "svc.example.com", SystemCAs: true}
	maglev := svc(eps(8001, 8002))
	maglev.Policy = ir.LBMaglev
	listener := func(endpoints []ir.Endpoint) *ir.Listener {
		heavier := svc(endpoints)
		heavier.Weight = 5 // the weight is the route's, not the Backend's
		return &ir.Listener{Name: "l", Port: 80, VirtualHosts: []ir.VirtualHost{{Name: "vh", Routes: []ir.Route{
			rt("a", "/a", svc(endpoints)),
			rt("b", "/b", svc(append([]ir.Endpoint(nil), endpoints...))), // equal, another list
			rt("c", "/c", heavier),
			rt("other-endpoints", "/o", svc(eps(8001, 8003))),
			rt("filter", "/f", withFilter),
			rt("tls", "/t", withTLS),
			rt("maglev", "/m", maglev),
		}}}}
	}
	reg := lb.NewRegistry()
	first, err := CompileReusing(listener(eps(8001, 8002)), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	backendOf := func(tbl *Table, path string) *Backend {
		r := tbl.Match(&Request{Host: "x", Path: path, Method: "GET"})
		if r == nil || len(r.Backends()) != 1 {
			t.Fatalf("%s: route %v", path, r)
		}
		return r.Backends()[0]
	}
	shared := backendOf(first, "/a")
	for _, p := range []string{"/b", "/c"} {
		if backendOf(first, p) != shared {
			t.Errorf("%s: an equal plain backend compiled again", p)
		}
	}
	for _, p := range []string{"/o", "/f", "/t", "/m"} {
		if backendOf(first, p) == shared {
			t.Errorf("%s: a different backend shares the plain one", p)
		}
	}
	// One balancer: two requests through different routes take the two
	// endpoints in turn.
	req := &Request{Host: "x", Path: "/a", Method: "GET"}
	if e1, e2 := backendOf(first, "/a").Pick(req), backendOf(first, "/b").Pick(req); e1 == nil || e2 == nil || e1 == e2 {
		t.Errorf("picks through /a and /b: %v, %v; want both endpoints in turn", e1, e2)
	}

	moved, err := CompileReusing(listener(eps(8004)), reg, first)
	if err != nil {
		t.Fatal(err)
	}
	now := backendOf(moved, "/a")
	if now == shared {
		t.Fatal("the endpoints moved, the Backend did not")
	}
	for _, p := range []string{"/b", "/c"} {
		if backendOf(moved, p) != now {
			t.Errorf("%s: not on the moved Service's one Backend", p)
		}
		if e := backendOf(moved, p).Pick(req); e == nil || e.Addr != "127.0.0.1:8004" {
			t.Errorf("%s: picks %v, want the moved endpoint", p, e)
		}
	}
}

// TestCompileSharesRouteLists: routes of one Compile with the same one
// hostname share their host group list, and routes whose one backend is the
// same shared Backend at the same weight share their backend set; a route
// with another weight, another hostname or two backends has its own, and
// every route still matches and picks as compiled alone.
func TestCompileSharesRouteLists(t *testing.T) {
	svc := func(name string, weight uint32) ir.Backend {
		return ir.Backend{Name: name, Weight: weight, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: 8001}}}
	}
	rt := func(name, host, path string, bs ...ir.Backend) ir.Route {
		return ir.Route{Name: name, Hostnames: []string{host}, Match: prefix(path), Backends: bs}
	}
	l := &ir.Listener{Name: "l", Port: 80, VirtualHosts: []ir.VirtualHost{{Name: "vh", Routes: []ir.Route{
		rt("a0", "a.example.com", "/0", svc("ns/a:80", 1)),
		rt("a1", "a.example.com", "/1", svc("ns/a:80", 1)),
		rt("a2", "a.example.com", "/2", svc("ns/a:80", 0)),
		rt("b0", "b.example.com", "/0", svc("ns/a:80", 1), svc("ns/b:80", 1)),
	}}}}
	tbl, err := Compile(l, lb.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	get := func(host, path string) *Route {
		r := tbl.Match(&Request{Host: host, Path: path, Method: "GET"})
		if r == nil {
			t.Fatalf("%s%s: no route", host, path)
		}
		return r
	}
	a0, a1, a2, b0 := get("a.example.com", "/0"), get("a.example.com", "/1"), get("a.example.com", "/2"), get("b.example.com", "/0")
	if a0.Name != "a0" || a1.Name != "a1" || a2.Name != "a2" || b0.Name != "b0" {
		t.Fatalf("matched %s %s %s %s", a0.Name, a1.Name, a2.Name, b0.Name)
	}
	if a0.hosts != a1.hosts || a0.hosts != a2.hosts {
		t.Error("routes with the same hostname have their own host lists")
	}
	if b0.hosts == a0.hosts || (*b0.hosts)[0].key == (*a0.hosts)[0].key {
		t.Error("a route with another hostname shares a host list")
	}
	if a0.backends != a1.backends {
		t.Error("routes with the same one backend at the same weight have their own backend sets")
	}
	if a2.backends == a0.backends || a2.PickBackend(0) != nil {
		t.Error("a route of weight 0 shares the weight-1 set (it must answer 500: no backend)")
	}
	if a0.PickBackend(0) == nil || a0.PickBackend(0) != a1.PickBackend(7) || b0.PickBackend(0) != a0.PickBackend(0) {
		t.Error("routes do not pick the shared Backend")
	}
	if len(b0.Backends()) != 2 || b0.PickBackend(1).Name != "ns/b:80" {
		t.Errorf("two-backend route: %d backends, picks %s for draw 1", len(b0.Backends()), b0.PickBackend(1).Name)
	}
}
