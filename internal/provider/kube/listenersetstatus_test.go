package kube

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/translate"
)

// List reads ListenerSets, and Write sets their conditions and listener
// entries, keeping a condition's lastTransitionTime while its status holds
// and writing nothing when nothing changed.
func TestListAndWriteListenerSetStatus(t *testing.T) {
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	ls := &gwv1.ListenerSet{ObjectMeta: metav1.ObjectMeta{Name: "ls", Namespace: "team", Generation: 2}}
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(ls).WithStatusSubresource(&gwv1.ListenerSet{}).Build()
	ctx := context.Background()
	res, err := List(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ListenerSets) != 1 || res.ListenerSets[0].Name != "ls" {
		t.Fatalf("ListenerSets = %+v, want the one ListenerSet", res.ListenerSets)
	}

	then := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := then
	w := &StatusWriter{Client: cl, ControllerName: ourController, Now: func() time.Time { return clock }}
	accepted := metav1.Condition{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: 2}
	listener := gwv1.ListenerEntryStatus{Name: "http", AttachedRoutes: 1,
		Conditions: []metav1.Condition{{Type: "Programmed", Status: metav1.ConditionTrue, Reason: "Programmed", ObservedGeneration: 2}}}
	st := &translate.Status{ListenerSets: []translate.ListenerSetStatus{{Namespace: "team", Name: "ls", Status: gwv1.ListenerSetStatus{
		Conditions: []metav1.Condition{accepted}, Listeners: []gwv1.ListenerEntryStatus{listener},
	}}}}
	if n, err := w.Write(ctx, res, st); err != nil || n != 1 {
		t.Fatalf("Write = %d, %v; want the ListenerSet written", n, err)
	}
	got := &gwv1.ListenerSet{}
	if err := cl.Get(ctx, client.ObjectKeyFromObject(ls), got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) != 1 || got.Status.Conditions[0].Reason != "Accepted" ||
		len(got.Status.Listeners) != 1 || got.Status.Listeners[0].AttachedRoutes != 1 {
		t.Fatalf("status = %+v, want the translated conditions and listener", got.Status)
	}

	clock = then.Add(time.Hour)
	res.ListenerSets = []*gwv1.ListenerSet{got}
	if n, err := w.Write(ctx, res, st); err != nil || n != 0 {
		t.Fatalf("rewriting an unchanged status: Write = %d, %v; want 0 writes", n, err)
	}
	st.ListenerSets[0].Status.Listeners[0].AttachedRoutes = 2
	if n, err := w.Write(ctx, res, st); err != nil || n != 1 {
		t.Fatalf("Write after a change = %d, %v; want 1 write", n, err)
	}
	if err := cl.Get(ctx, client.ObjectKeyFromObject(ls), got); err != nil {
		t.Fatal(err)
	}
	lt := got.Status.Listeners[0].Conditions[0].LastTransitionTime
	if got.Status.Listeners[0].AttachedRoutes != 2 || !lt.Time.Equal(then) {
		t.Errorf("listener = %+v, want 2 attached routes and lastTransitionTime kept at %v", got.Status.Listeners[0], then)
	}
}
