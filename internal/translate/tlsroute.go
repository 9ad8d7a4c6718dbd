package translate

import (
	"fmt"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/ir"
)

const kindTLSRoute = "TLSRoute"

// A TLSRoute on a TLS listener is routed by the ClientHello's server name,
// which picks the route whose hostnames match it exactly as an HTTP Host
// picks an HTTPRoute. In Passthrough mode the bytes are relayed to a backend
// endpoint as they are; in Terminate mode the gateway completes the
// handshake with the listener's certificates and relays the plaintext. Each rule becomes
// an ir.Route matching every request ("/" prefix) so that the listener's
// router chooses among TLSRoutes by hostname alone, with the same
// hostname intersection, wildcard and precedence rules as HTTP.

// tlsRoutes translates every TLSRoute, attaches it to its parents and
// records its status.
func (t *translator) tlsRoutes(routes []*gwv1.TLSRoute) {
	for _, r := range routes {
		tr := t.opts.Cache.route(r.UID, r.Generation, func() translatedRoute { return t.tlsRoute(r) })
		if parents := t.attachRoute(r, kindTLSRoute, r.Spec.Hostnames, r.Spec.ParentRefs, tr, nil, -1); len(parents) > 0 {
			st := gwv1.TLSRouteStatus{}
			st.Parents = parents
			t.status.TLSRoutes = append(t.status.TLSRoutes, TLSRouteStatus{Namespace: r.Namespace, Name: r.Name, Status: st})
		}
	}
}

// tlsRoute translates the rules of one TLSRoute.
func (t *translator) tlsRoute(r *gwv1.TLSRoute) translatedRoute {
	rules := make([]streamRule, len(r.Spec.Rules))
	for i, rule := range r.Spec.Rules {
		rules[i] = streamRule{rule.Name, rule.BackendRefs}
	}
	return t.streamRoute(routeID{kindTLSRoute, r.Namespace, r.Name}, rules)
}

// streamRule is what TLSRoute and TCPRoute rules have in common.
type streamRule struct {
	name     *gwv1.SectionName
	backends []gwv1.BackendRef
}

// streamRoute translates the rules of a route whose connections are
// relayed (TLSRoute, TCPRoute): each rule is one ir.Route matching every
// request, so the listener's router chooses among routes by hostname (the
// server name) alone.
func (t *translator) streamRoute(id routeID, rules []streamRule) translatedRoute {
	out := translatedRoute{totalRules: len(rules)}
	for i, rule := range rules {
		named := &gwv1.HTTPRouteRule{Name: rule.name}
		field := fmt.Sprintf("spec.rules[%d]", i)
		var backends []ir.Backend
		var err error
		for j, ref := range rule.backends {
			weight := uint32(1)
			if ref.Weight != nil {
				if *ref.Weight < 0 {
					err = unsupported("backendRefs[%d].weight: must not be negative", j)
					break
				}
				weight = uint32(*ref.Weight)
			}
			b, p := t.backend(id.kind, id.namespace, fmt.Sprintf("%s.backendRefs[%d]", field, j), ref.BackendObjectReference, weight)
			if p != nil {
				out.refProblems = append(out.refProblems, *p)
			}
			if weight > 0 {
				backends = append(backends, b)
			}
		}
		if err != nil {
			out.ruleErrors = append(out.ruleErrors, fmt.Errorf("%s: %w", ruleField(i, named), err))
			continue
		}
		out.rules = append(out.rules, translatedRule{index: i, routes: []ir.Route{{
			Name:     ruleName(id, i, named),
			Match:    ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"}},
			Backends: backends,
		}}})
	}
	return out
}

// terminatesTLS reports a TLS listener whose TLSRoutes get TLS terminated
// at the gateway (mode Terminate, the default): the bytes relayed to the
// backend are the plaintext.
func terminatesTLS(l *gwv1.Listener) bool {
	return l.Protocol == gwv1.TLSProtocolType && (l.TLS == nil || l.TLS.Mode == nil || *l.TLS.Mode == gwv1.TLSModeTerminate)
}
