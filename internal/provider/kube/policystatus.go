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

// maxPolicyAncestors is the API's limit on PolicyStatus.Ancestors.
const maxPolicyAncestors = 16

// writePolicies brings the BackendTLSPolicy ancestor entries RAUTA owns in
// line with st: it writes the wanted ones and removes those of policies that
// no longer matter to a RAUTA Gateway. note counts writes and collects errors.
func (w *StatusWriter) writePolicies(ctx context.Context, res *resources.Resources, st *translate.Status, now metav1.Time, note func(bool, error)) {
	ours := make(map[client.ObjectKey]translate.PolicyStatus, len(st.BackendTLSPolicies))
	for _, p := range st.BackendTLSPolicies {
		ours[client.ObjectKey{Namespace: p.Namespace, Name: p.Name}] = p
	}
	for _, p := range res.BackendTLSPolicies {
		key := client.ObjectKeyFromObject(p)
		want, has := ours[key]
		if !has && !w.hasOurAncestors(p.Status.Ancestors) {
			continue
		}
		note(w.update(ctx, p, &gwv1.BackendTLSPolicy{}, key, func(o client.Object) bool {
			bp := o.(*gwv1.BackendTLSPolicy)
			next := w.mergeAncestors(bp.Status.Ancestors, want.Status.Ancestors, now)
			if apiequality.Semantic.DeepEqual(bp.Status.Ancestors, next) {
				return false
			}
			bp.Status.Ancestors = next
			return true
		}))
	}
}

func (w *StatusWriter) hasOurAncestors(as []gwv1.PolicyAncestorStatus) bool {
	for _, a := range as {
		if string(a.ControllerName) == w.ControllerName {
			return true
		}
	}
	return false
}

// mergeAncestors keeps other controllers' entries and replaces RAUTA's,
// within the API's limit of sixteen: other controllers' entries are never
// dropped to make room. The result is never nil, because the field is
// required.
func (w *StatusWriter) mergeAncestors(current, ours []gwv1.PolicyAncestorStatus, now metav1.Time) []gwv1.PolicyAncestorStatus {
	out := []gwv1.PolicyAncestorStatus{}
	old := make(map[string][]metav1.Condition)
	for _, a := range current {
		if string(a.ControllerName) == w.ControllerName {
			old[translate.ParentRefKey(a.AncestorRef)] = a.Conditions
			continue
		}
		out = append(out, a)
	}
	for _, a := range ours {
		if len(out) >= maxPolicyAncestors {
			break
		}
		a.Conditions = mergeConditions(old[translate.ParentRefKey(a.AncestorRef)], a.Conditions, now)
		out = append(out, a)
	}
	return out
}
