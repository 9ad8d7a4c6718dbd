package translate

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/resources"
)

// unservedRoutes gives TLSRoutes that name a RAUTA Gateway a status. RAUTA
// does not serve the kind yet: no listener lists them in
// supportedKinds, so each such parentRef is Accepted=False
// NotAllowedByListeners (or NoMatchingParent, as for any route), instead of
// the route being left without any status.
func (t *translator) unservedRoutes(res *resources.Resources) {
	for _, r := range res.TLSRoutes {
		if ps := t.unservedParents(r, "TLSRoute", r.Spec.Hostnames, r.Spec.ParentRefs); len(ps) > 0 {
			st := gwv1.TLSRouteStatus{}
			st.Parents = ps
			t.status.TLSRoutes = append(t.status.TLSRoutes, TLSRouteStatus{Namespace: r.Namespace, Name: r.Name, Status: st})
		}
	}
}

func (t *translator) unservedParents(route metav1.Object, kind string, hostnames []gwv1.Hostname, refs []gwv1.ParentReference) []gwv1.RouteParentStatus {
	var out []gwv1.RouteParentStatus
	for _, ref := range dedupParentRefs(refs) {
		res, ours := t.attach(route, kind, hostnames, ref)
		if !ours {
			continue
		}
		acc := res.accepted
		if acc.ok || acc.reason == string(gwv1.RouteReasonNotAllowedByListeners) {
			// acc.ok cannot happen while no listener takes the kind; the
			// refusal stays explicit should that change unnoticed.
			acc = cond{false, string(gwv1.RouteReasonNotAllowedByListeners),
				"RAUTA does not serve " + kind + "s yet; no listener accepts them"}
		}
		out = append(out, gwv1.RouteParentStatus{
			ParentRef:      ref,
			ControllerName: gwv1.GatewayController(t.opts.ControllerName),
			Conditions:     []metav1.Condition{condition(string(gwv1.RouteConditionAccepted), false, acc.reason, acc.message, route.GetGeneration())},
		})
	}
	return out
}
