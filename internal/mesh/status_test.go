package mesh

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	"github.com/false-systems/rauta/internal/translate"
)

// TestRouteStatusWriter: the mesh's entries are written and replaced,
// the gateway's entries on the same route are kept, a route that lost
// its Service parent loses the mesh's entry, and an unchanged status
// costs no write.
func TestRouteStatusWriter(t *testing.T) {
	svc := gwv1.ParentReference{Group: ptrTo(gwv1.Group("")), Kind: ptrTo(gwv1.Kind("Service")), Name: "echo"}
	gwRef := gwv1.ParentReference{Name: "gw"}
	theirs := gwv1.RouteParentStatus{ParentRef: gwRef, ControllerName: "rauta.io/gateway-controller",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted"}}}
	stale := gwv1.RouteParentStatus{ParentRef: svc, ControllerName: translate.MeshControllerName,
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionFalse, Reason: "NoMatchingParent"}}}
	a := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: "a"}}
	a.Status.Parents = []gwv1.RouteParentStatus{theirs, stale}
	b := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: "b"}}
	b.Status.Parents = []gwv1.RouteParentStatus{stale}
	client := gwfake.NewClientset(a, b)
	w := newRouteStatusWriter(client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.now = func() time.Time { return time.Unix(1000, 0) }

	ours := gwv1.RouteParentStatus{ParentRef: svc, ControllerName: translate.MeshControllerName,
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted"}}}
	st := &translate.Status{HTTPRoutes: []translate.HTTPRouteStatus{{Namespace: "store", Name: "a", Status: gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: []gwv1.RouteParentStatus{ours}}}}}}
	ctx := context.Background()
	n, err := w.write(ctx, statusJob{routes: []*gwv1.HTTPRoute{a, b}, status: st})
	if err != nil || n != 2 {
		t.Fatalf("write: %d routes, %v; want 2 (a updated, b's entry removed)", n, err)
	}
	got, err := client.GatewayV1().HTTPRoutes("store").Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ps := got.Status.Parents; len(ps) != 2 || ps[0].ControllerName != theirs.ControllerName ||
		ps[1].ControllerName != translate.MeshControllerName || ps[1].Conditions[0].Status != metav1.ConditionTrue ||
		!ps[1].Conditions[0].LastTransitionTime.Equal(&metav1.Time{Time: time.Unix(1000, 0)}) {
		t.Errorf("route a parents %+v: want the gateway's entry and the mesh's new one", ps)
	}
	gotB, err := client.GatewayV1().HTTPRoutes("store").Get(ctx, "b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(gotB.Status.Parents) != 0 {
		t.Errorf("route b parents %+v: want none (no Service parent any more)", gotB.Status.Parents)
	}
	if n, err := w.write(ctx, statusJob{routes: []*gwv1.HTTPRoute{got, gotB}, status: st}); err != nil || n != 0 {
		t.Errorf("second write of the same status: %d routes, %v; want none", n, err)
	}
}

func ptrTo[T any](v T) *T { return &v }
