package kube

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// WatchedKinds are the objects whose changes trigger a new translation.
func WatchedKinds() []client.Object {
	return []client.Object{
		&gwv1.GatewayClass{}, &gwv1.Gateway{}, &gwv1.HTTPRoute{}, &gwv1b1.ReferenceGrant{},
		&gwv1.BackendTLSPolicy{}, &gwv1.GRPCRoute{}, &gwv1.TLSRoute{}, &gwv1.TCPRoute{}, &gwv1.UDPRoute{},
		&gwv1.ListenerSet{},
		&corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.Secret{}, &corev1.ConfigMap{}, &corev1.Namespace{},
	}
}

// optionalKind reports whether a cluster may lack obj's CRD: kinds that
// older CRD bundles lack (TLSRoute v1 came with v1.5, TCPRoute, UDPRoute
// and ListenerSet v1 with v1.6). Without the CRD no such object can
// exist, so there is nothing to serve or report and nothing to watch.
func optionalKind(obj client.Object) bool {
	switch obj.(type) {
	case *gwv1.BackendTLSPolicy, *gwv1.GRPCRoute, *gwv1.TLSRoute, *gwv1.TCPRoute, *gwv1.UDPRoute, *gwv1.ListenerSet:
		return true
	}
	return false
}

// InformerGetter is the part of a controller-runtime cache Watch uses.
type InformerGetter interface {
	GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error)
}

// Watch registers poke as the event handler of every watched kind. Updates
// that change only an object's status are dropped: RAUTA writes status
// itself, and re-translating for its own writes would be a feedback loop.
// An optional kind whose CRD is not installed is skipped.
func Watch(ctx context.Context, c InformerGetter, poke func()) error {
	h := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		DeleteFunc: func(any) { poke() },
		UpdateFunc: func(oldObj, newObj any) {
			if specChanged(oldObj, newObj) {
				poke()
			}
		},
	}
	for _, obj := range WatchedKinds() {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil && optionalKind(obj) && meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("watch %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("watch %T: %w", obj, err)
		}
	}
	return nil
}

// specChanged reports whether an update matters to the translator. Objects
// with a generation change it on every spec change; labels and annotations
// (namespace selectors, load-balancing annotations) matter too. Objects
// without a generation (Secrets, EndpointSlices) always count.
func specChanged(oldObj, newObj any) bool {
	o, ok1 := oldObj.(client.Object)
	n, ok2 := newObj.(client.Object)
	if !ok1 || !ok2 {
		return true
	}
	if n.GetGeneration() == 0 {
		return o.GetResourceVersion() != n.GetResourceVersion()
	}
	return o.GetGeneration() != n.GetGeneration() ||
		!maps.Equal(o.GetLabels(), n.GetLabels()) ||
		!maps.Equal(o.GetAnnotations(), n.GetAnnotations()) ||
		!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp())
}
