package translate

import (
	"sort"
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
}

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
func sortByPrecedence(es []routeEntry) {
	sort.SliceStable(es, func(i, j int) bool { return precedes(&es[i], &es[j]) })
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

func precedes(a, b *routeEntry) bool {
	am, bm := &a.route.Match, &b.route.Match
	if ra, rb := pathRank(am.Path.Type), pathRank(bm.Path.Type); ra != rb {
		return ra < rb
	}
	if la, lb := len(am.Path.Value), len(bm.Path.Value); la != lb {
		return la > lb
	}
	if ma, mb := am.Method != "", bm.Method != ""; ma != mb {
		return ma
	}
	if ha, hb := len(am.Headers), len(bm.Headers); ha != hb {
		return ha > hb
	}
	if qa, qb := len(am.QueryParams), len(bm.QueryParams); qa != qb {
		return qa > qb
	}
	if !a.created.Equal(b.created) {
		return a.created.Before(b.created)
	}
	if a.key != b.key {
		return a.key < b.key
	}
	if a.rule != b.rule {
		return a.rule < b.rule
	}
	return a.match < b.match
}
