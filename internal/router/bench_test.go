package router

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

// benchListener builds n routes in precedence order on one host: exact
// paths, header-matched prefixes and plain prefixes, plus a regex and the
// catch-all prefix at the end, with three backends each.
func benchListener(n int) *ir.Listener {
	routes := make([]ir.Route, 0, n)
	for i := 0; len(routes) < n-2; i++ {
		bs := []ir.Backend{backend("a", 80, 9000), backend("b", 15, 9001), backend("c", 5, 9002)}
		switch i % 3 {
		case 0:
			routes = append(routes, ir.Route{Name: fmt.Sprintf("exact-%d", i), Match: exact(fmt.Sprintf("/svc-%d/health", i)), Backends: bs})
		case 1:
			m := prefix(fmt.Sprintf("/svc-%d", i))
			m.Headers = []ir.ValueMatch{{Type: ir.StringExact, Name: "X-Env", Value: "canary"}}
			routes = append(routes, ir.Route{Name: fmt.Sprintf("hdr-%d", i), Match: m, Backends: bs})
		default:
			routes = append(routes, ir.Route{Name: fmt.Sprintf("prefix-%d", i), Match: prefix(fmt.Sprintf("/svc-%d/api", i)), Backends: bs})
		}
	}
	routes = append(routes,
		ir.Route{Name: "regex", Match: regex(`/v[0-9]+/items/[a-z0-9-]+`), Backends: []ir.Backend{backend("r", 1, 9003)}},
		ir.Route{Name: "root", Match: prefix("/"), Backends: []ir.Backend{backend("root", 1, 9004)}},
	)
	return &ir.Listener{Name: "ns/gw/80", Port: 80, VirtualHosts: []ir.VirtualHost{
		{Name: "ns/gw/other", Hostname: "*.other.example", Routes: []ir.Route{route("other", prefix("/"))}},
		{Name: "ns/gw/api", Hostname: "api.example.com", Routes: routes},
	}}
}

// benchRequests are requests that reach the last segment-bound routes of the
// table (the worst case for a scan), a regex route and the catch-all.
func benchRequests(n int) []Request {
	h := HTTPHeader(http.Header{"X-Env": {"canary"}, "User-Agent": {"bench"}})
	last := n - 3
	return []Request{
		{Host: "api.example.com", Path: fmt.Sprintf("/svc-%d/api/users", last), Method: "GET", Header: h, RawQuery: "page=2"},
		{Host: "API.example.com:443", Path: fmt.Sprintf("/svc-%d/health", last-last%3), Method: "GET", Header: h},
		{Host: "api.example.com", Path: "/v2/items/abc-123", Method: "POST", Header: h},
		{Host: "api.example.com", Path: "/unknown/path", Method: "GET", Header: h},
	}
}

func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			tbl := mustCompile(b, benchListener(n))
			reqs := benchRequests(n)
			for i := range reqs {
				if tbl.Match(&reqs[i]) == nil {
					b.Fatalf("request %d (%s) did not match", i, reqs[i].Path)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if tbl.Match(&reqs[i%len(reqs)]) == nil {
					b.Fatal("no match")
				}
			}
		})
	}
}

func BenchmarkPickBackend(b *testing.B) {
	tbl := mustCompile(b, benchListener(10))
	req := benchRequests(10)[0]
	rt := tbl.Match(&req)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		be := rt.PickBackend(uint64(i) * 0x9e3779b97f4a7c15)
		if be.Pick(&req) == nil {
			b.Fatal("no endpoint")
		}
	}
}

func BenchmarkHeaderFilter(b *testing.B) {
	m := NewHeaderModifier(&ir.HeaderModifier{
		Set:    []ir.Header{{Name: "X-Gateway", Value: "rauta"}, {Name: "x-env", Value: "prod"}},
		Add:    []ir.Header{{Name: "X-Trace", Value: "on"}},
		Remove: []string{"x-internal", "cookie"},
	})
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"bench"}, "X-Internal": {"secret"}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		delete(h, "X-Trace") // Add of a header not present: no allocation
		m.Apply(h)
	}
}

// TestMatchDoesNotAllocate pins the zero-allocation contract of the request
// path: Match, PickBackend, Backend.Pick and header filters.
func TestMatchDoesNotAllocate(t *testing.T) {
	for _, n := range []int{10, 1000} {
		tbl := mustCompile(t, benchListener(n))
		reqs := benchRequests(n)
		for i := range reqs {
			r := &reqs[i]
			allocs := testing.AllocsPerRun(100, func() {
				rt := tbl.Match(r)
				if rt == nil {
					t.Fatal("no match")
				}
				if be := rt.PickBackend(7); be != nil {
					be.Pick(r)
				}
			})
			if allocs != 0 {
				t.Errorf("routes=%d request %q %q: %v allocations, want 0", n, r.Host, r.Path, allocs)
			}
		}
	}
	mg := ir.Route{Name: "mg", Match: prefix("/"), Backends: []ir.Backend{{Name: "mg", Weight: 1, Policy: ir.LBMaglev, HashHeader: "X-User",
		Endpoints: []ir.Endpoint{{Address: "10.0.0.1", Port: 80}, {Address: "10.0.0.2", Port: 80}}}}}
	tbl := mustCompile(t, &ir.Listener{VirtualHosts: []ir.VirtualHost{{Routes: []ir.Route{mg}}}})
	r := &Request{Path: "/x", ClientIP: "192.0.2.7", Header: hdr("X-User", "alice")}
	if a := testing.AllocsPerRun(100, func() { tbl.Match(r).PickBackend(1).Pick(r) }); a != 0 {
		t.Errorf("maglev pick: %v allocations, want 0", a)
	}
	m := NewHeaderModifier(&ir.HeaderModifier{Set: []ir.Header{{Name: "a", Value: "1"}}, Add: []ir.Header{{Name: "b", Value: "2"}}, Remove: []string{"c"}})
	h := http.Header{"C": {"x"}}
	if a := testing.AllocsPerRun(100, func() { delete(h, "B"); m.Apply(h) }); a != 0 {
		t.Errorf("header filter: %v allocations, want 0", a)
	}
}
