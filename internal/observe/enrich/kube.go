package enrich

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Kube resolves addresses from Pod and EndpointSlice informers.
type Kube struct {
	mu   sync.RWMutex
	pods map[netip.Addr]podRef
	// uids: pods by their PodKeyOfCgroup keys (UID and devcluster form).
	uids   map[string]podRef
	svcs   map[netip.Addr]svcRef
	slices map[string][]netip.Addr // slice ns/name -> addresses it contributed
}

type podRef struct{ name, namespace string }
type svcRef struct{ name, namespace, slice string }

// KubeOptions tune the informers.
type KubeOptions struct {
	// NodeName limits the Pod informer to pods on this node (the observer
	// runs per node); empty watches all pods.
	NodeName string
	Resync   time.Duration
	// SyncContext bounds the wait for the initial sync (the informers run
	// until the ctx given to NewKube ends); nil waits on that ctx.
	SyncContext context.Context
}

// NewKube starts the informers and waits until their caches are synced.
// They stop when ctx ends.
func NewKube(ctx context.Context, client kubernetes.Interface, opts KubeOptions) (*Kube, error) {
	k := &Kube{
		pods:   make(map[netip.Addr]podRef),
		uids:   make(map[string]podRef),
		svcs:   make(map[netip.Addr]svcRef),
		slices: make(map[string][]netip.Addr),
	}
	podFactory := informers.NewSharedInformerFactoryWithOptions(client, opts.Resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			if opts.NodeName != "" {
				o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", opts.NodeName).String()
			}
		}))
	factory := informers.NewSharedInformerFactory(client, opts.Resync)

	podInf := podFactory.Core().V1().Pods().Informer()
	if _, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { k.setPod(nil, o) },
		UpdateFunc: func(old, o any) { k.setPod(old, o) },
		DeleteFunc: func(o any) { k.setPod(o, nil) },
	}); err != nil {
		return nil, fmt.Errorf("add pod handler: %w", err)
	}
	sliceInf := factory.Discovery().V1().EndpointSlices().Informer()
	if _, err := sliceInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { k.setSlice(o, false) },
		UpdateFunc: func(_, o any) { k.setSlice(o, false) },
		DeleteFunc: func(o any) { k.setSlice(o, true) },
	}); err != nil {
		return nil, fmt.Errorf("add endpointslice handler: %w", err)
	}
	podFactory.Start(ctx.Done())
	factory.Start(ctx.Done())
	syncCtx := opts.SyncContext
	if syncCtx == nil {
		syncCtx = ctx
	}
	if !cache.WaitForCacheSync(syncCtx.Done(), podInf.HasSynced, sliceInf.HasSynced) {
		return nil, fmt.Errorf("sync pod and endpointslice informers: %w", context.Cause(syncCtx))
	}
	return k, nil
}

// Lookup implements Resolver.
func (k *Kube) Lookup(ip netip.Addr) (Info, bool) {
	ip = ip.Unmap()
	k.mu.RLock()
	p, okP := k.pods[ip]
	s, okS := k.svcs[ip]
	k.mu.RUnlock()
	if !okP && !okS {
		return Info{}, false
	}
	info := Info{Pod: p.name, Namespace: p.namespace, Service: s.name}
	if info.Namespace == "" {
		info.Namespace = s.namespace
	}
	return info, true
}

// PodByKey implements PodIndex.
func (k *Kube) PodByKey(key string) (Info, bool) {
	k.mu.RLock()
	p, ok := k.uids[key]
	k.mu.RUnlock()
	return Info{Pod: p.name, Namespace: p.namespace}, ok
}

func podOf(o any) *corev1.Pod {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	p, _ := o.(*corev1.Pod)
	return p
}

func podIPs(p *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	for _, s := range p.Status.PodIPs {
		if ip, err := netip.ParseAddr(s.IP); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	if len(out) == 0 && p.Status.PodIP != "" {
		if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

func (k *Kube) setPod(oldObj, newObj any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if old := podOf(oldObj); old != nil {
		uid := string(old.UID)
		delete(k.uids, uid)
		delete(k.uids, DevclusterPodKey(uid))
		for _, ip := range podIPs(old) {
			// Only remove if the address still belongs to this pod: IPs are
			// reused, and the new owner's event may have come first.
			if r := k.pods[ip]; r.name == old.Name && r.namespace == old.Namespace {
				delete(k.pods, ip)
			}
		}
	}
	if p := podOf(newObj); p != nil && p.UID != "" {
		// By UID also for host-network pods: their processes' cgroups
		// are their own.
		ref := podRef{name: p.Name, namespace: p.Namespace}
		k.uids[string(p.UID)], k.uids[DevclusterPodKey(string(p.UID))] = ref, ref
	}
	if p := podOf(newObj); p != nil && !p.Spec.HostNetwork {
		// Host-network pods share the node's address: naming the node IP
		// after one of them would be wrong.
		for _, ip := range podIPs(p) {
			k.pods[ip] = podRef{name: p.Name, namespace: p.Namespace}
		}
	}
}

func (k *Kube) setSlice(o any, deleted bool) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	s, ok := o.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	key := s.Namespace + "/" + s.Name
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, ip := range k.slices[key] {
		if r := k.svcs[ip]; r.slice == key {
			delete(k.svcs, ip)
		}
	}
	delete(k.slices, key)
	svc := s.Labels[discoveryv1.LabelServiceName]
	if deleted || svc == "" {
		return
	}
	var ips []netip.Addr
	for _, ep := range s.Endpoints {
		for _, a := range ep.Addresses {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				continue // FQDN slices carry names, not addresses
			}
			ip = ip.Unmap()
			k.svcs[ip] = svcRef{name: svc, namespace: s.Namespace, slice: key}
			ips = append(ips, ip)
		}
	}
	k.slices[key] = ips
}
