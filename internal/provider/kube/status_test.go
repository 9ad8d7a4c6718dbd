package kube

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestMergeConditionsKeepsTransitionTimeWhileStatusHolds(t *testing.T) {
	then := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	current := []metav1.Condition{
		{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: then},
		{Type: "ResolvedRefs", Status: metav1.ConditionTrue, Reason: "ResolvedRefs", LastTransitionTime: then},
	}
	next := []metav1.Condition{
		{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", Message: "new message"},
		{Type: "ResolvedRefs", Status: metav1.ConditionFalse, Reason: "BackendNotFound"},
		{Type: "PartiallyInvalid", Status: metav1.ConditionTrue, Reason: "UnsupportedValue"},
	}
	got := mergeConditions(current, next, now)
	if !got[0].LastTransitionTime.Equal(&then) {
		t.Errorf("Accepted stayed True: lastTransitionTime = %v, want %v", got[0].LastTransitionTime, then)
	}
	if got[0].Message != "new message" {
		t.Errorf("message not updated: %q", got[0].Message)
	}
	if !got[1].LastTransitionTime.Equal(&now) {
		t.Errorf("ResolvedRefs flipped: lastTransitionTime = %v, want %v", got[1].LastTransitionTime, now)
	}
	if !got[2].LastTransitionTime.Equal(&now) {
		t.Errorf("new condition: lastTransitionTime = %v, want %v", got[2].LastTransitionTime, now)
	}
}

func TestMergeParentsKeepsOtherControllers(t *testing.T) {
	w := &StatusWriter{ControllerName: "rauta.io/gateway-controller"}
	now := metav1.Now()
	theirs := gwv1.RouteParentStatus{ParentRef: gwv1.ParentReference{Name: "other"}, ControllerName: "example.com/other"}
	staleOurs := gwv1.RouteParentStatus{ParentRef: gwv1.ParentReference{Name: "removed"}, ControllerName: "rauta.io/gateway-controller"}
	ours := gwv1.RouteParentStatus{ParentRef: gwv1.ParentReference{Name: "gw"}, ControllerName: "rauta.io/gateway-controller",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted"}}}

	got := w.mergeParents([]gwv1.RouteParentStatus{theirs, staleOurs}, []gwv1.RouteParentStatus{ours}, now)
	if len(got) != 2 {
		t.Fatalf("got %d parents, want theirs and ours: %+v", len(got), got)
	}
	if got[0].ControllerName != "example.com/other" || got[1].ParentRef.Name != "gw" {
		t.Errorf("unexpected parents: %+v", got)
	}
	for _, p := range got {
		if p.ParentRef.Name == "removed" {
			t.Error("an entry for a parent RAUTA no longer serves was kept")
		}
	}
	// Removing every RAUTA entry (the route no longer references us).
	got = w.mergeParents([]gwv1.RouteParentStatus{theirs, staleOurs}, nil, now)
	if len(got) != 1 || got[0].ControllerName != "example.com/other" {
		t.Errorf("want only the other controller's entry, got %+v", got)
	}
}
