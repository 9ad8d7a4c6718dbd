package mesh

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/tools/cache"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	"github.com/false-systems/rauta/internal/poll"
	"github.com/false-systems/rauta/internal/proxy"
)

// podMeta is a pod's metadata as the API server sends it to a metadata
// informer: with the labels, annotations, owner UIDs and managed fields
// slimPodMeta drops.
func podMeta(ns, name string, owner *metav1.OwnerReference, labels map[string]string) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: "0b7e6f0e-3c1d-4a8e-9f6b-2f4c5d6e7f80", ResourceVersion: "123456",
			Labels:            map[string]string{"app": name, "team": "payments"},
			Annotations:       map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-12-01T10:00:00Z"},
			ManagedFields:     []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1"}},
			GenerateName:      name + "-",
			CreationTimestamp: metav1.Now(),
		},
	}
	for k, v := range labels {
		m.Labels[k] = v
	}
	if owner != nil {
		o := *owner
		o.APIVersion, o.UID, o.BlockOwnerDeletion = "apps/v1", "5c3e2a1b-0000-4000-8000-000000000001", ptrTo(true)
		m.OwnerReferences = []metav1.OwnerReference{o}
	}
	return m
}

func slimInto(t testing.TB, store cache.Store, m *metav1.PartialObjectMetadata) {
	t.Helper()
	obj, err := slimPodMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Add(obj); err != nil {
		t.Fatal(err)
	}
}

// endpointSlice is a slice of Service svc in namespace ns whose endpoint
// at each address names the pod of the same index.
func endpointSlice(ns, name string, addrs, pods []string, ready ...bool) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, AddressType: discoveryv1.AddressTypeIPv4}
	for i, a := range addrs {
		ep := discoveryv1.Endpoint{Addresses: []string{a}}
		if pods[i] != "" {
			ep.TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: pods[i]}
		}
		if i < len(ready) {
			ep.Conditions.Ready = ptrTo(ready[i])
		}
		es.Endpoints = append(es.Endpoints, ep)
	}
	return es
}

// TestRemoteDestination: an endpoint on another node is named by the
// workload of the pod its EndpointSlice's targetRef names, for each kind
// of workload; a pod deleted from the cache is forgotten (its endpoint
// unknown, its workload no longer live); a local pod wins over the cache.
func TestRemoteDestination(t *testing.T) {
	store := cache.NewStore(cache.DeletionHandlingMetaNamespaceKeyFunc)
	pods := []*metav1.PartialObjectMetadata{
		podMeta("shop", "api-6b8d9f7c5-x2k9q", &metav1.OwnerReference{Kind: "ReplicaSet", Name: "api-6b8d9f7c5", Controller: ptrTo(true)}, map[string]string{"pod-template-hash": "6b8d9f7c5"}),
		podMeta("shop", "db-1", &metav1.OwnerReference{Kind: "StatefulSet", Name: "db", Controller: ptrTo(true)}, nil),
		podMeta("shop", "agent-q8z2r", &metav1.OwnerReference{Kind: "DaemonSet", Name: "agent", Controller: ptrTo(true)}, nil),
		podMeta("shop", "migrate-29k4x", &metav1.OwnerReference{Kind: "Job", Name: "migrate", Controller: ptrTo(true)}, nil),
		podMeta("shop", "debug", nil, nil),
	}
	for _, p := range pods {
		slimInto(t, store, p)
	}
	addrs := []string{"10.244.221.1", "10.244.221.2", "10.244.221.3", "10.244.221.4", "10.244.221.5", "10.244.221.6"}
	names := []string{pods[0].Name, pods[1].Name, pods[2].Name, pods[3].Name, pods[4].Name, ""}
	local := netip.MustParseAddr("10.244.220.7")
	p := &meshProxy{}
	ps := peers{
		local:     map[netip.Addr]proxy.Workload{local: {Name: "front", Namespace: "web"}},
		endpoints: endpointPods([]*discoveryv1.EndpointSlice{endpointSlice("shop", "api-a", append(addrs, local.String()), append(names, "front-0"))}),
		remote:    &remotePods{store: store},
	}
	p.table.Store(&proxyTable{peers: ps})
	want := []proxy.Workload{
		{Name: "api", Namespace: "shop"},     // Deployment
		{Name: "db", Namespace: "shop"},      // StatefulSet
		{Name: "agent", Namespace: "shop"},   // DaemonSet
		{Name: "migrate", Namespace: "shop"}, // Job
		{Name: "debug", Namespace: "shop"},   // bare pod
		{Name: "unknown", Namespace: "shop"}, // no targetRef
	}
	for i, a := range addrs {
		if got := p.Destination("shop/api", netip.MustParseAddr(a)); got != want[i] {
			t.Errorf("endpoint %s (pod %q): %+v, want %+v", a, names[i], got, want[i])
		}
	}
	if got := p.Destination("shop/api", local); got != (proxy.Workload{Name: "front", Namespace: "web"}) {
		t.Errorf("local endpoint: %+v, want the local pod's workload", got)
	}
	if live := ps.live(); !live[want[1]] || len(live) != 6 {
		t.Errorf("live workloads %v, want the five remote ones and the local one", live)
	}

	obj, _ := slimPodMeta(pods[1])
	if err := store.Delete(obj); err != nil {
		t.Fatal(err)
	}
	if got := p.Destination("shop/api", netip.MustParseAddr(addrs[1])); got != (proxy.Workload{Name: "unknown", Namespace: "shop"}) {
		t.Errorf("endpoint of the deleted pod: %+v, want unknown", got)
	}
	if live := ps.live(); live[want[1]] || len(live) != 5 {
		t.Errorf("live workloads after the delete %v, want db gone", live)
	}
	// Without the remote cache every other node's endpoint is unknown.
	off := peers{local: ps.local, endpoints: ps.endpoints}
	if w, ok := off.destination(netip.MustParseAddr(addrs[0])); ok {
		t.Errorf("without the remote cache: %+v, want none", w)
	}
}

