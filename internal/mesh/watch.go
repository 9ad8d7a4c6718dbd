package mesh

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	listersdiscoveryv1 "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeClient uses kubeconfig when given, else the in-cluster config.
func kubeClient(kubeconfig string) (kubernetes.Interface, error) {
	var (
		cfg *rest.Config
		err error
	)
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	return kubernetes.NewForConfig(cfg)
}

// watcher holds the Service and EndpointSlice caches of every namespace.
type watcher struct {
	factory  informers.SharedInformerFactory
	services listerscorev1.ServiceLister
	slices   listersdiscoveryv1.EndpointSliceLister
	synced   []cache.InformerSynced
}

// newWatcher registers poke for every change. Managed fields are dropped
// from the cache: the agent holds every Service and EndpointSlice of the
// cluster, and reads none of them.
func newWatcher(client kubernetes.Interface, poke func()) (*watcher, error) {
	f := informers.NewSharedInformerFactory(client, 0)
	svc := f.Core().V1().Services()
	es := f.Discovery().V1().EndpointSlices()
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}
	w := &watcher{factory: f, services: svc.Lister(), slices: es.Lister()}
	for _, inf := range []cache.SharedIndexInformer{svc.Informer(), es.Informer()} {
		if err := inf.SetTransform(dropManagedFields); err != nil {
			return nil, err
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, err
		}
		w.synced = append(w.synced, inf.HasSynced)
	}
	return w, nil
}

func dropManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// start runs the informers and waits for their first lists; false: ctx
// ended first.
func (w *watcher) start(ctx context.Context) bool {
	w.factory.Start(ctx.Done())
	return cache.WaitForCacheSync(ctx.Done(), w.synced...)
}

// input is the current content of the caches. The objects are shared
// with the cache; FromKube only reads them.
func (w *watcher) input(node string) (Input, error) {
	svcs, err := w.services.List(labels.Everything())
	if err != nil {
		return Input{}, err
	}
	esl, err := w.slices.List(labels.Everything())
	if err != nil {
		return Input{}, err
	}
	return Input{Services: svcs, EndpointSlices: esl, NodeName: node}, nil
}
