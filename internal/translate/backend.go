package translate

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/ir"
)

// Service annotations that choose how RAUTA balances across its endpoints.
const (
	AnnotationLBPolicy   = "rauta.io/lb-policy"   // RoundRobin, LeastRequest or Maglev
	AnnotationHashHeader = "rauta.io/hash-header" // request header Maglev hashes; default: client address
)

// refProblem is why a backend reference did not resolve, as a route
// ResolvedRefs reason and message.
type refProblem struct {
	reason  string
	message string
	// policies are the BackendTLSPolicies covering the backend; their
	// status names the Gateways the route attached to.
	policies []*gwv1.BackendTLSPolicy
	// policyOnly marks a note that only carries policies: the reference
	// itself resolved (the route's ResolvedRefs stays True), though an
	// invalid policy can still make the backend Invalid.
	policyOnly bool
}

// backend resolves one backend reference of a route into an ir.Backend.
// An unresolvable reference still yields a Backend (Invalid) so that its
// share of traffic gets 500, as the spec requires.
func (t *translator) backend(routeKind, routeNS, field string, ref gwv1.BackendObjectReference, weight uint32) (ir.Backend, *refProblem) {
	group := ""
	if ref.Group != nil {
		group = string(*ref.Group)
	}
	kind := "Service"
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	ns := routeNS
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	port := int32(0)
	if ref.Port != nil {
		port = int32(*ref.Port)
	}
	name := fmt.Sprintf("%s/%s:%d", ns, ref.Name, port)
	b := ir.Backend{Name: name, Weight: weight}
	invalid := func(reason gwv1.RouteConditionReason, format string, args ...any) (ir.Backend, *refProblem) {
		b.Invalid = true
		return b, &refProblem{reason: string(reason), message: field + ": " + fmt.Sprintf(format, args...)}
	}
	if group != "" || kind != "Service" {
		return invalid(gwv1.RouteReasonInvalidKind, "kind %q in group %q is not supported; use a Service", kind, group)
	}
	from := refSource{Group: gwv1.GroupName, Kind: routeKind, Namespace: routeNS}
	if !t.mesh && !t.ix.referenceAllowed(from, refTarget{Group: "", Kind: "Service", Namespace: ns, Name: string(ref.Name)}) {
		return invalid(gwv1.RouteReasonRefNotPermitted, "Service %s/%s is in another namespace and no ReferenceGrant allows it", ns, ref.Name)
	}
	svc, ok := t.ix.services[nsName(ns, string(ref.Name))]
	if !ok {
		return invalid(gwv1.RouteReasonBackendNotFound, "Service %s/%s not found", ns, ref.Name)
	}
	if ref.Port == nil {
		return invalid(gwv1.RouteReasonBackendNotFound, "port is required for a Service")
	}
	// A UDPRoute's datagrams go to a UDP port of the Service; every
	// other kind connects to a TCP one.
	proto := corev1.ProtocolTCP
	if routeKind == kindUDPRoute {
		proto = corev1.ProtocolUDP
	}
	sp, ok := servicePort(svc, port, proto)
	if !ok {
		return invalid(gwv1.RouteReasonBackendNotFound, "Service %s/%s has no %s port %d", ns, ref.Name, proto, port)
	}
	// Relayed connections and datagrams (TLSRoute, TCPRoute, UDPRoute): the
	// client's bytes reach the backend untouched, so the gateway originates
	// no TLS that a BackendTLSPolicy or a TLS appProtocol could describe.
	passthrough := routeKind == kindTLSRoute || routeKind == kindTCPRoute || routeKind == kindUDPRoute
	var note *refProblem
	if ps := t.ix.backendTLSPolicies(svc, sp); len(ps) > 0 && !passthrough {
		note = &refProblem{policies: ps, policyOnly: true}
		// ps[0] is the policy that applies (most specific, then oldest);
		// an invalid one fails the backend closed: 500, never plain text.
		r := t.resolveBackendTLS(ps[0])
		if r.tls == nil {
			b.Invalid = true
			return b, note
		}
		b.TLS = r.tls
	}
	policy, hashHeader, problem := lbPolicy(svc)
	if problem != "" {
		return invalid(gwv1.RouteReasonUnsupportedValue, "Service %s/%s: %s", ns, ref.Name, problem)
	}
	if b.TLS == nil && tlsProtocol(sp) && !passthrough {
		return invalid(gwv1.RouteReasonUnsupportedProtocol, "Service %s/%s port %d: appProtocol %q asks for TLS to the backend, and no BackendTLSPolicy says which CA and hostname to verify; it sends no plain text there",
			ns, ref.Name, port, *sp.AppProtocol)
	}
	b.Policy, b.HashHeader = policy, hashHeader
	b.AppProtocol = appProtocol(sp)
	b.Endpoints = t.endpoints(svc, sp)
	return b, note
}

