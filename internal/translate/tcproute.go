package translate

import (
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const kindTCPRoute = "TCPRoute"

// A TCPRoute on a TCP listener relays each connection to a backend drawn by
// weight from the route's rules. TCP carries no name to route by, so when
// several TCPRoutes (or rules) attach to one listener, the first in route
// precedence (oldest, then namespace/name; rules in order) takes every
// connection; the others stay accepted, as the spec allows, but serve
// nothing while it exists.

// tcpRoutes translates every TCPRoute, attaches it to its parents and
// records its status.
func (t *translator) tcpRoutes(routes []*gwv1.TCPRoute) {
	for _, r := range routes {
		tr := t.opts.Cache.route(r.UID, r.Generation, func() translatedRoute { return t.tcpRoute(r) })
		if parents := t.attachRoute(r, kindTCPRoute, nil, r.Spec.ParentRefs, tr, nil, -1); len(parents) > 0 {
			st := gwv1.TCPRouteStatus{}
			st.Parents = parents
			t.status.TCPRoutes = append(t.status.TCPRoutes, TCPRouteStatus{Namespace: r.Namespace, Name: r.Name, Status: st})
		}
	}
}

// tcpRoute translates the rules of one TCPRoute.
func (t *translator) tcpRoute(r *gwv1.TCPRoute) translatedRoute {
	rules := make([]streamRule, len(r.Spec.Rules))
	for i, rule := range r.Spec.Rules {
		rules[i] = streamRule{rule.Name, rule.BackendRefs}
	}
	return t.streamRoute(routeID{kindTCPRoute, r.Namespace, r.Name}, rules)
}
