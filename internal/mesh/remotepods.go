package mesh

import (
	"net/netip"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/false-systems/rauta/internal/proxy"
)

// The workloads of endpoints on other nodes. The agent's pod informer
// holds only this node's pods (watch.go); an endpoint elsewhere is named
// by its EndpointSlice's targetRef (the pod's namespace and name), and
// that pod's workload is read from a metadata-only informer on the pods
// of every namespace, cut by slimPodMeta to what workloadOf reads. Its
// cost is measured in remotepods_test.go (BenchmarkRemotePodsHeap) and
// documented in docs/telemetry.md.

// remotePod is what the cache keeps of a pod of any node: its key, the
// resource version the informer's store tracks, and its workload's name
// (workloadOf, resolved once when the pod arrives). A metav1.ObjectMeta
// would cost five times the memory (remotepods_test.go).
type remotePod struct {
	namespace, name, resourceVersion string
	workload                         string
}

// GetObjectMeta makes remotePod a metav1.ObjectMetaAccessor, which is
// how the informer's store reads its key and resource version.
func (p *remotePod) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: p.namespace, Name: p.name, ResourceVersion: p.resourceVersion}
}

// slimPodMeta is the informer's transform: a pod's metadata to a
// remotePod. Tombstones pass unchanged (the informer keys them itself).
func slimPodMeta(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &remotePod{namespace: m.Namespace, name: m.Name, resourceVersion: m.ResourceVersion, workload: workloadOfMeta(&m.ObjectMeta).Name}, nil
}

// remotePods reads the workloads of pods by namespace/name.
type remotePods struct {
	store cache.Store // of remotePod
}

// workload is the workload of the pod with store key key (namespace/name);
// false when the informer does not (or not yet) hold it.
func (r *remotePods) workload(key string) (proxy.Workload, bool) {
	if r == nil || key == "" {
		return proxy.Workload{}, false
	}
	obj, ok, err := r.store.GetByKey(key)
	if err != nil || !ok {
		return proxy.Workload{}, false
	}
	p, ok := obj.(*remotePod)
	if !ok {
		return proxy.Workload{}, false
	}
	return proxy.Workload{Name: p.workload, Namespace: p.namespace}, true
}

// endpointPod is the pod an endpoint address names: its store key
// (namespace/name), and whether that endpoint is ready.
type endpointPod struct {
	key   string
	ready bool
}

// endpointPods maps each address of an endpoint whose targetRef is a Pod
// to that pod. An address endpoints name for different pods goes to the
// ready one (a pod IP reused while the old pod's endpoint is still
// listed, not ready); when several ready (or several not ready) pods
// claim it, host-network pods sharing their node's address, it names
// none (an empty key): the address alone cannot say which, and a wrong
// name is worse than "unknown". The answer does not depend on the order
// of the slices.
func endpointPods(esl []*discoveryv1.EndpointSlice) map[netip.Addr]endpointPod {
	out := make(map[netip.Addr]endpointPod)
	for _, es := range esl {
		for i := range es.Endpoints {
			ep := &es.Endpoints[i]
			ref := ep.TargetRef
			if ref == nil || ref.Kind != "Pod" || ref.Name == "" {
				continue
			}
			ns := ref.Namespace
			if ns == "" {
				ns = es.Namespace
			}
			p := endpointPod{key: ns + "/" + ref.Name, ready: ep.Conditions.Ready == nil || *ep.Conditions.Ready}
			for _, s := range ep.Addresses {
				a, err := netip.ParseAddr(s)
				if err != nil || a.Zone() != "" {
					continue
				}
				a = a.Unmap()
				old, ok := out[a]
				switch {
				case !ok || p.ready && !old.ready:
					out[a] = p
				case old.ready == p.ready && old.key != p.key:
					out[a] = endpointPod{ready: p.ready} // ambiguous
				}
			}
		}
	}
	return out
}

// peers is what the proxy names workloads from: this node's pods by
// address, and for the other endpoints their pod's key and the remote
// pod cache (nil when the agent does not watch every pod's metadata).
type peers struct {
	local     map[netip.Addr]proxy.Workload
	endpoints map[netip.Addr]endpointPod
	remote    *remotePods
}

// destination is the workload at endpoint: a local pod's, else the
// workload of the pod its EndpointSlice names.
func (ps *peers) destination(endpoint netip.Addr) (proxy.Workload, bool) {
	if w, ok := ps.local[endpoint]; ok {
		return w, true
	}
	return ps.remote.workload(ps.endpoints[endpoint].key)
}

// live are the workloads the proxy can name now: every local pod's and
// every endpoint pod's the remote cache holds.
func (ps *peers) live() map[proxy.Workload]bool {
	out := make(map[proxy.Workload]bool, len(ps.local)+len(ps.endpoints))
	for _, w := range ps.local {
		out[w] = true
	}
	for _, ep := range ps.endpoints {
		if w, ok := ps.remote.workload(ep.key); ok {
			out[w] = true
		}
	}
	return out
}
