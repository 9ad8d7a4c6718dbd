package proxy

import (
	"slices"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

// TestTidyPrunesUnusedEndpoints: after a reload, the deferred tidy keeps
// the endpoints the served routes and mirrors name (endpoint lists shared
// by several routes, as the config stream decodes them, and a shorter list
// over the same array count as what they hold) and forgets the others.
func TestTidyPrunesUnusedEndpoints(t *testing.T) {
	shared := []ir.Endpoint{{Address: "127.0.0.1", Port: 1}, {Address: "127.0.0.1", Port: 2}, {Address: "127.0.0.1", Port: 5}}
	backend := func(name string, eps []ir.Endpoint) ir.Backend {
		return ir.Backend{Name: name, Weight: 1, Endpoints: eps}
	}
	mirrored := prefixRoute("c", "/c", backend("c", []ir.Endpoint{{Address: "127.0.0.1", Port: 3}}))
	mirrored.Filters = []ir.Filter{{Mirror: &ir.Mirror{Backend: backend("m", []ir.Endpoint{{Address: "127.0.0.1", Port: 4}}), Numerator: 1, Denominator: 1}}}
	first := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(
		prefixRoute("a", "/a", backend("s", shared)),
		prefixRoute("b", "/b", backend("s", shared)),
		mirrored,
	))}}
	p := startProxy(t, first, Options{})
	second := &ir.Snapshot{Listeners: []ir.Listener{httpListener("l", catchAll(
		prefixRoute("d", "/d", backend("s", shared[:1])),
		prefixRoute("a", "/a", backend("s", shared[:2])),
		prefixRoute("b", "/b", backend("s", shared[:2])),
	))}}
	if err := p.Apply(second); err != nil {
		t.Fatal(err)
	}
	p.tidy()
	var got []string
	p.registry.Prune(func(addr string) bool { got = append(got, addr); return true })
	slices.Sort(got)
	if want := []string{"127.0.0.1:1", "127.0.0.1:2"}; !slices.Equal(got, want) {
		t.Errorf("registry holds %v after tidy, want %v", got, want)
	}
}
