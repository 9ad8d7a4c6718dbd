package controller

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/translate"
)

// overlayListenerSets carries what the data planes report to the
// ListenerSets of provisioned Gateways, as overlayProgrammed does for the
// Gateways: a ListenerSet is Programmed only while its Gateway is (the
// Gateway's data plane serves its listeners too), and a listener whose port
// the data plane could not bind is Programmed=False. statuses are copies
// the caller owns; their conditions are copied before they change.
func overlayListenerSets(statuses []translate.ListenerSetStatus, sets []*gwv1.ListenerSet, gateways map[string]gatewayServing) {
	byKey := make(map[string]*gwv1.ListenerSet, len(sets))
	for _, ls := range sets {
		byKey[ls.Namespace+"/"+ls.Name] = ls
	}
	for i := range statuses {
		s := &statuses[i]
		ls := byKey[s.Namespace+"/"+s.Name]
		if ls == nil {
			continue
		}
		ns := ls.Namespace
		if ls.Spec.ParentRef.Namespace != nil {
			ns = string(*ls.Spec.ParentRef.Namespace)
		}
		gwKey := ns + "/" + string(ls.Spec.ParentRef.Name)
		gs, ok := gateways[gwKey]
		if !ok || gs.programmed == nil {
			continue // not provisioned, or its Gateway is not accepted
		}
		s.Status = *s.Status.DeepCopy()
		if gs.programmed.Status != metav1.ConditionTrue && meta.IsStatusConditionTrue(s.Status.Conditions, string(gwv1.ListenerSetConditionProgrammed)) {
			meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{
				Type: string(gwv1.ListenerSetConditionProgrammed), Status: metav1.ConditionFalse,
				Reason:  string(gwv1.ListenerSetReasonPending),
				Message: fmt.Sprintf("Gateway %s is not programmed: %s", gwKey, gs.programmed.Message), ObservedGeneration: conditionGeneration(s.Status.Conditions),
			})
		}
		for j := range s.Status.Listeners {
			l := &s.Status.Listeners[j]
			port, udp := entryPort(ls, l.Name)
			msg, bad := gs.unbound[translate.ListenerName(gwKey, int32(port), udp)]
			if !bad {
				continue
			}
			meta.SetStatusCondition(&l.Conditions, metav1.Condition{
				Type: string(gwv1.ListenerEntryConditionProgrammed), Status: metav1.ConditionFalse,
				Reason: string(gwv1.ListenerReasonPending), Message: "the data plane could not bind the port: " + msg,
				ObservedGeneration: conditionGeneration(l.Conditions),
			})
		}
	}
}

// conditionGeneration is the observedGeneration the translator wrote, so
// an overlaid condition speaks of the same generation.
func conditionGeneration(conds []metav1.Condition) int64 {
	if len(conds) == 0 {
		return 0
	}
	return conds[0].ObservedGeneration
}

// entryPort is the port of the ListenerSet's listener named name, 0 if none.
func entryPort(ls *gwv1.ListenerSet, name gwv1.SectionName) (gwv1.PortNumber, bool) {
	for _, e := range ls.Spec.Listeners {
		if e.Name == name {
			return e.Port, e.Protocol == gwv1.UDPProtocolType
		}
	}
	return 0, false
}
