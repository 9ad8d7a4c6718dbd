package translate

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// attachment is one listener a route attached to, with the route hostnames
// that apply on it (nil: every hostname the listener takes).
type attachment struct {
	listener  *listenerState
	hostnames []string
}

// parentResult is the outcome of one parentRef.
type parentResult struct {
	gateway     *gatewayState // nil when the Gateway does not exist
	attachments []attachment
	accepted    cond
}

// attach resolves one parentRef of a route. It returns ok=false when the
// parent belongs to another controller, so that no status is written for it.
func (t *translator) attach(route metav1.Object, kind string, hostnames []gwv1.Hostname, ref gwv1.ParentReference) (parentResult, bool) {
	group := gwv1.GroupName
	if ref.Group != nil {
		group = string(*ref.Group)
	}
	refKind := "Gateway"
	if ref.Kind != nil {
		refKind = string(*ref.Kind)
	}
	if group != gwv1.GroupName || refKind != "Gateway" && refKind != kindListenerSet {
		return parentResult{}, false
	}
	ns := route.GetNamespace()
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	var (
		res        parentResult
		candidates []*listenerState
		ours       bool
	)
	if refKind == kindListenerSet {
		res, candidates, ours = t.listenerSetParent(ns, string(ref.Name))
	} else {
		res, candidates, ours = t.gatewayParent(ns, string(ref.Name))
	}
	if !ours || res.accepted.reason != "" { // not ours, or already decided
		return res, ours
	}
	// key names the parent in messages (only refusals build one).
	key := func() string { return refKind + " " + ns + "/" + string(ref.Name) }

	if ref.SectionName != nil {
		candidates = filterListeners(candidates, func(l *listenerState) bool { return l.spec.Name == *ref.SectionName })
		if len(candidates) == 0 {
			res.accepted = cond{false, string(gwv1.RouteReasonNoMatchingParent),
				fmt.Sprintf("%s has no listener named %q", key(), *ref.SectionName)}
			return res, true
		}
	}
	if ref.Port != nil {
		candidates = filterListeners(candidates, func(l *listenerState) bool { return l.spec.Port == *ref.Port })
		if len(candidates) == 0 {
			res.accepted = cond{false, string(gwv1.RouteReasonNoMatchingParent),
				fmt.Sprintf("%s has no matching listener on port %d", key(), *ref.Port)}
			return res, true
		}
	}
	allowed := filterListeners(candidates, func(l *listenerState) bool {
		return l.allowsKind(kind) && t.namespaceAllowed(l, route.GetNamespace())
	})
	if len(allowed) == 0 {
		res.accepted = cond{false, string(gwv1.RouteReasonNotAllowedByListeners),
			fmt.Sprintf("no listener of %s allows %s from namespace %q", key(), kind, route.GetNamespace())}
		return res, true
	}
	for _, l := range allowed {
		hs, ok := routeHostnamesOn(l.hostname, hostnames)
		if !ok {
			continue
		}
		res.attachments = append(res.attachments, attachment{listener: l, hostnames: hs})
	}
	if len(res.attachments) == 0 {
		res.accepted = cond{false, string(gwv1.RouteReasonNoMatchingListenerHostname),
			fmt.Sprintf("no hostname of the route matches a listener hostname of %s", key())}
		return res, true
	}
	res.accepted = cond{true, string(gwv1.RouteReasonAccepted), "Route is accepted"}
	return res, true
}

// gatewayParent resolves a parentRef to a Gateway: its own listeners are
// the candidates (a ListenerSet's are reached through the ListenerSet only).
// ours is false for another controller's Gateway.
func (t *translator) gatewayParent(ns, name string) (res parentResult, candidates []*listenerState, ours bool) {
	gs, owned := t.gatewaysByKey[nsName(ns, name)]
	if !owned {
		if _, exists := t.ix.gateways[nsName(ns, name)]; exists {
			return parentResult{}, nil, false // another controller's Gateway
		}
		return parentResult{accepted: cond{false, string(gwv1.RouteReasonNoMatchingParent),
			fmt.Sprintf("Gateway %s/%s not found", ns, name)}}, nil, true
	}
	return parentResult{gateway: gs}, gs.listeners, true
}

// listenerSetParent resolves a parentRef to a ListenerSet: its listeners
// are the candidates. ours is false for a ListenerSet whose parent is not
// an owned Gateway.
func (t *translator) listenerSetParent(ns, name string) (res parentResult, candidates []*listenerState, ours bool) {
	key := ns + "/" + name
	s, owned := t.setsByKey[key]
	if !owned {
		if _, exists := t.ix.sets[nsName(ns, name)]; exists {
			return parentResult{}, nil, false // attached to another controller's Gateway, or to none
		}
		return parentResult{accepted: cond{false, string(gwv1.RouteReasonNoMatchingParent),
			fmt.Sprintf("ListenerSet %s not found", key)}}, nil, true
	}
	res = parentResult{gateway: s.gw}
	if !s.allowed {
		res.accepted = cond{false, string(gwv1.RouteReasonNoMatchingParent),
			fmt.Sprintf("ListenerSet %s is not attached: %s", key, s.accepted.message)}
	}
	return res, s.listeners, true
}

func filterListeners(ls []*listenerState, keep func(*listenerState) bool) []*listenerState {
	var out []*listenerState
	for _, l := range ls {
		if keep(l) {
			out = append(out, l)
		}
	}
	return out
}

// namespaceAllowed applies a listener's allowedRoutes.namespaces to the
// namespace of a route. The default is Same.
func (t *translator) namespaceAllowed(l *listenerState, routeNS string) bool {
	from := gwv1.NamespacesFromSame
	var selector *metav1.LabelSelector
	if ar := l.spec.AllowedRoutes; ar != nil && ar.Namespaces != nil {
		if ar.Namespaces.From != nil {
			from = *ar.Namespaces.From
		}
		selector = ar.Namespaces.Selector
	}
	switch from {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSame:
		return routeNS == l.namespace()
	case gwv1.NamespacesFromSelector:
		if selector == nil {
			return false
		}
		sel, err := metav1.LabelSelectorAsSelector(selector)
		if err != nil {
			return false
		}
		return sel.Matches(labels.Set(t.ix.namespaceLabels(routeNS)))
	default:
		return false
	}
}

// routeHostnamesOn intersects route hostnames with a listener hostname. A
// route without hostnames takes every hostname of the listener (nil, true).
func routeHostnamesOn(listener string, hostnames []gwv1.Hostname) ([]string, bool) {
	if len(hostnames) == 0 {
		return nil, true
	}
	var out []string
	for _, h := range hostnames {
		if got, ok := intersectHostnames(listener, strings.ToLower(string(h))); ok && !contains(out, got) {
			out = append(out, got)
		}
	}
	return out, len(out) > 0
}