// TestEndpointPods: addresses map to their endpoint's pod; an address two
// endpoints claim goes to the ready one, and to none when two ready (or
// two not ready) pods claim it, in any slice order; the same pod in two
// slices is no conflict; endpoints that name no pod are skipped.
func TestEndpointPods(t *testing.T) {
	a := endpointSlice("shop", "a", []string{"10.244.221.1", "10.244.221.2", "::ffff:10.244.221.3", "10.244.221.6"}, []string{"a-old", "b-host", "mapped", "gone-a"}, false, true, true, false)
	b := endpointSlice("shop", "b", []string{"10.244.221.1", "10.244.221.2", "10.244.221.3", "10.244.221.6"}, []string{"new", "a-host", "mapped", "gone-b"}, true, true, true, false)
	other := endpointSlice("shop", "c", []string{"10.244.221.4"}, []string{"x"})
	other.Endpoints[0].TargetRef.Kind = "Node"
	ns := endpointSlice("shop", "d", []string{"10.244.221.5"}, []string{"y"})
	ns.Endpoints[0].TargetRef.Namespace = "elsewhere"
	want := map[string]string{"10.244.221.1": "shop/new", "10.244.221.2": "", "10.244.221.3": "shop/mapped", "10.244.221.5": "elsewhere/y", "10.244.221.6": ""}
	for _, order := range [][]*discoveryv1.EndpointSlice{{a, b, other, ns}, {ns, other, b, a}} {
		got := endpointPods(order)
		if len(got) != len(want) {
			t.Errorf("got %v, want %v", got, want)
		}
		for ip, key := range want {
			if got[netip.MustParseAddr(ip)].key != key {
				t.Errorf("%s: %q, want %q", ip, got[netip.MustParseAddr(ip)].key, key)
			}
		}
	}
}

// TestSlimPodMeta: the cache keeps a pod's key, resource version and
// workload, and the informer's store keys it as it keys the pod.
func TestSlimPodMeta(t *testing.T) {
	full := podMeta("shop", "api-6b8d9f7c5-x2k9q", &metav1.OwnerReference{Kind: "ReplicaSet", Name: "api-6b8d9f7c5", Controller: ptrTo(true)}, map[string]string{"pod-template-hash": "6b8d9f7c5"})
	obj, err := slimPodMeta(full)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := *obj.(*remotePod), (remotePod{namespace: "shop", name: full.Name, resourceVersion: "123456", workload: "api"}); got != want {
		t.Errorf("slim %+v, want %+v", got, want)
	}
	for _, o := range []any{obj, full} {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(o); err != nil || key != "shop/"+full.Name {
			t.Errorf("key of %T: %q %v", o, key, err)
		}
	}
}

