package kube

import (
	"context"
	"errors"
	"fmt"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/resources"
	"github.com/false-systems/rauta/internal/translate"
)

// StatusWriter writes translated status to the API server: only what
// changed, with lastTransitionTime kept while a condition's status stays the
// same, and without touching route parent entries of other controllers.
type StatusWriter struct {
	Client         client.Client
	ControllerName string
	// SupportedFeatures is written into the status of owned GatewayClasses.
	SupportedFeatures []gwv1.SupportedFeature
	// Now is the clock for lastTransitionTime.
	Now func() time.Time
}

// Write brings the API server's status in line with st. res is the snapshot
// st was computed from: an object whose status there already matches is
// skipped without a request, so a sync costs requests only for what changed;
// res also shows which routes carry RAUTA entries that must be removed. It
// returns how many objects were written.
func (w *StatusWriter) Write(ctx context.Context, res *resources.Resources, st *translate.Status) (int, error) {
	now := metav1.NewTime(w.Now().Truncate(time.Second))
	classes := make(map[string]client.Object, len(res.GatewayClasses))
	for _, c := range res.GatewayClasses {
		classes[c.Name] = c
	}
	gateways := make(map[client.ObjectKey]client.Object, len(res.Gateways))
	for _, g := range res.Gateways {
		gateways[client.ObjectKeyFromObject(g)] = g
	}
	var errs []error
	written := 0
	note := func(changed bool, err error) {
		if err != nil {
			errs = append(errs, err)
		} else if changed {
			written++
		}
	}
	for _, c := range st.GatewayClasses {
		note(w.update(ctx, classes[c.Name], &gwv1.GatewayClass{}, client.ObjectKey{Name: c.Name}, func(o client.Object) bool {
			gc := o.(*gwv1.GatewayClass)
			next := c.Status
			next.Conditions = mergeConditions(gc.Status.Conditions, next.Conditions, now)
			next.SupportedFeatures = w.SupportedFeatures
			if apiequality.Semantic.DeepEqual(gc.Status, next) {
				return false
			}
			gc.Status = next
			return true
		}))
	}
	for _, g := range st.Gateways {
		key := client.ObjectKey{Namespace: g.Namespace, Name: g.Name}
		note(w.update(ctx, gateways[key], &gwv1.Gateway{}, key, func(o client.Object) bool {
			gw := o.(*gwv1.Gateway)
			next := g.Status
			next.Conditions = mergeConditions(gw.Status.Conditions, next.Conditions, now)
			next.Listeners = mergeListeners(gw.Status.Listeners, next.Listeners, now)
			if apiequality.Semantic.DeepEqual(gw.Status, next) {
				return false
			}
			gw.Status = next
			return true
		}))
	}
	w.writeListenerSets(ctx, res, st, now, note)
	w.writeRoutes(ctx, res, st, now, note)
	w.writePolicies(ctx, res, st, now, note)
	return written, errors.Join(errs...)
}

// update lets mutate change the status of a copy of cached (the snapshot's
// object, nil if it has none); only if that changes anything does it read the
// object fresh, mutate it again and write it, retrying on conflicts.
func (w *StatusWriter) update(ctx context.Context, cached, obj client.Object, key client.ObjectKey, mutate func(client.Object) bool) (bool, error) {
	if cached != nil {
		if !mutate(cached.DeepCopyObject().(client.Object)) {
			return false, nil
		}
	}
	changed := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := w.Client.Get(ctx, key, obj); err != nil {
			return err
		}
		changed = mutate(obj)
		if !changed {
			return nil
		}
		return w.Client.Status().Update(ctx, obj)
	})
	if apierrors.IsNotFound(err) {
		return false, nil // deleted meanwhile; nothing to report on
	}
	if err != nil {
		return false, fmt.Errorf("status of %T %s: %w", obj, key, err)
	}
	return changed, nil
}

func (w *StatusWriter) hasOurParents(ps []gwv1.RouteParentStatus) bool {
	return HasParentsOf(w.ControllerName, ps)
}

// HasParentsOf reports whether ps holds an entry of controller.
func HasParentsOf(controller string, ps []gwv1.RouteParentStatus) bool {
	for _, p := range ps {
		if string(p.ControllerName) == controller {
			return true
		}
	}
	return false
}

// mergeParents keeps other controllers' entries and replaces RAUTA's.
func (w *StatusWriter) mergeParents(current, ours []gwv1.RouteParentStatus, now metav1.Time) []gwv1.RouteParentStatus {
	return MergeParents(w.ControllerName, current, ours, now)
}

// MergeParents keeps the route parent entries of other controllers and
// replaces controller's with ours, keeping each condition's
// lastTransitionTime while its status stays the same.
func MergeParents(controller string, current, ours []gwv1.RouteParentStatus, now metav1.Time) []gwv1.RouteParentStatus {
	var out []gwv1.RouteParentStatus
	old := make(map[string][]metav1.Condition)
	for _, p := range current {
		if string(p.ControllerName) == controller {
			old[translate.ParentRefKey(p.ParentRef)] = p.Conditions
			continue
		}
		out = append(out, p)
	}
	for _, p := range ours {
		p.Conditions = mergeConditions(old[translate.ParentRefKey(p.ParentRef)], p.Conditions, now)
		out = append(out, p)
	}
	return out
}

func mergeListeners(current, next []gwv1.ListenerStatus, now metav1.Time) []gwv1.ListenerStatus {
	old := make(map[gwv1.SectionName][]metav1.Condition, len(current))
	for _, l := range current {
		old[l.Name] = l.Conditions
	}
	out := make([]gwv1.ListenerStatus, len(next))
	for i, l := range next {
		l.Conditions = mergeConditions(old[l.Name], l.Conditions, now)
		out[i] = l
	}
	return out
}

// mergeConditions sets lastTransitionTime: kept from the current condition
// of the same type when its status did not change, now otherwise.
func mergeConditions(current, next []metav1.Condition, now metav1.Time) []metav1.Condition {
	out := make([]metav1.Condition, len(next))
	for i, c := range next {
		c.LastTransitionTime = now
		for _, o := range current {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
				break
			}
		}
		out[i] = c
	}
	return out
}
