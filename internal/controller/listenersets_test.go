package controller

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/translate"
)

// A ListenerSet of a provisioned Gateway is Programmed only while the
// Gateway's data plane serves (the Gateway's overlay), and its listener
// whose port the data plane could not bind is Programmed=False; the
// translator's statuses it was given are not modified.
func TestOverlayListenerSets(t *testing.T) {
	other := gwv1.Namespace("infra")
	ls := &gwv1.ListenerSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "extra"},
		Spec: gwv1.ListenerSetSpec{
			ParentRef: gwv1.ParentGatewayReference{Name: "gw", Namespace: &other},
			Listeners: []gwv1.ListenerEntry{{Name: "a", Port: 8080}, {Name: "b", Port: 9090}},
		},
	}
	programmed := func() []metav1.Condition {
		return []metav1.Condition{
			{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: 3},
			{Type: "Programmed", Status: metav1.ConditionTrue, Reason: "Programmed", ObservedGeneration: 3},
		}
	}
	status := func() []translate.ListenerSetStatus {
		return []translate.ListenerSetStatus{{Namespace: "team", Name: "extra", Status: gwv1.ListenerSetStatus{
			Conditions: programmed(),
			Listeners: []gwv1.ListenerEntryStatus{
				{Name: "a", Conditions: programmed()},
				{Name: "b", Conditions: programmed()},
			},
		}}}
	}
	serving := func(ok metav1.ConditionStatus, unbound map[string]string) map[string]gatewayServing {
		return map[string]gatewayServing{"infra/gw": {
			programmed: &metav1.Condition{Type: "Programmed", Status: ok, Message: "waiting for a data-plane pod"},
			unbound:    unbound,
		}}
	}
	isTrue := func(conds []metav1.Condition) bool { return meta.IsStatusConditionTrue(conds, "Programmed") }

	given := status()
	got := append([]translate.ListenerSetStatus(nil), given...)
	overlayListenerSets(got, []*gwv1.ListenerSet{ls}, serving(metav1.ConditionTrue, map[string]string{"infra/gw/9090": "address in use"}))
	if !isTrue(got[0].Status.Conditions) || !isTrue(got[0].Status.Listeners[0].Conditions) {
		t.Errorf("served: ListenerSet or listener a not Programmed: %+v", got[0].Status)
	}
	c := meta.FindStatusCondition(got[0].Status.Listeners[1].Conditions, "Programmed")
	if c == nil || c.Status != metav1.ConditionFalse || c.ObservedGeneration != 3 {
		t.Errorf("listener b on the unbound port 9090: Programmed = %+v, want False at generation 3", c)
	}
	if !isTrue(given[0].Status.Listeners[1].Conditions) {
		t.Error("the translator's status was modified")
	}

	got = status()
	overlayListenerSets(got, []*gwv1.ListenerSet{ls}, serving(metav1.ConditionFalse, nil))
	if c := meta.FindStatusCondition(got[0].Status.Conditions, "Programmed"); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "Pending" {
		t.Errorf("Gateway not programmed: ListenerSet Programmed = %+v, want False Pending", c)
	}

	got = status()
	overlayListenerSets(got, []*gwv1.ListenerSet{ls}, map[string]gatewayServing{"team/gw": {programmed: &metav1.Condition{Status: metav1.ConditionFalse}}})
	if !isTrue(got[0].Status.Conditions) {
		t.Error("a ListenerSet whose parent is another Gateway took that Gateway's state")
	}
}
