package mesh

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	listersdiscoveryv1 "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gwinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
	gwlisters "sigs.k8s.io/gateway-api/pkg/client/listers/apis/v1"

	"github.com/false-systems/rauta/internal/resources"
)

// Clients are the API clients the agent reads with. Gateway may be nil:
// then no HTTPRoute is watched and no GAMMA route applies. Metadata may
// be nil: then the pods of other nodes are not watched, and their
// workloads in the mesh proxy's metrics are "unknown" (remotepods.go).
type Clients struct {
	Kube     kubernetes.Interface
	Gateway  gwclient.Interface
	Metadata metadata.Interface
}

// kubeClients uses kubeconfig when given, else the in-cluster config.
func kubeClients(kubeconfig string) (Clients, error) {
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
		return Clients{}, fmt.Errorf("kubernetes client config: %w", err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return Clients{}, err
	}
	gc, err := gwclient.NewForConfig(cfg)
	if err != nil {
		return Clients{}, err
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return Clients{}, err
	}
	return Clients{Kube: kc, Gateway: gc, Metadata: mc}, nil
}

// watcher holds the Service and EndpointSlice caches of every namespace
// and, with GAMMA on, the HTTPRoutes and BackendTLSPolicies of every
// namespace, the pods of this node and the workloads of every pod.
type watcher struct {
	factory  informers.SharedInformerFactory
	services listerscorev1.ServiceLister
	slices   listersdiscoveryv1.EndpointSliceLister
	synced   []cache.InformerSynced

	// gamma is nil when GAMMA is off.
	gamma *gammaWatch
}

type gammaWatch struct {
	gwFactory  gwinformers.SharedInformerFactory
	podFactory informers.SharedInformerFactory
	routes     gwlisters.HTTPRouteLister
	policies   gwlisters.BackendTLSPolicyLister // nil when the API does not serve them
	pods       listerscorev1.PodLister
	// namespaces are read for their opt-out label (OptOutLabel).
	namespaces listerscorev1.NamespaceLister
	// metaFactory and remote hold the metadata of every pod of the
	// cluster (remotepods.go); nil without Clients.Metadata or with
	// remote workloads off.
	metaFactory metadatainformer.SharedInformerFactory
	remote      *remotePods
}

// gammaKinds says which Gateway API kinds the API server serves:
// HTTPRoutes are needed for GAMMA, BackendTLSPolicies are read when there.
func gammaKinds(client kubernetes.Interface) (routes, policies bool, err error) {
	rl, err := client.Discovery().ServerResourcesForGroupVersion(gwv1.GroupVersion.String())
	if err != nil {
		return false, false, err
	}
	for _, r := range rl.APIResources {
		switch r.Name {
		case "httproutes":
			routes = true
		case "backendtlspolicies":
			policies = true
		}
	}
	return routes, policies, nil
}

// newWatcher registers poke for every change. Managed fields are dropped
// from the cache: the agent holds every Service and EndpointSlice of the
// cluster, and reads none of them. With gamma, node (may be empty: every
// pod) selects the pods whose addresses name client namespaces; with
// remote (and Clients.Metadata) every pod's metadata is watched too, for
// the workloads of endpoints on other nodes.
func newWatcher(clients Clients, gamma, policies, remote bool, node string, poke func()) (*watcher, error) {
	f := informers.NewSharedInformerFactory(clients.Kube, 0)
	svc := f.Core().V1().Services()
	es := f.Discovery().V1().EndpointSlices()
	w := &watcher{factory: f, services: svc.Lister(), slices: es.Lister()}
	infs := []cache.SharedIndexInformer{svc.Informer(), es.Informer()}
	if gamma {
		g := &gammaWatch{gwFactory: gwinformers.NewSharedInformerFactory(clients.Gateway, 0)}
		// Only this node's full pods: the proxy serves the connections
		// of local pods, and a cluster's full pods would cost memory on
		// every node; other nodes' pods are read as metadata cut to their
		// workload (remotepods.go).
		g.podFactory = informers.NewSharedInformerFactoryWithOptions(clients.Kube, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			if node != "" {
				o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
			}
		}))
		routes := g.gwFactory.Gateway().V1().HTTPRoutes()
		pods := g.podFactory.Core().V1().Pods()
		nss := f.Core().V1().Namespaces()
		g.routes, g.pods, g.namespaces = routes.Lister(), pods.Lister(), nss.Lister()
		infs = append(infs, routes.Informer())
		if policies {
			p := g.gwFactory.Gateway().V1().BackendTLSPolicies()
			g.policies = p.Lister()
			infs = append(infs, p.Informer())
		}
		if err := pods.Informer().SetTransform(slimPod); err != nil {
			return nil, err
		}
		if _, err := pods.Informer().AddEventHandler(podHandler(poke)); err != nil {
			return nil, err
		}
		w.synced = append(w.synced, pods.Informer().HasSynced)
		if err := nss.Informer().SetTransform(slimNamespace); err != nil {
			return nil, err
		}
		if _, err := nss.Informer().AddEventHandler(namespaceHandler(poke)); err != nil {
			return nil, err
		}
		w.synced = append(w.synced, nss.Informer().HasSynced)
		if remote && clients.Metadata != nil {
			// No handler: the proxy reads this cache when it records a
			// request, so a pod's arrival needs no map update.
			g.metaFactory = metadatainformer.NewSharedInformerFactoryWithOptions(clients.Metadata, 0, metadatainformer.WithTransform(slimPodMeta))
			inf := g.metaFactory.ForResource(corev1.SchemeGroupVersion.WithResource("pods")).Informer()
			g.remote = &remotePods{store: inf.GetStore()}
			w.synced = append(w.synced, inf.HasSynced)
		}
		w.gamma = g
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}
	for _, inf := range infs {
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

// slimPod keeps what the namespace index and the workload names
// (telemetry.go) read; pods change often and carry large specs.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: workloadLabels(p.Labels), OwnerReferences: workloadOwner(p.OwnerReferences)},
		Spec:   corev1.PodSpec{NodeName: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork},
		Status: corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs},
	}, nil
}

