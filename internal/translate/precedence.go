package translate

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// routeEntry is one match of one rule attached to one listener, with what
// the spec needs to order it.
type routeEntry struct {
	route   ir.Route
	created time.Time
	key     string // "namespace/name" of the route
	rule    int
	match   int
	// seq is the entry's position among its listener's entries: the last
	// key, so equal entries keep their order.
	seq int
	// grpc is set for a GRPCRoute's match: those are ordered by their
	// service and method, not by the path they compile to.
	grpc *grpcRank
}

// grpcRank is what GRPCRoute precedence compares: the characters of the
// matched service and method (0 when the match leaves one open).
type grpcRank struct{ service, method int }

// sortByPrecedence orders entries as the Gateway API spec requires, so the
// proxy can take the first match:
//  1. Exact path, then RegularExpression (implementation-specific: longer
//     patterns first), then PathPrefix with the most characters;
//  2. a method match;
//  3. the most header matches;
//  4. the most query parameter matches;
//  5. the oldest route, then namespace/name alphabetically;
//  6. rule order, then match order within the route.
//
// Hostname precedence is not here: the proxy picks the most specific
// hostname group first, and within a group this order applies.
//
// It sorts pointers: an entry holds a whole ir.Route, and moving those
// while sorting a thousand of them cost more than the comparisons. es is
// left as it is.
func sortByPrecedence(es []*routeEntry) []*routeEntry {
	order := slices.Clone(es)
	slices.SortFunc(order, func(a, b *routeEntry) int {
		return cmp.Or(comparePrecedence(a, b), cmp.Compare(a.seq, b.seq))
	})
	return order
}

func pathRank(t ir.PathMatchType) int {
	switch t {
	case ir.PathExact:
		return 0
	case ir.PathRegex:
		return 1
	default:
		return 2
	}
}

// comparePrecedence is negative when a comes before b.
func comparePrecedence(a, b *routeEntry) int {
	am, bm := &a.route.Match, &b.route.Match
	if a.grpc != nil && b.grpc != nil {
		// GRPCRoute: the most characters of service, then of method, then
		// the most header matches.
		if c := cmp.Or(cmp.Compare(b.grpc.service, a.grpc.service), cmp.Compare(b.grpc.method, a.grpc.method),
			cmp.Compare(len(bm.Headers), len(am.Headers))); c != 0 {
			return c
		}
		return compareAge(a, b)
	}
	if c := cmp.Compare(pathRank(am.Path.Type), pathRank(bm.Path.Type)); c != 0 {
		return c
	}
	if c := cmp.Compare(len(bm.Path.Value), len(am.Path.Value)); c != 0 {
		return c // longer first
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
	return compareAge(a, b)
}

// compareAge breaks ties: the oldest route, then namespace/name, then rule
// and match order.
func compareAge(a, b *routeEntry) int {
	if c := a.created.Compare(b.created); c != 0 {
		return c
	}
	return cmp.Or(strings.Compare(a.key, b.key), cmp.Compare(a.rule, b.rule), cmp.Compare(a.match, b.match))
}
