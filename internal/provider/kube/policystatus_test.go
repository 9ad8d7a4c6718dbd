package kube

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/resources"
	"github.com/false-systems/rauta/internal/translate"
)

const ourController = "rauta.io/gateway-controller"

func ancestor(gw, controller string, status metav1.ConditionStatus, at metav1.Time) gwv1.PolicyAncestorStatus {
	ns := gwv1.Namespace("default")
	return gwv1.PolicyAncestorStatus{
		AncestorRef:    gwv1.ParentReference{Namespace: &ns, Name: gwv1.ObjectName(gw)},
		ControllerName: gwv1.GatewayController(controller),
		Conditions: []metav1.Condition{{Type: "Accepted", Status: status, Reason: "Invalid",
			ObservedGeneration: 1, LastTransitionTime: at}},
	}
}

func TestMergeAncestorsKeepsOtherControllersAndLimit(t *testing.T) {
	w := &StatusWriter{ControllerName: ourController}
	then := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	theirs := ancestor("theirs", "example.com/other", metav1.ConditionTrue, then)
	stale := ancestor("removed", ourController, metav1.ConditionFalse, then)
	kept := ancestor("gw", ourController, metav1.ConditionFalse, then)

	want := ancestor("gw", ourController, metav1.ConditionFalse, metav1.Time{})
	got := w.mergeAncestors([]gwv1.PolicyAncestorStatus{theirs, stale, kept}, []gwv1.PolicyAncestorStatus{want}, now)
	if len(got) != 2 || got[0].ControllerName != "example.com/other" || got[1].AncestorRef.Name != "gw" {
		t.Fatalf("want the other controller's entry and ours for gw, got %+v", got)
	}
	if lt := got[1].Conditions[0].LastTransitionTime; !lt.Equal(&then) {
		t.Errorf("Accepted stayed False: lastTransitionTime = %v, want %v", lt, then)
	}

	// Other controllers fill fifteen entries: only one of ours fits, and
	// none of theirs is dropped.
	var full []gwv1.PolicyAncestorStatus
	for i := range 15 {
		full = append(full, ancestor(fmt.Sprintf("theirs-%d", i), "example.com/other", metav1.ConditionTrue, then))
	}
	ours := []gwv1.PolicyAncestorStatus{want, ancestor("gw2", ourController, metav1.ConditionFalse, metav1.Time{})}
	got = w.mergeAncestors(full, ours, now)
	if len(got) != 16 || got[15].AncestorRef.Name != "gw" {
		t.Fatalf("want 15 foreign entries and ours for gw within the limit of 16, got %d entries", len(got))
	}

	// No entries left: an empty list, not nil (the field is required).
	if got := w.mergeAncestors([]gwv1.PolicyAncestorStatus{stale}, nil, now); got == nil || len(got) != 0 {
		t.Errorf("removing our only entry: got %#v, want an empty list", got)
	}
}

// Write adds RAUTA's ancestor entries to a policy, keeps other controllers'
// entries, and removes RAUTA's when the policy no longer matters to a RAUTA
// Gateway.
func TestWriteBackendTLSPolicyAncestors(t *testing.T) {
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	then := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	policy := &gwv1.BackendTLSPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "default", Generation: 2},
		Status: gwv1.PolicyStatus{Ancestors: []gwv1.PolicyAncestorStatus{
			ancestor("theirs", "example.com/other", metav1.ConditionTrue, then),
		}},
	}
	cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(policy).
		WithStatusSubresource(&gwv1.BackendTLSPolicy{}).Build()
	w := &StatusWriter{Client: cl, ControllerName: ourController, Now: time.Now}
	ctx := context.Background()

	read := func() *gwv1.BackendTLSPolicy {
		t.Helper()
		var p gwv1.BackendTLSPolicy
		if err := cl.Get(ctx, client.ObjectKeyFromObject(policy), &p); err != nil {
			t.Fatal(err)
		}
		return &p
	}
	ours := ancestor("gw", ourController, metav1.ConditionFalse, metav1.Time{})
	ours.Conditions[0].ObservedGeneration = 2
	st := &translate.Status{BackendTLSPolicies: []translate.PolicyStatus{
		{Namespace: "default", Name: "tls", Status: gwv1.PolicyStatus{Ancestors: []gwv1.PolicyAncestorStatus{ours}}},
	}}
	n, err := w.Write(ctx, &resources.Resources{BackendTLSPolicies: []*gwv1.BackendTLSPolicy{read()}}, st)
	if err != nil || n != 1 {
		t.Fatalf("Write = %d, %v; want one object written", n, err)
	}
	got := read()
	if len(got.Status.Ancestors) != 2 || got.Status.Ancestors[1].ControllerName != ourController ||
		got.Status.Ancestors[1].Conditions[0].ObservedGeneration != 2 || got.Status.Ancestors[1].Conditions[0].LastTransitionTime.IsZero() {
		t.Fatalf("ancestors after write = %+v", got.Status.Ancestors)
	}

	// The same status again costs no request.
	if n, err := w.Write(ctx, &resources.Resources{BackendTLSPolicies: []*gwv1.BackendTLSPolicy{got}}, st); err != nil || n != 0 {
		t.Fatalf("rewriting an unchanged status: Write = %d, %v; want 0 writes", n, err)
	}

	// The policy no longer matters to RAUTA: only the other entry stays.
	if n, err := w.Write(ctx, &resources.Resources{BackendTLSPolicies: []*gwv1.BackendTLSPolicy{got}}, &translate.Status{}); err != nil || n != 1 {
		t.Fatalf("removing our entry: Write = %d, %v; want one object written", n, err)
	}
	if got := read(); len(got.Status.Ancestors) != 1 || got.Status.Ancestors[0].ControllerName != "example.com/other" {
		t.Fatalf("ancestors after removal = %+v", got.Status.Ancestors)
	}
}
