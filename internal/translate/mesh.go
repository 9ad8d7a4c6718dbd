package translate

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/resources"
)

// MeshControllerName is the controllerName of the route status entries the
// mesh writes for parentRefs to Services (GAMMA). It differs from the
// gateway's, so each keeps its own entries of a route that has both kinds
// of parent.
const MeshControllerName = "rauta.io/mesh"

// MeshResult is the GAMMA part of a translation: the routes of every
// Service port that HTTPRoutes name as parent, and those routes' status.
type MeshResult struct {
	// Ports are the Service ports with at least one accepted route,
	// sorted by Service and port.
	Ports []MeshPort `json:"ports,omitempty"`
	// Status holds an HTTPRoute entry for every route with a Service
	// parentRef, with only those parentRefs, controllerName
	// MeshControllerName.
	Status *Status `json:"status"`
}

// MeshPort is the routing of one Service port.
type MeshPort struct {
	// Service is "namespace/name".
	Service string `json:"service"`
	Port    int32  `json:"port"`
	// AppProtocol is the port's appProtocol as written ("" when unset:
	// the proxy detects HTTP/1.1 from the first bytes).
	AppProtocol string `json:"appProtocol,omitempty"`
	// Producer are the merged routes of the Service's own namespace, in
	// precedence order: they apply to clients of every namespace without
	// consumer routes for this port. Empty: no producer route, such
	// clients go to the Service as if there were no mesh.
	Producer []ir.Route `json:"producer,omitempty"`
	// Consumers are the merged routes of other namespaces, each applying
	// to the clients of its own namespace only, sorted by namespace.
	Consumers []MeshConsumer `json:"consumers,omitempty"`
}

// MeshConsumer is the routes one namespace made for its own clients.
type MeshConsumer struct {
	Namespace string     `json:"namespace"`
	Routes    []ir.Route `json:"routes"`
}

// TranslateMesh computes the GAMMA routing of res (GEP-1426, GEP-1294):
// HTTPRoutes whose parentRef is a Service (group "", kind Service). A
// route in the Service's namespace is a producer route and applies to
// every client; one in another namespace is a consumer route and applies
// only to clients in its own namespace, which then do not see the producer
// routes. Routes of one group merge by Gateway API precedence. parentRef
// port and sectionName (the Service port's name) narrow the route to one
// port, else it takes every TCP port the Service has. hostnames are
// ignored, as GEP-1294 asks. Backends in other namespaces need no
// ReferenceGrant (GEP-1294: a mesh route augments a Service rather than
// exposing it). Like Translate it is pure and never modifies res.
func TranslateMesh(res *resources.Resources) MeshResult {
	t := &translator{
		opts:        Options{ControllerName: MeshControllerName},
		ix:          newIndex(res),
		status:      &Status{},
		endpointsOf: make(map[string][]ir.Endpoint),
		mesh:        true,

		policyAncestors: make(map[*gwv1.BackendTLSPolicy]map[string]*gatewayState),
		backendTLSOf:    make(map[*gwv1.BackendTLSPolicy]*backendTLSResult),
	}
	type group struct {
		port     meshPortKey
		consumer string // "" for producer routes
	}
	entries := make(map[group][]*routeEntry)
	ports := make(map[meshPortKey]corev1.ServicePort)
	for _, r := range res.HTTPRoutes {
		var refs []gwv1.ParentReference
		for _, ref := range dedupParentRefs(r.Spec.ParentRefs) {
			if isServiceRef(ref) {
				refs = append(refs, ref)
			}
		}
		if len(refs) == 0 {
			continue
		}
		tr := t.httpRoute(r)
		key := r.Namespace + "/" + r.Name
		var parents []gwv1.RouteParentStatus
		for _, ref := range refs {
			svcNS := cmp.Or(string(ptrOr(ref.Namespace)), r.Namespace)
			sps, accepted := t.meshParent(svcNS, ref)
			if accepted.ok && len(tr.rules) == 0 && tr.totalRules > 0 {
				accepted = cond{false, ruleErrorReason(tr.ruleErrors), "all rules are invalid: " + errors.Join(tr.ruleErrors...).Error()}
			}
			if accepted.ok {
				consumer := ""
				if svcNS != r.Namespace {
					consumer = r.Namespace
				}
				for _, sp := range sps {
					pk := meshPortKey{svcNS, string(ref.Name), sp.Port}
					ports[pk] = sp
					g := group{pk, consumer}
					for _, rule := range tr.rules {
						for mi := range rule.routes {
							entries[g] = append(entries[g], t.newRouteEntry(&rule.routes[mi], rule.routes[mi].Hostnames, rule.routes[mi].Fingerprint,
								r.CreationTimestamp.Time, key, rule.index, mi, len(entries[g]), nil))
						}
					}
				}
			}
			parents = append(parents, gwv1.RouteParentStatus{
				ParentRef:      ref,
				ControllerName: MeshControllerName,
				Conditions:     routeConditions(accepted, tr, r.Generation),
			})
		}
		st := gwv1.HTTPRouteStatus{}
		st.Parents = parents
		t.status.HTTPRoutes = append(t.status.HTTPRoutes, HTTPRouteStatus{Namespace: r.Namespace, Name: r.Name, Status: st})
	}

	byPort := make(map[meshPortKey]*MeshPort)
	for g, es := range entries {
		mp := byPort[g.port]
		if mp == nil {
			sp := ports[g.port]
			mp = &MeshPort{Service: g.port.namespace + "/" + g.port.name, Port: g.port.port}
			if sp.AppProtocol != nil {
				mp.AppProtocol = *sp.AppProtocol
			}
			byPort[g.port] = mp
		}
		routes := make([]ir.Route, 0, len(es))
		for _, e := range sortByPrecedence(es) {
			routes = append(routes, e.irRoute())
		}
		if g.consumer == "" {
			mp.Producer = routes
		} else {
			mp.Consumers = append(mp.Consumers, MeshConsumer{Namespace: g.consumer, Routes: routes})
		}
	}
	out := MeshResult{Status: t.status}
	for _, mp := range byPort {
		slices.SortFunc(mp.Consumers, func(a, b MeshConsumer) int { return strings.Compare(a.Namespace, b.Namespace) })
		out.Ports = append(out.Ports, *mp)
	}
	slices.SortFunc(out.Ports, func(a, b MeshPort) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), cmp.Compare(a.Port, b.Port))
	})
	t.sortStatus()
	return out
}

