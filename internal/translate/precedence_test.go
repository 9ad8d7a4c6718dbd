package translate

import (
	"cmp"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// specPrecedence is the Gateway API's order written out key by key, as
// sortByPrecedence documents it: the packed ranks must order exactly like it.
func specPrecedence(a, b *routeEntry) int {
	am, bm := &a.route.Match, &b.route.Match
	if a.grpc != nil && b.grpc != nil {
		if c := cmp.Or(cmp.Compare(b.grpc.service, a.grpc.service), cmp.Compare(b.grpc.method, a.grpc.method),
			cmp.Compare(len(bm.Headers), len(am.Headers))); c != 0 {
			return c
		}
		return specAge(a, b)
	}
	if c := cmp.Compare(pathRank(am.Path.Type), pathRank(bm.Path.Type)); c != 0 {
		return c
	}
	if c := cmp.Compare(len(bm.Path.Value), len(am.Path.Value)); c != 0 {
		return c
	}
	if ma, mb := am.Method != "", bm.Method != ""; ma != mb {
		if ma {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(len(bm.Headers), len(am.Headers)); c != 0 {
		return c
	}
	if c := cmp.Compare(len(bm.QueryParams), len(am.QueryParams)); c != 0 {
		return c
	}
	return specAge(a, b)
}

// specAge: the oldest route, then namespace/name as strings, then rule and
// match order.
func specAge(a, b *routeEntry) int {
	return cmp.Or(cmp.Compare(a.createdSec, b.createdSec), cmp.Compare(a.createdNsec, b.createdNsec),
		strings.Compare(a.key, b.key), cmp.Compare(a.rule, b.rule), cmp.Compare(a.match, b.match))
}

// TestPackedPrecedenceOrdersLikeTheSpec compares the packed comparison with
// the key-by-key one on random entries, HTTP and gRPC mixed, with keys drawn
// from small ranges so that ties at every level are common.
func TestPackedPrecedenceOrdersLikeTheSpec(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tr translator
	types := []ir.PathMatchType{ir.PathExact, ir.PathRegex, ir.PathPrefix}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	entry := func(i int) *routeEntry {
		r := &ir.Route{Match: ir.Match{
			Path:        ir.PathMatch{Type: types[rng.IntN(3)], Value: strings.Repeat("a", rng.IntN(4))},
			Headers:     make([]ir.ValueMatch, rng.IntN(3)),
			QueryParams: make([]ir.ValueMatch, rng.IntN(3)),
		}}
		if rng.IntN(2) == 0 {
			r.Match.Method = "GET"
		}
		var g *grpcRank
		if rng.IntN(3) == 0 {
			g = &grpcRank{service: rng.IntN(3), method: rng.IntN(3)}
		}
		k := rng.IntN(3)
		e := tr.newRouteEntry(r, nil, "", base.Add(time.Duration(rng.IntN(2))*time.Second), "ns/"+string(rune('a'+k)), rng.IntN(2), rng.IntN(2), i, g)
		if g == nil && rng.IntN(4) > 0 {
			e.order = k // an HTTPRoute's position in namespace/name order
		}
		return e
	}
	es := make([]*routeEntry, 300)
	for i := range es {
		es[i] = entry(i)
	}
	sign := func(c int) int { return cmp.Compare(c, 0) }
	for _, a := range es {
		for _, b := range es {
			if got, want := sign(comparePrecedence(a, b)), sign(specPrecedence(a, b)); got != want {
				t.Fatalf("comparePrecedence(%+v, %+v) = %d, the spec's order says %d", *a, *b, got, want)
			}
		}
	}
	// Extremes the packing clamps: a path longer than any other wins.
	long := tr.newRouteEntry(&ir.Route{Match: ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: strings.Repeat("x", 70000)}}}, nil, "", base, "a/a", 0, 0, 0, nil)
	short := tr.newRouteEntry(&ir.Route{Match: ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"}, Method: "GET"}}, nil, "", base, "a/a", 0, 0, 1, nil)
	if comparePrecedence(long, short) >= 0 {
		t.Error("a 70,000-character prefix does not come before a 1-character one")
	}
}
