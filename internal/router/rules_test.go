package router

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

// TestRuleSetMatchesLikeTheFullList: whatever a group's size (below, at and
// above smallRuleSet, where the segment buckets start), the route a ruleSet
// picks is the first of all its routes, in order, that matches the request.
func TestRuleSetMatchesLikeTheFullList(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	segments := []string{"a", "b", "c"}
	path := func() string {
		p := ""
		for range 1 + rng.IntN(2) {
			p += "/" + segments[rng.IntN(len(segments))]
		}
		return p
	}
	for size := 1; size <= 3*smallRuleSet; size++ {
		var routes []ir.Route
		for i := range size {
			var m ir.Match
			switch rng.IntN(4) {
			case 0:
				m = exact(path())
			case 1:
				m = prefix(path())
			case 2:
				m = regex(path() + "/.*")
			default:
				m = prefix("/")
			}
			if rng.IntN(4) == 0 {
				m.Method = "POST"
			}
			routes = append(routes, route(fmt.Sprintf("r%d", i), m))
		}
		tbl := mustCompile(t, &ir.Listener{VirtualHosts: []ir.VirtualHost{{Routes: routes}}})
		for range 200 {
			req := &Request{Path: path() + []string{"", "/", "/x"}[rng.IntN(3)], Method: []string{"GET", "POST"}[rng.IntN(2)]}
			want := ""
			for _, rt := range tbl.Routes() {
				if rt.matcher.match(req) {
					want = rt.Name
					break
				}
			}
			if got := matchName(tbl, req); got != want {
				t.Fatalf("%d routes, %s %s: got %q, the first match in order is %q", size, req.Method, req.Path, got, want)
			}
		}
	}
}