type meshPortKey struct {
	namespace, name string
	port            int32
}

// isServiceRef: the parentRef names a core Service (group "" must be
// written out: an unset group is gateway.networking.k8s.io).
func isServiceRef(ref gwv1.ParentReference) bool {
	return ref.Group != nil && *ref.Group == "" && ref.Kind != nil && *ref.Kind == "Service"
}

func ptrOr[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// meshParent resolves a Service parentRef to the Service ports the route
// applies to, or says why it applies to none.
func (t *translator) meshParent(ns string, ref gwv1.ParentReference) ([]corev1.ServicePort, cond) {
	key := "Service " + ns + "/" + string(ref.Name)
	svc, ok := t.ix.services[nsName(ns, string(ref.Name))]
	if !ok {
		return nil, cond{false, string(gwv1.RouteReasonNoMatchingParent), key + " not found"}
	}
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return nil, cond{false, string(gwv1.RouteReasonNoMatchingParent), key + " is an ExternalName Service: it has no ClusterIP for the mesh to intercept"}
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		return nil, cond{false, string(gwv1.RouteReasonNoMatchingParent), key + " is headless: it has no ClusterIP for the mesh to intercept (GEP-1426)"}
	case svc.Labels[labelServiceProxyName] != "":
		return nil, cond{false, string(gwv1.RouteReasonNoMatchingParent), key + " is labelled " + labelServiceProxyName + ": another proxy serves it, the mesh leaves it alone"}
	}
	var sps []corev1.ServicePort
	var notHTTP []string
	for _, sp := range svc.Spec.Ports {
		if protocolOf(sp.Protocol) != corev1.ProtocolTCP {
			continue
		}
		if ref.Port != nil && sp.Port != int32(*ref.Port) || ref.SectionName != nil && sp.Name != string(*ref.SectionName) {
			continue
		}
		if !meshHTTPPort(sp) {
			notHTTP = append(notHTTP, fmt.Sprintf("%d (appProtocol %q)", sp.Port, *sp.AppProtocol))
			continue
		}
		sps = append(sps, sp)
	}
	if len(sps) == 0 {
		msg := key + " has no TCP port"
		if ref.Port != nil {
			msg += fmt.Sprintf(" %d", *ref.Port)
		}
		if ref.SectionName != nil {
			msg += fmt.Sprintf(" named %q", *ref.SectionName)
		}
		if len(notHTTP) > 0 {
			return nil, cond{false, string(gwv1.RouteReasonUnsupportedValue), msg + " that speaks HTTP: " + strings.Join(notHTTP, ", ") + " is not HTTP (http, kubernetes.io/h2c or unset)"}
		}
		return nil, cond{false, string(gwv1.RouteReasonNoMatchingParent), msg}
	}
	return sps, cond{true, string(gwv1.RouteReasonAccepted), "Route is accepted"}
}

// labelServiceProxyName marks a Service served by another proxy (as in
// internal/mesh: kube-proxy and the mesh skip such Services).
const labelServiceProxyName = "service.kubernetes.io/service-proxy-name"

// meshHTTPPort: an HTTPRoute can apply to the Service port. An unset
// appProtocol is detected by the proxy (HTTP/1.1 or else relayed as it
// is); the others name their protocol.
func meshHTTPPort(sp corev1.ServicePort) bool {
	if sp.AppProtocol == nil {
		return true
	}
	switch strings.ToLower(*sp.AppProtocol) {
	case "http", "kubernetes.io/h2c":
		return true
	}
	return false
}
