package translate

// ListenerSets (GEP-1713) add listeners to a parent Gateway that allows them
// (spec.allowedListeners). Their listeners are served by the parent's data
// plane next to its own, but are reached only by routes whose parentRef
// names the ListenerSet: a Gateway parentRef reaches the Gateway's own
// listeners only.

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const kindListenerSet = "ListenerSet"

// listenerSetState is what the translator learns about one ListenerSet whose
// parent is an owned Gateway.
type listenerSetState struct {
	ls  *gwv1.ListenerSet
	key string // "namespace/name"
	gw  *gatewayState
	// allowed is false when the parent's allowedListeners does not select
	// the ListenerSet's namespace; it then has no listeners.
	allowed   bool
	listeners []*listenerState
	accepted  cond
}

// listenerSetsByParent groups ListenerSets by the Gateway their parentRef
// names ("namespace/name"), each group in precedence order: oldest first,
// then by namespace and name (the order in which their listeners claim
// ports and hostnames after the Gateway's own).
func listenerSetsByParent(sets []*gwv1.ListenerSet) map[string][]*gwv1.ListenerSet {
	sorted := append([]*gwv1.ListenerSet(nil), sets...)
	sort.Slice(sorted, func(i, j int) bool {
		if ti, tj := sorted[i].CreationTimestamp, sorted[j].CreationTimestamp; !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		if sorted[i].Namespace != sorted[j].Namespace {
			return sorted[i].Namespace < sorted[j].Namespace
		}
		return sorted[i].Name < sorted[j].Name
	})
	out := make(map[string][]*gwv1.ListenerSet)
	for _, s := range sorted {
		ref := s.Spec.ParentRef
		if ref.Group != nil && *ref.Group != gwv1.GroupName || ref.Kind != nil && *ref.Kind != "Gateway" {
			continue
		}
		ns := s.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		key := ns + "/" + string(ref.Name)
		out[key] = append(out[key], s)
	}
	return out
}

// listenerSets validates the ListenerSets naming gs as parent and adds the
// listeners of those gs allows after its own. A listener that conflicts
// with one that takes precedence (the Gateway's, an older ListenerSet's, an
// earlier one of its own set) is the one rejected.
func (t *translator) listenerSets(gs *gatewayState) {
	served := append([]*listenerState(nil), gs.listeners...)
	for _, ls := range t.setsByParent[gs.key] {
		s := &listenerSetState{ls: ls, key: ls.Namespace + "/" + ls.Name, gw: gs}
		gs.sets = append(gs.sets, s)
		t.setsByKey[s.key] = s
		if s.allowed = t.listenerSetAllowed(gs.gw, ls.Namespace); !s.allowed {
			continue
		}
		for i := range ls.Spec.Listeners {
			l := t.listener(gs, s, listenerFromEntry(&ls.Spec.Listeners[i]))
			markConflictWithPrecedent(l, served)
			s.listeners = append(s.listeners, l)
			served = append(served, l)
		}
	}
}

// listenerFromEntry copies a ListenerSet entry into the Gateway listener
// type, which has the same fields.
func listenerFromEntry(e *gwv1.ListenerEntry) *gwv1.Listener {
	return &gwv1.Listener{
		Name: e.Name, Hostname: e.Hostname, Port: e.Port, Protocol: e.Protocol,
		TLS: e.TLS, AllowedRoutes: e.AllowedRoutes,
	}
}

// listenerSetAllowed applies a Gateway's spec.allowedListeners to the
// namespace of a ListenerSet. The default is None.
func (t *translator) listenerSetAllowed(gw *gwv1.Gateway, ns string) bool {
	al := gw.Spec.AllowedListeners
	if al == nil || al.Namespaces == nil || al.Namespaces.From == nil {
		return false
	}
	switch *al.Namespaces.From {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSame:
		return ns == gw.Namespace
	case gwv1.NamespacesFromSelector:
		if al.Namespaces.Selector == nil {
			return false
		}
		sel, err := metav1.LabelSelectorAsSelector(al.Namespaces.Selector)
		if err != nil {
			return false
		}
		return sel.Matches(labels.Set(t.ix.namespaceLabels(ns)))
	}
	return false
}

// markConflictWithPrecedent rejects l when it cannot share its port with a
// listener that takes precedence: another protocol on the port, or the same
// protocol and hostname. Listeners already rejected claim nothing.
func markConflictWithPrecedent(l *listenerState, precedent []*listenerState) {
	if !l.accepted.ok {
		return
	}
	for _, p := range precedent {
		if p.accepted.ok && !p.conflicted.ok && keyOf(p.spec) == keyOf(l.spec) && p.spec.Protocol != l.spec.Protocol {
			setConflict(l, gwv1.ListenerReasonProtocolConflict,
				fmt.Sprintf("port %d is used with protocol %s by %s, which takes precedence", l.spec.Port, p.spec.Protocol, p.displayName()))
			return
		}
	}
	for _, p := range precedent {
		if p.accepted.ok && !p.conflicted.ok && keyOf(p.spec) == keyOf(l.spec) && p.hostname == l.hostname {
			setConflict(l, gwv1.ListenerReasonHostnameConflict,
				fmt.Sprintf("port %d and hostname %q are used by %s, which takes precedence", l.spec.Port, displayHostname(l.hostname), p.displayName()))
			return
		}
	}
}