// BenchmarkRemotePodsHeap measures the heap the remote pod cache holds
// at 10,000 pods (as Deployments make them: the case with the most
// fields kept), then the endpoint index over 10,000 endpoints naming
// them: heap in use after a GC before and after each, per pod. Every
// string is its own allocation, as a decoded watch event's are.
func BenchmarkRemotePodsHeap(b *testing.B) {
	const n = 10000
	names := func(i int) (ns, rs, name string) {
		ns = fmt.Sprintf("team-%d", i%50)
		rs = fmt.Sprintf("service-%d-6b8d9f7c5", i/10)
		return ns, rs, fmt.Sprintf("%s-%05d", rs, i)
	}
	for b.Loop() {
		var m0, m1, m2, m3 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		store := cache.NewStore(cache.DeletionHandlingMetaNamespaceKeyFunc)
		for i := range n {
			ns, rs, name := names(i)
			m := podMeta(ns, name, &metav1.OwnerReference{Kind: strings.Clone("ReplicaSet"), Name: rs, Controller: ptrTo(true)},
				map[string]string{strings.Clone("pod-template-hash"): strings.Clone("6b8d9f7c5")})
			slimInto(b, store, m)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		// The EndpointSlices are the agent's cache anyway.
		es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}}
		for i := range n {
			ns, _, name := names(i)
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses: []string{fmt.Sprintf("10.%d.%d.%d", 100+i>>16, (i>>8)&255, i&255)},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: name},
			})
		}
		runtime.GC()
		runtime.ReadMemStats(&m2)
		idx := endpointPods([]*discoveryv1.EndpointSlice{es})
		runtime.GC()
		runtime.ReadMemStats(&m3)
		if len(store.List()) != n || len(idx) != n {
			b.Fatalf("%d pods cached, %d endpoints indexed, want %d", len(store.List()), len(idx), n)
		}
		b.ReportMetric(float64(m1.HeapInuse-m0.HeapInuse)/n, "cache-B/pod")
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/n, "cache-live-B/pod")
		b.ReportMetric(float64(m3.HeapInuse-m2.HeapInuse)/n, "index-B/endpoint")
		runtime.KeepAlive(store)
		runtime.KeepAlive(es)
		runtime.KeepAlive(idx)
	}
}

// TestRemotePodsInformer runs the metadata informer the watcher builds
// (newWatcher) against a fake API: the transformed pods are stored under
// their keys, an updated pod's workload follows, and a deleted pod is
// forgotten.
func TestRemotePodsInformer(t *testing.T) {
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	api := metadatafake.NewSimpleMetadataClient(scheme,
		podMeta("shop", "db-0", &metav1.OwnerReference{Kind: "StatefulSet", Name: "db", Controller: ptrTo(true)}, nil))
	clients := Clients{Kube: kubefake.NewClientset(), Gateway: gwfake.NewClientset(), Metadata: api}
	w, err := newWatcher(clients, true, false, true, "", func() {})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); w.shutdown() }()
	if !w.start(ctx) {
		t.Fatal("caches did not sync")
	}
	r := w.gamma.remote
	if got, ok := r.workload("shop/db-0"); !ok || got != (proxy.Workload{Name: "db", Namespace: "shop"}) {
		t.Fatalf("db-0 after the first list: %+v %v", got, ok)
	}
	pods := api.Resource(corev1.SchemeGroupVersion.WithResource("pods")).Namespace("shop")
	bare := podMeta("shop", "debug", nil, nil)
	if _, err := pods.(metadatafake.MetadataClient).CreateFake(bare, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll.Require(t, 10*time.Second, "debug cached as its own workload", func() bool {
		got, ok := r.workload("shop/debug")
		return ok && got == proxy.Workload{Name: "debug", Namespace: "shop"}
	})
	if err := pods.Delete(ctx, "db-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll.Require(t, 10*time.Second, "db-0 forgotten", func() bool {
		_, ok := r.workload("shop/db-0")
		return !ok
	})
}

// benchSlice is one slice of n endpoints, each naming its pod.
func benchSlice(n int) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}}
	for i := range n {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{fmt.Sprintf("10.%d.%d.%d", 100+i>>16, (i>>8)&255, i&255)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: fmt.Sprintf("api-6b8d9f7c5-%05d", i)},
		})
	}
	return es
}

// BenchmarkEndpointPods: what each map update adds to build the
// endpoint index, at 10,000 endpoints.
func BenchmarkEndpointPods(b *testing.B) {
	esl := []*discoveryv1.EndpointSlice{benchSlice(10000)}
	b.ReportAllocs()
	for b.Loop() {
		if len(endpointPods(esl)) != 10000 {
			b.Fatal("endpoints lost")
		}
	}
}

// BenchmarkRemoteDestination: what naming a request's remote endpoint
// costs the proxy (index, then the cache under its read lock).
func BenchmarkRemoteDestination(b *testing.B) {
	const n = 10000
	store := cache.NewStore(cache.DeletionHandlingMetaNamespaceKeyFunc)
	for i := range n {
		slimInto(b, store, podMeta("shop", fmt.Sprintf("api-6b8d9f7c5-%05d", i), &metav1.OwnerReference{Kind: "ReplicaSet", Name: "api-6b8d9f7c5", Controller: ptrTo(true)}, map[string]string{"pod-template-hash": "6b8d9f7c5"}))
	}
	p := &meshProxy{}
	p.table.Store(&proxyTable{peers: peers{endpoints: endpointPods([]*discoveryv1.EndpointSlice{benchSlice(n)}), remote: &remotePods{store: store}}})
	ep := netip.MustParseAddr("10.100.19.136") // endpoint 5000
	b.ReportAllocs()
	for b.Loop() {
		if p.Destination("shop/api", ep).Name != "api" {
			b.Fatal("not named")
		}
	}
}
