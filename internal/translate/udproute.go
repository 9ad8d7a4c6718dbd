package translate

import (
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const kindUDPRoute = "UDPRoute"

// A UDPRoute on a UDP listener relays datagrams: each client address (a
// flow) gets a backend drawn by weight from the route's rules. As with TCP,
// nothing in a datagram names a route, so the first UDPRoute in route
// precedence (oldest, then namespace/name; rules in order) takes every
// flow; the others stay accepted but serve nothing while it exists. The
// backend's Service port must be a UDP port.

// udpRoutes translates every UDPRoute, attaches it to its parents and
// records its status.
func (t *translator) udpRoutes(routes []*gwv1.UDPRoute) {
	for _, r := range routes {
		tr := t.opts.Cache.route(r.UID, r.Generation, func() translatedRoute { return t.udpRoute(r) })
		if parents := t.attachRoute(r, kindUDPRoute, nil, r.Spec.ParentRefs, tr, nil, -1); len(parents) > 0 {
			st := gwv1.UDPRouteStatus{}
			st.Parents = parents
			t.status.UDPRoutes = append(t.status.UDPRoutes, UDPRouteStatus{Namespace: r.Namespace, Name: r.Name, Status: st})
		}
	}
}

// udpRoute translates the rules of one UDPRoute.
func (t *translator) udpRoute(r *gwv1.UDPRoute) translatedRoute {
	rules := make([]streamRule, len(r.Spec.Rules))
	for i, rule := range r.Spec.Rules {
		rules[i] = streamRule{rule.Name, rule.BackendRefs}
	}
	return t.streamRoute(routeID{kindUDPRoute, r.Namespace, r.Name}, rules)
}