// served lists the Gateway's own listeners and those of the ListenerSets
// it allows, in precedence order.
func (gs *gatewayState) served() []*listenerState {
	out := gs.listeners
	for _, s := range gs.sets {
		if len(s.listeners) > 0 {
			out = append(out[:len(out):len(out)], s.listeners...)
		}
	}
	return out
}

// attachedSets is the Gateway's status.attachedListenerSets: the accepted
// ListenerSets. It is left out for Gateways that neither allow ListenerSets
// nor are named by one.
func (gs *gatewayState) attachedSets() *int32 {
	if gs.gw.Spec.AllowedListeners == nil && len(gs.sets) == 0 {
		return nil
	}
	var n int32
	for _, s := range gs.sets {
		if s.accepted.ok {
			n++
		}
	}
	return &n
}

// settle decides whether the ListenerSet is accepted, once its parent's
// acceptance is known. A ListenerSet is accepted when at least one of its
// listeners is valid.
func (s *listenerSetState) settle() {
	switch {
	case !s.allowed:
		s.accepted = cond{false, string(gwv1.ListenerSetReasonNotAllowed),
			fmt.Sprintf("Gateway %s does not allow ListenerSets from namespace %q (spec.allowedListeners)", s.gw.key, s.ls.Namespace)}
		return
	case !s.gw.accepted:
		s.accepted = cond{false, string(gwv1.ListenerSetReasonParentNotAccepted),
			fmt.Sprintf("Gateway %s is not accepted", s.gw.key)}
		return
	}
	var invalid []string
	for _, l := range s.listeners {
		if !l.programmed() {
			invalid = append(invalid, string(l.spec.Name))
		}
	}
	switch {
	case len(invalid) == len(s.listeners):
		s.accepted = cond{false, string(gwv1.ListenerSetReasonListenersNotValid),
			"no valid listeners: invalid listeners: " + strings.Join(invalid, ", ")}
	case len(invalid) > 0:
		s.accepted = cond{true, string(gwv1.ListenerSetReasonListenersNotValid),
			"invalid listeners: " + strings.Join(invalid, ", ")}
	default:
		s.accepted = cond{true, string(gwv1.ListenerSetReasonAccepted), "ListenerSet is accepted"}
	}
}

// status renders the ListenerSet's status.
func (s *listenerSetState) status() ListenerSetStatus {
	gen := s.ls.Generation
	st := gwv1.ListenerSetStatus{Conditions: []metav1.Condition{
		condition(string(gwv1.ListenerSetConditionAccepted), s.accepted.ok, s.accepted.reason, s.accepted.message, gen),
	}}
	if s.accepted.ok {
		st.Conditions = append(st.Conditions, condition(string(gwv1.ListenerSetConditionProgrammed), true,
			string(gwv1.ListenerSetReasonProgrammed), "ListenerSet is programmed", gen))
	} else {
		st.Conditions = append(st.Conditions, condition(string(gwv1.ListenerSetConditionProgrammed), false,
			s.accepted.reason, s.accepted.message, gen))
	}
	for _, l := range s.listeners {
		// The entry type has the Gateway listener status's fields.
		st.Listeners = append(st.Listeners, gwv1.ListenerEntryStatus(l.status()))
	}
	return ListenerSetStatus{Namespace: s.ls.Namespace, Name: s.ls.Name, Status: st}
}

// namespace is the namespace a listener's references and allowedRoutes
// "Same" are relative to: its ListenerSet's, or its Gateway's.
func (l *listenerState) namespace() string {
	if l.set != nil {
		return l.set.ls.Namespace
	}
	return l.gw.gw.Namespace
}

// ownerKind is the kind that declares the listener, the "from" side of its
// ReferenceGrants.
func (l *listenerState) ownerKind() string {
	if l.set != nil {
		return kindListenerSet
	}
	return "Gateway"
}

// generation is the generation of the object that declares the listener.
func (l *listenerState) generation() int64 {
	if l.set != nil {
		return l.set.ls.Generation
	}
	return l.gw.gw.Generation
}

// displayName names a listener in messages: a ListenerSet's listener names
// need not differ from the Gateway's.
func (l *listenerState) displayName() string {
	if l.set != nil {
		return fmt.Sprintf("listener %s of ListenerSet %s", l.spec.Name, l.set.key)
	}
	return fmt.Sprintf("listener %s of Gateway %s", l.spec.Name, l.gw.key)
}

// virtualHostName is unique among the virtual hosts of a Gateway's data
// plane: "namespace/gateway/listener", or for a ListenerSet's listener
// "namespace/gateway/ListenerSet/namespace/listenerset/listener".
func (l *listenerState) virtualHostName() string {
	if l.set != nil {
		return l.gw.key + "/" + kindListenerSet + "/" + l.set.key + "/" + string(l.spec.Name)
	}
	return l.gw.key + "/" + string(l.spec.Name)
}
