package kube

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/resources"
	"github.com/false-systems/rauta/internal/translate"
)

func parent(gw, controller string) gwv1.RouteParentStatus {
	return gwv1.RouteParentStatus{
		ParentRef:      gwv1.ParentReference{Name: gwv1.ObjectName(gw)},
		ControllerName: gwv1.GatewayController(controller),
		Conditions:     []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionFalse, Reason: "NotAllowedByListeners", ObservedGeneration: 1}},
	}
}

// Write sets RAUTA's parent entries on HTTPRoutes, GRPCRoutes and TLSRoutes
// alike, keeps other controllers' entries, and removes RAUTA's when a route
// no longer names a RAUTA Gateway.
func TestWriteRouteParentsOfEveryKind(t *testing.T) {
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "default", Generation: 1}
	}
	theirs := []gwv1.RouteParentStatus{parent("theirs", "example.com/other")}
	hr := &gwv1.HTTPRoute{ObjectMeta: meta("http")}
	hr.Status.Parents = theirs
	gr := &gwv1.GRPCRoute{ObjectMeta: meta("grpc")}
	gr.Status.Parents = theirs
	tr := &gwv1.TLSRoute{ObjectMeta: meta("tls")}
	tr.Status.Parents = theirs
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(hr, gr, tr).
		WithStatusSubresource(&gwv1.HTTPRoute{}, &gwv1.GRPCRoute{}, &gwv1.TLSRoute{}).Build()
	w := &StatusWriter{Client: cl, ControllerName: ourController, Now: time.Now}
	ctx := context.Background()

	snapshot := func() *resources.Resources {
		t.Helper()
		res := &resources.Resources{HTTPRoutes: []*gwv1.HTTPRoute{{}}, GRPCRoutes: []*gwv1.GRPCRoute{{}}, TLSRoutes: []*gwv1.TLSRoute{{}}}
		for name, o := range map[string]client.Object{"http": res.HTTPRoutes[0], "grpc": res.GRPCRoutes[0], "tls": res.TLSRoutes[0]} {
			if err := cl.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, o); err != nil {
				t.Fatal(err)
			}
		}
		return res
	}
	ours := []gwv1.RouteParentStatus{parent("gw", ourController)}
	st := &translate.Status{
		HTTPRoutes: []translate.HTTPRouteStatus{{Namespace: "default", Name: "http", Status: gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: ours}}}},
		GRPCRoutes: []translate.GRPCRouteStatus{{Namespace: "default", Name: "grpc", Status: gwv1.GRPCRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: ours}}}},
		TLSRoutes:  []translate.TLSRouteStatus{{Namespace: "default", Name: "tls", Status: gwv1.TLSRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: ours}}}},
	}
	if n, err := w.Write(ctx, snapshot(), st); err != nil || n != 3 {
		t.Fatalf("Write = %d, %v; want the three routes written", n, err)
	}
	res := snapshot()
	for kind, ps := range map[string][]gwv1.RouteParentStatus{
		"HTTPRoute": res.HTTPRoutes[0].Status.Parents, "GRPCRoute": res.GRPCRoutes[0].Status.Parents, "TLSRoute": res.TLSRoutes[0].Status.Parents,
	} {
		if len(ps) != 2 || ps[0].ControllerName != "example.com/other" || ps[1].ControllerName != ourController {
			t.Errorf("%s parents = %+v, want the other controller's entry and ours", kind, ps)
		}
	}
	if n, err := w.Write(ctx, res, st); err != nil || n != 0 {
		t.Fatalf("rewriting unchanged statuses: Write = %d, %v; want 0 writes", n, err)
	}
	if n, err := w.Write(ctx, res, &translate.Status{}); err != nil || n != 3 {
		t.Fatalf("removing our entries: Write = %d, %v; want the three routes written", n, err)
	}
	res = snapshot()
	for kind, ps := range map[string][]gwv1.RouteParentStatus{
		"HTTPRoute": res.HTTPRoutes[0].Status.Parents, "GRPCRoute": res.GRPCRoutes[0].Status.Parents, "TLSRoute": res.TLSRoutes[0].Status.Parents,
	} {
		if len(ps) != 1 || ps[0].ControllerName != "example.com/other" {
			t.Errorf("%s parents after removal = %+v, want only the other controller's entry", kind, ps)
		}
	}
}
