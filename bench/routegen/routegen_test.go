package routegen

import (
	"strings"
	"testing"

	"github.com/false-systems/rauta/internal/translate"
)

// TestResourcesTranslate checks the generated input is valid Gateway API:
// every route is accepted, resolves its backend, and shows up in the IR.
func TestResourcesTranslate(t *testing.T) {
	for _, n := range []int{1, 10, 250} {
		res := Resources(n)
		if len(res.HTTPRoutes) != n {
			t.Fatalf("n=%d: %d HTTPRoutes", n, len(res.HTTPRoutes))
		}
		out := translate.Translate(res, translate.Options{})
		if len(out.IR.Listeners) != 1 {
			t.Fatalf("n=%d: %d listeners, want 1", n, len(out.IR.Listeners))
		}
		seen := map[string]bool{}
		for _, vh := range out.IR.Listeners[0].VirtualHosts {
			for _, r := range vh.Routes {
				for _, b := range r.Backends {
					if b.Invalid || len(b.Endpoints) != 3 {
						t.Errorf("n=%d: route %s backend %s: invalid=%v, %d endpoints", n, r.Name, b.Name, b.Invalid, len(b.Endpoints))
					}
				}
				parts := strings.Split(r.Name, "/")
				if len(parts) >= 3 {
					seen[parts[1]+"/"+parts[2]] = true
				}
			}
		}
		if len(seen) != n {
			t.Errorf("n=%d: IR holds rules of %d HTTPRoutes, want %d", n, len(seen), n)
		}
		for _, rs := range out.Status.HTTPRoutes {
			for _, p := range rs.Status.Parents {
				for _, c := range p.Conditions {
					if c.Status != "True" {
						t.Errorf("n=%d: route %s/%s condition %s=%s: %s", n, rs.Namespace, rs.Name, c.Type, c.Status, c.Message)
					}
				}
			}
		}
	}
}

func TestRequestsCoverRoutes(t *testing.T) {
	reqs := Requests(1000, 64)
	routes := map[string]bool{}
	hosts := map[bool]bool{}
	for _, r := range reqs {
		routes[r.Route] = true
		hosts[r.Host == SharedHost] = true
	}
	if len(routes) < 60 || !hosts[true] || !hosts[false] {
		t.Errorf("64 requests reach %d routes (shared host %v, own host %v); want a spread over both kinds", len(routes), hosts[true], hosts[false])
	}
}
