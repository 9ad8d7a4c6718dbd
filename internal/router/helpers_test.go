package router

import (
	"net/http"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
)

func backend(name string, weight uint32, port uint32) ir.Backend {
	return ir.Backend{Name: name, Weight: weight, Endpoints: []ir.Endpoint{{Address: "127.0.0.1", Port: port}}}
}

func route(name string, m ir.Match, hostnames ...string) ir.Route {
	return ir.Route{Name: name, Hostnames: hostnames, Match: m, Backends: []ir.Backend{backend(name, 1, 8080)}}
}

func prefix(v string) ir.Match { return ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: v}} }
func exact(v string) ir.Match  { return ir.Match{Path: ir.PathMatch{Type: ir.PathExact, Value: v}} }
func regex(v string) ir.Match  { return ir.Match{Path: ir.PathMatch{Type: ir.PathRegex, Value: v}} }

func mustCompile(t testing.TB, l *ir.Listener) *Table {
	t.Helper()
	tbl, err := Compile(l, lb.NewRegistry())
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tbl
}

func matchName(tbl *Table, r *Request) string {
	rt := tbl.Match(r)
	if rt == nil {
		return ""
	}
	return rt.Name
}

func hdr(kv ...string) HeaderGetter {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return HTTPHeader(h)
}
