package translate

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/false-systems/rauta/internal/ir"
)

// routeEntry is one match of one rule attached to one listener, with what
// the spec needs to order it.
type routeEntry struct {
	// route is the translated match, shared with the translation (and the
	// Cache): never written. The attachment's hostnames and fingerprint
	// are set on the copy the IR gets (irRoute), so attaching a thousand
	// routes copies each ir.Route once, not twice.
	route       *ir.Route
	hostnames   []string
	fingerprint string
	// rank packs the HTTP precedence keys (path type and length, method,
	// header and query match counts) so most comparisons of a sort are
	// one integer comparison; grpcRank does the same for GRPCRoute keys.
	rank     uint64
	grpcRank uint64
	// created is the route's creation time as seconds and nanoseconds
	// (two integer comparisons).
	createdSec  int64
	createdNsec int32
	key         string // "namespace/name" of the route
	// order is the route's position among the translation's HTTPRoutes
	// in namespace/name order (-1: another kind): two entries of
	// HTTPRoutes compare their orders instead of their keys.
	order int
	rule  int
	match int
	// seq is the entry's position among its listener's entries: the last
	// key, so equal entries keep their order.
	seq int
	// grpc is set for a GRPCRoute's match: those are ordered by their
	// service and method, not by the path they compile to.
	grpc *grpcRank
}

// entrySlab is how many routeEntries are allocated at once: a translation
// of a thousand routes makes thousands of them.
const entrySlab = 256

// newRouteEntry makes the entry of match mi of rule rule of route key.
func (t *translator) newRouteEntry(route *ir.Route, hostnames []string, fingerprint string, created time.Time, key string, rule, mi, seq int, grpc *grpcRank) *routeEntry {
	if len(t.entries) == 0 {
		t.entries = make([]routeEntry, entrySlab)
	}
	e := &t.entries[0]
	t.entries = t.entries[1:]
	*e = routeEntry{
		route: route, hostnames: hostnames, fingerprint: fingerprint,
		rank:       httpRank(&route.Match),
		createdSec: created.Unix(), createdNsec: int32(created.Nanosecond()),
		key: key, order: -1, rule: rule, match: mi, seq: seq, grpc: grpc,
	}
	if grpc != nil {
		e.grpcRank = grpcRankKey(*grpc, len(route.Match.Headers))
	}
	return e
}

// irRoute is the entry as the IR holds it.
func (e *routeEntry) irRoute() ir.Route {
	r := *e.route
	r.Hostnames, r.Fingerprint = e.hostnames, e.fingerprint
	return r
}

// httpRank packs the HTTP precedence keys into one number that is smaller
// for the entry that comes first: path type (Exact, RegularExpression,
// PathPrefix), then the longer path, then a method match, then more header
// matches, then more query parameter matches.
func httpRank(m *ir.Match) uint64 {
	method := uint64(1)
	if m.Method != "" {
		method = 0
	}
	return uint64(pathRank(m.Path.Type))<<62 |
		uint64(math.MaxUint32-uint32(min(len(m.Path.Value), math.MaxUint32)))<<30 |
		method<<29 |
		uint64(math.MaxUint16-uint16(min(len(m.Headers), math.MaxUint16)))<<13 |
		uint64(0x1fff-min(len(m.QueryParams), 0x1fff))
}

// grpcRankKey packs the GRPCRoute precedence keys the same way: the most
// characters of service, then of method, then the most header matches.
func grpcRankKey(g grpcRank, headers int) uint64 {
	return uint64(math.MaxUint16-uint16(min(g.service, math.MaxUint16)))<<40 |
		uint64(math.MaxUint16-uint16(min(g.method, math.MaxUint16)))<<24 |
		uint64(math.MaxUint16-uint16(min(headers, math.MaxUint16)))
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
	if a.grpc != nil && b.grpc != nil {
		if c := cmp.Compare(a.grpcRank, b.grpcRank); c != 0 {
			return c
		}
		return compareAge(a, b)
	}
	if c := cmp.Compare(a.rank, b.rank); c != 0 {
		return c
	}
	return compareAge(a, b)
}

// compareAge breaks ties: the oldest route, then namespace/name, then rule
// and match order.
func compareAge(a, b *routeEntry) int {
	if c := cmp.Or(cmp.Compare(a.createdSec, b.createdSec), cmp.Compare(a.createdNsec, b.createdNsec)); c != 0 {
		return c
	}
	if a.order >= 0 && b.order >= 0 {
		if c := cmp.Compare(a.order, b.order); c != 0 {
			return c
		}
	} else if c := strings.Compare(a.key, b.key); c != 0 {
		return c
	}
	return cmp.Or(cmp.Compare(a.rule, b.rule), cmp.Compare(a.match, b.match))
}
