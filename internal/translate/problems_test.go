package translate

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/objstatus"
)

func routeStatus(gen int64, conds ...metav1.Condition) *Status {
	for i := range conds {
		conds[i].ObservedGeneration = gen
		conds[i].LastTransitionTime = metav1.Unix(gen, 0)
	}
	st := gwv1.HTTPRouteStatus{}
	st.Parents = []gwv1.RouteParentStatus{{ParentRef: gwv1.ParentReference{Name: "gw"}, Conditions: conds}}
	return &Status{HTTPRoutes: []HTTPRouteStatus{{Namespace: "default", Name: "web", Status: st}}}
}

// Problems lists the conditions that say something is wrong (False, or
// True for PartiallyInvalid), without generation or time, so that the same
// problem at the next generation compares equal and is not logged again.
func TestStatusProblems(t *testing.T) {
	ok := metav1.Condition{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted"}
	bad := metav1.Condition{Type: "ResolvedRefs", Status: metav1.ConditionFalse, Reason: "BackendNotFound", Message: "Service default/nope not found"}
	partial := metav1.Condition{Type: "PartiallyInvalid", Status: metav1.ConditionTrue, Reason: "UnsupportedValue"}
	want := []objstatus.Problem{
		{Kind: "HTTPRoute", Name: "default/web", Part: "parent gw", Type: "ResolvedRefs", Status: "False", Reason: "BackendNotFound", Message: "Service default/nope not found"},
		{Kind: "HTTPRoute", Name: "default/web", Part: "parent gw", Type: "PartiallyInvalid", Status: "True", Reason: "UnsupportedValue"},
	}
	if d := cmp.Diff(want, routeStatus(1, ok, bad, partial).Problems()); d != "" {
		t.Errorf("Problems (-want +got):\n%s", d)
	}
	if d := cmp.Diff(routeStatus(1, ok, bad).Problems(), routeStatus(2, ok, bad).Problems()); d != "" {
		t.Errorf("a new generation changed the problem (-gen1 +gen2):\n%s", d)
	}
	gw := &Status{
		GatewayClasses: []GatewayClassStatus{{Name: "rauta", Status: gwv1.GatewayClassStatus{Conditions: []metav1.Condition{bad}}}},
		Gateways: []GatewayStatus{{Namespace: "default", Name: "gw", Status: gwv1.GatewayStatus{
			Listeners: []gwv1.ListenerStatus{{Name: "http", Conditions: []metav1.Condition{
				{Type: "Conflicted", Status: metav1.ConditionTrue, Reason: "HostnameConflict"},
				{Type: "Conflicted", Status: metav1.ConditionFalse, Reason: "NoConflicts"},
			}}}}}},
	}
	want = []objstatus.Problem{
		{Kind: "GatewayClass", Name: "rauta", Type: "ResolvedRefs", Status: "False", Reason: "BackendNotFound", Message: "Service default/nope not found"},
		{Kind: "Gateway", Name: "default/gw", Part: "listener http", Type: "Conflicted", Status: "True", Reason: "HostnameConflict"},
	}
	if d := cmp.Diff(want, gw.Problems()); d != "" {
		t.Errorf("Problems of a class and a listener (-want +got):\n%s", d)
	}
}