// servicePort finds the Service port with number port and protocol proto
// (an empty protocol is TCP, the API default).
func servicePort(svc *corev1.Service, port int32, proto corev1.Protocol) (corev1.ServicePort, bool) {
	for _, p := range svc.Spec.Ports {
		if p.Port == port && protocolOf(p.Protocol) == proto {
			return p, true
		}
	}
	return corev1.ServicePort{}, false
}

func lbPolicy(svc *corev1.Service) (ir.LBPolicy, string, string) {
	policy := ir.LBRoundRobin
	if v, ok := svc.Annotations[AnnotationLBPolicy]; ok {
		switch p := ir.LBPolicy(v); p {
		case ir.LBRoundRobin, ir.LBLeastRequest, ir.LBMaglev:
			policy = p
		default:
			return "", "", fmt.Sprintf("annotation %s: %q is not one of RoundRobin, LeastRequest, Maglev", AnnotationLBPolicy, v)
		}
	}
	return policy, svc.Annotations[AnnotationHashHeader], ""
}

// appProtocol maps the Service port's appProtocol (GEP-1911) to the IR hint.
func appProtocol(sp corev1.ServicePort) string {
	if sp.AppProtocol == nil {
		return ""
	}
	switch *sp.AppProtocol {
	case "kubernetes.io/h2c":
		return "h2c"
	case "kubernetes.io/ws":
		return "ws"
	case "h2":
		// HTTP/2 over TLS; only reached with a BackendTLSPolicy
		// (tlsProtocol).
		return "h2"
	}
	return ""
}

// tlsProtocol reports whether a Service port's appProtocol names a protocol
// over TLS. The spec: a backend the route cannot reach with its appProtocol
// is invalid, ResolvedRefs=False UnsupportedProtocol. Other values RAUTA does
// not know are served as HTTP/1.1, the protocol of the route kind.
func tlsProtocol(sp corev1.ServicePort) bool {
	if sp.AppProtocol == nil {
		return false
	}
	switch strings.ToLower(*sp.AppProtocol) {
	case "kubernetes.io/wss", "https", "wss", "h2", "tls":
		return true
	}
	return false
}

// endpoints lists the ready endpoints of a Service port from its
// EndpointSlices, deduplicated and sorted so the output is stable.
//
// Routes that share a Service port share the result (many routes point at
// the same Service; each slice would otherwise be walked per route): the IR
// is never modified once built.
func (t *translator) endpoints(svc *corev1.Service, sp corev1.ServicePort) []ir.Endpoint {
	key := svc.Namespace + "/" + svc.Name + "/" + sp.Name
	if eps, ok := t.endpointsOf[key]; ok {
		return eps
	}
	eps := t.readEndpoints(svc, sp)
	t.endpointsOf[key] = eps
	return eps
}

func (t *translator) readEndpoints(svc *corev1.Service, sp corev1.ServicePort) []ir.Endpoint {
	seen := make(map[string]bool)
	var out []ir.Endpoint
	for _, es := range t.ix.slices[nsName(svc.Namespace, svc.Name)] {
		if es.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		port, ok := slicePort(es, sp)
		if !ok {
			continue
		}
		for _, ep := range es.Endpoints {
			if !endpointReady(ep) {
				continue
			}
			for _, a := range ep.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				key := netip.AddrPortFrom(ip, uint16(port)).String()
				if seen[key] {
					continue
				}
				seen[key] = true
				out = append(out, ir.Endpoint{Address: ip.String(), Port: uint32(port)})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Address != out[j].Address {
			return out[i].Address < out[j].Address
		}
		return out[i].Port < out[j].Port
	})
	return out
}

// slicePort finds the port of an EndpointSlice that serves a Service port:
// by name, as the EndpointSlice controller writes it.
func slicePort(es *discoveryv1.EndpointSlice, sp corev1.ServicePort) (int32, bool) {
	for _, p := range es.Ports {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if name != sp.Name || p.Port == nil {
			continue
		}
		if p.Protocol != nil && protocolOf(*p.Protocol) != protocolOf(sp.Protocol) {
			continue
		}
		return *p.Port, true
	}
	return 0, false
}

// endpointReady follows the EndpointSlice API: a nil Ready means ready, and a
// terminating endpoint takes no new requests whatever Ready says (it can be
// true for Services that publish not-ready addresses).
func endpointReady(ep discoveryv1.Endpoint) bool {
	c := ep.Conditions
	if c.Terminating != nil && *c.Terminating {
		return false
	}
	return c.Ready == nil || *c.Ready
}

// protocolOf reads an empty protocol as TCP, the API default.
func protocolOf(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}
