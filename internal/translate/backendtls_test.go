package translate

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/resources"
	"github.com/false-systems/rauta/internal/wellknown"
)

// A policy's status holds at most the API's sixteen ancestors, however many
// RAUTA Gateways its Service is routed from; the first sixteen by
// namespace/name, so the list is stable.
func TestBackendTLSPolicyAncestorLimit(t *testing.T) {
	port := gwv1.PortNumber(80)
	res := &resources.Resources{
		GatewayClasses: []*gwv1.GatewayClass{{ObjectMeta: metav1.ObjectMeta{Name: "rauta"},
			Spec: gwv1.GatewayClassSpec{ControllerName: wellknown.DefaultControllerName}}},
		Services: []*corev1.Service{{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}},
		BackendTLSPolicies: []*gwv1.BackendTLSPolicy{{ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "default"},
			Spec: gwv1.BackendTLSPolicySpec{TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{
				{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Kind: "Service", Name: "web"}}}}}},
	}
	route := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}}
	route.Spec.Rules = []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
		BackendObjectReference: gwv1.BackendObjectReference{Name: "web", Port: &port}}}}}}
	for i := range 20 {
		name := fmt.Sprintf("gw-%02d", i)
		res.Gateways = append(res.Gateways, &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: gwv1.GatewaySpec{GatewayClassName: "rauta", Listeners: []gwv1.Listener{
				{Name: "http", Port: gwv1.PortNumber(8000 + i), Protocol: gwv1.HTTPProtocolType}}}})
		route.Spec.ParentRefs = append(route.Spec.ParentRefs, gwv1.ParentReference{Name: gwv1.ObjectName(name)})
	}
	res.HTTPRoutes = []*gwv1.HTTPRoute{route}

	st := Translate(res, Options{}).Status
	if len(st.BackendTLSPolicies) != 1 {
		t.Fatalf("policy statuses = %d, want 1", len(st.BackendTLSPolicies))
	}
	as := st.BackendTLSPolicies[0].Status.Ancestors
	if len(as) != maxPolicyAncestors {
		t.Fatalf("ancestors = %d, want the API's limit %d", len(as), maxPolicyAncestors)
	}
	if as[0].AncestorRef.Name != "gw-00" || as[15].AncestorRef.Name != "gw-15" {
		t.Errorf("ancestors run from %s to %s, want gw-00 to gw-15", as[0].AncestorRef.Name, as[15].AncestorRef.Name)
	}
}
