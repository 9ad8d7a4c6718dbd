package kube

import (
	"context"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/resources"
	"github.com/false-systems/rauta/internal/translate"
)

// writeListenerSets writes the status of every ListenerSet whose parent is
// an owned Gateway. A ListenerSet has one status (no per-controller
// entries): its parent Gateway's controller owns all of it.
func (w *StatusWriter) writeListenerSets(ctx context.Context, res *resources.Resources, st *translate.Status, now metav1.Time, note func(bool, error)) {
	cached := make(map[client.ObjectKey]client.Object, len(res.ListenerSets))
	for _, ls := range res.ListenerSets {
		cached[client.ObjectKeyFromObject(ls)] = ls
	}
	for _, s := range st.ListenerSets {
		key := client.ObjectKey{Namespace: s.Namespace, Name: s.Name}
		note(w.update(ctx, cached[key], &gwv1.ListenerSet{}, key, func(o client.Object) bool {
			ls := o.(*gwv1.ListenerSet)
			next := s.Status
			next.Conditions = mergeConditions(ls.Status.Conditions, next.Conditions, now)
			next.Listeners = mergeListenerEntries(ls.Status.Listeners, next.Listeners, now)
			if apiequality.Semantic.DeepEqual(ls.Status, next) {
				return false
			}
			ls.Status = next
			return true
		}))
	}
}

// mergeListenerEntries is mergeListeners for ListenerSet listener entries.
func mergeListenerEntries(current, next []gwv1.ListenerEntryStatus, now metav1.Time) []gwv1.ListenerEntryStatus {
	old := make(map[gwv1.SectionName][]metav1.Condition, len(current))
	for _, l := range current {
		old[l.Name] = l.Conditions
	}
	out := make([]gwv1.ListenerEntryStatus, len(next))
	for i, l := range next {
		l.Conditions = mergeConditions(old[l.Name], l.Conditions, now)
		out[i] = l
	}
	return out
}