// slimNamespace keeps a namespace's name and opt-out label.
func slimNamespace(obj any) (any, error) {
	n, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Labels: optOutOnly(n.Labels)}}, nil
}

// optOutOnly is labels cut to OptOutLabel, nil without it.
func optOutOnly(labels map[string]string) map[string]string {
	v, ok := labels[OptOutLabel]
	if !ok {
		return nil
	}
	return map[string]string{OptOutLabel: v}
}

// namespaceHandler pokes when a namespace's opt-out label changes (or it
// comes or goes with one).
func namespaceHandler(poke func()) cache.ResourceEventHandlerFuncs {
	labelled := func(obj any) bool {
		n, ok := obj.(*corev1.Namespace)
		if !ok {
			return true // a tombstone: poke
		}
		_, has := n.Labels[OptOutLabel]
		return has
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			if labelled(o) {
				poke()
			}
		},
		UpdateFunc: func(o, n any) {
			on, ok1 := o.(*corev1.Namespace)
			nn, ok2 := n.(*corev1.Namespace)
			if !ok1 || !ok2 || on.Labels[OptOutLabel] != nn.Labels[OptOutLabel] {
				poke()
			}
		},
		DeleteFunc: func(o any) {
			if labelled(o) {
				poke()
			}
		},
	}
}

// podHandler pokes only when a pod's addresses or opt-out label change:
// status updates of a running pod (probes, restarts) do not matter to the
// index.
func podHandler(poke func()) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { poke() },
		UpdateFunc: func(o, n any) {
			op, ok1 := o.(*corev1.Pod)
			np, ok2 := n.(*corev1.Pod)
			if !ok1 || !ok2 || !slices.Equal(op.Status.PodIPs, np.Status.PodIPs) || op.Spec.HostNetwork != np.Spec.HostNetwork || op.Labels[OptOutLabel] != np.Labels[OptOutLabel] {
				poke()
			}
		},
		DeleteFunc: func(any) { poke() },
	}
}

// start runs the informers and waits for their first lists; false: ctx
// ended first.
func (w *watcher) start(ctx context.Context) bool {
	w.factory.Start(ctx.Done())
	if w.gamma != nil {
		w.gamma.gwFactory.Start(ctx.Done())
		w.gamma.podFactory.Start(ctx.Done())
		if w.gamma.metaFactory != nil {
			w.gamma.metaFactory.Start(ctx.Done())
		}
	}
	return cache.WaitForCacheSync(ctx.Done(), w.synced...)
}

// shutdown waits for the informers' goroutines, which end with the
// context given to start.
func (w *watcher) shutdown() {
	w.factory.Shutdown()
	if w.gamma != nil {
		w.gamma.gwFactory.Shutdown()
		w.gamma.podFactory.Shutdown()
		if w.gamma.metaFactory != nil {
			w.gamma.metaFactory.Shutdown()
		}
	}
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

// gammaInput is what TranslateMesh reads (the objects shared with the
// cache, which it never changes), the workloads by address (this node's
// pods and the endpoints' pods) and the pods that opted out of the mesh.
func (w *watcher) gammaInput(in Input) (*resources.Resources, peers, []*corev1.Pod, error) {
	g := w.gamma
	routes, err := g.routes.List(labels.Everything())
	if err != nil {
		return nil, peers{}, nil, err
	}
	res := &resources.Resources{HTTPRoutes: routes, Services: in.Services, EndpointSlices: in.EndpointSlices}
	if g.policies != nil {
		if res.BackendTLSPolicies, err = g.policies.List(labels.Everything()); err != nil {
			return nil, peers{}, nil, err
		}
	}
	pods, err := g.pods.List(labels.Everything())
	if err != nil {
		return nil, peers{}, nil, err
	}
	nss, err := g.namespaces.List(labels.Everything())
	if err != nil {
		return nil, peers{}, nil, err
	}
	nsLabels := make(map[string]map[string]string, len(nss))
	for _, n := range nss {
		nsLabels[n.Name] = n.Labels
	}
	ps := peers{local: podWorkloads(pods), remote: g.remote}
	if g.remote != nil {
		ps.endpoints = endpointPods(in.EndpointSlices)
	}
	return res, ps, optedOutPods(pods, nsLabels), nil
}
