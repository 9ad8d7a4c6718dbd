package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// FieldOwner is the server-side apply field manager of provisioned objects.
const FieldOwner = "rauta-controller"

// Applier creates, updates and removes provisioned objects. Reader is the
// informer cache (it must hold ServiceAccounts, Deployments and Services
// with the managed-by label); Writer talks to the API server.
type Applier struct {
	Reader client.Reader
	Writer client.Client
}

// Apply makes the objects of every Gateway in want exist as computed, and
// deletes provisioned objects of Gateways not in want. keep lists Gateways
// ("namespace/name") whose existing objects must be left as they are (their
// parameters could not be read). An object whose hash annotation matches
// costs no request. It returns how many objects it wrote or deleted.
func (a *Applier) Apply(ctx context.Context, want map[string]Objects, keep map[string]bool) (int, error) {
	var errs []error
	n := 0
	for _, objs := range want {
		for _, obj := range []client.Object{objs.ServiceAccount, objs.Service, objs.Deployment} {
			wrote, err := a.applyOne(ctx, obj)
			if wrote {
				n++
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	pruned, err := a.prune(ctx, want, keep)
	return n + pruned, errors.Join(append(errs, err)...)
}

func (a *Applier) applyOne(ctx context.Context, obj client.Object) (bool, error) {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	existing, err := emptyLike(obj)
	if err != nil {
		return false, err
	}
	key := types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
	err = a.Reader.Get(ctx, key, existing)
	switch {
	case err == nil:
		if existing.GetAnnotations()[AnnotationHash] == obj.GetAnnotations()[AnnotationHash] {
			return false, nil
		}
		if existing.GetLabels()[LabelManagedBy] != ManagedBy {
			return false, fmt.Errorf("%s %s exists and is not managed by RAUTA; not touching it", kind, key)
		}
	case !apierrors.IsNotFound(err):
		return false, fmt.Errorf("get %s %s: %w", kind, key, err)
	}
	//nolint:staticcheck // server-side apply of typed objects: the object is complete, every field is ours
	if err := a.Writer.Patch(ctx, obj, client.Apply, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return false, fmt.Errorf("apply %s %s: %w", kind, key, err)
	}
	return true, nil
}

func emptyLike(obj client.Object) (client.Object, error) {
	switch obj.(type) {
	case *corev1.ServiceAccount:
		return &corev1.ServiceAccount{}, nil
	case *corev1.Service:
		return &corev1.Service{}, nil
	case *appsv1.Deployment:
		return &appsv1.Deployment{}, nil
	}
	return nil, fmt.Errorf("provision: unexpected object %T", obj)
}

// prune deletes provisioned objects whose Gateway is not in want (nor in keep).
func (a *Applier) prune(ctx context.Context, want map[string]Objects, keep map[string]bool) (int, error) {
	sel := client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy, LabelComponent: Component})}
	wanted := map[string]bool{}
	for _, objs := range want {
		wanted[objs.Deployment.Namespace+"/"+objs.Deployment.Name] = true
	}
	var lists []client.ObjectList
	lists = append(lists, &appsv1.DeploymentList{}, &corev1.ServiceList{}, &corev1.ServiceAccountList{})
	var errs []error
	n := 0
	for _, list := range lists {
		if err := a.Reader.List(ctx, list, sel); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, obj := range items(list) {
			gwKey := obj.GetLabels()[LabelGatewayNamespace] + "/" + obj.GetLabels()[gwv1.GatewayNameLabelKey]
			if wanted[obj.GetNamespace()+"/"+obj.GetName()] || keep[gwKey] {
				continue
			}
			if err := a.Writer.Delete(ctx, obj, client.PropagationPolicy("Background")); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete %T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err))
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

func items(list client.ObjectList) []client.Object {
	var out []client.Object
	switch l := list.(type) {
	case *appsv1.DeploymentList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *corev1.ServiceList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *corev1.ServiceAccountList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	}
	return out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Kubernetes objects always encode.
		panic(err)
	}
	return string(b)
}
