package mesh

import (
	"net/netip"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/false-systems/rauta/internal/proxy"
)

// unknownWorkload names what the agent cannot attribute: Istio's value.
const unknownWorkload = "unknown"

// workloadOf is the workload that runs pod: its controller (or, with no
// controller, its first owner); a ReplicaSet stands for the Deployment
// that made it when its name is the Deployment's plus "-" and the pod's
// pod-template-hash label (how the Deployment controller names them), so
// the workload keeps its name across rollouts; a pod without owner is its
// own workload. CronJob Jobs stay Jobs: their name has no stable suffix
// to strip, and the agent does not watch Jobs.
func workloadOf(pod *corev1.Pod) proxy.Workload {
	return workloadOfMeta(&pod.ObjectMeta)
}

// workloadOfMeta is workloadOf from a pod's metadata, which is all it
// reads (the remote pod cache holds only metadata, remotepods.go).
func workloadOfMeta(pod *metav1.ObjectMeta) proxy.Workload {
	w := proxy.Workload{Name: pod.Name, Namespace: pod.Namespace}
	refs := workloadOwner(pod.OwnerReferences)
	if len(refs) == 0 {
		return w
	}
	ref := refs[0]
	w.Name = ref.Name
	if ref.Kind == "ReplicaSet" {
		if h := pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; h != "" {
			if d, ok := strings.CutSuffix(ref.Name, "-"+h); ok && d != "" {
				w.Name = d
			}
		}
	}
	return w
}

// workloadOwner cuts a pod's owners to the one workloadOf reads (its
// controller, else its first owner), with only its kind and name, for
// the slim pod cache (watch.go slimPod).
func workloadOwner(refs []metav1.OwnerReference) []metav1.OwnerReference {
	if len(refs) == 0 {
		return nil
	}
	ref := refs[0]
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			ref = r
			break
		}
	}
	return []metav1.OwnerReference{{Kind: ref.Kind, Name: ref.Name, Controller: ref.Controller}}
}

// workloadLabels cuts a pod's labels to the opt-out label and the
// pod-template-hash that workloadOf reads, nil with neither.
func workloadLabels(labels map[string]string) map[string]string {
	out := optOutOnly(labels)
	if h, ok := labels[appsv1.DefaultDeploymentUniqueLabelKey]; ok {
		if out == nil {
			out = make(map[string]string, 1)
		}
		out[appsv1.DefaultDeploymentUniqueLabelKey] = h
	}
	return out
}

// podWorkloads maps each pod address to its pod's workload. Pods on the
// host network share the node's addresses, which name no workload.
func podWorkloads(pods []*corev1.Pod) map[netip.Addr]proxy.Workload {
	out := make(map[netip.Addr]proxy.Workload, len(pods))
	for _, p := range pods {
		if p.Spec.HostNetwork {
			continue
		}
		ips := p.Status.PodIPs
		if len(ips) == 0 && p.Status.PodIP != "" {
			ips = []corev1.PodIP{{IP: p.Status.PodIP}}
		}
		w := workloadOf(p)
		for _, ip := range ips {
			if a, err := netip.ParseAddr(ip.IP); err == nil {
				out[a.Unmap()] = w
			}
		}
	}
	return out
}

// Source is proxy.Peers': the client's pod is on this node (connections
// are steered where they start), so its workload is known unless it is
// not a pod (a host-network process).
func (p *meshProxy) Source(client netip.Addr) proxy.Workload {
	if w, ok := p.table.Load().peers.local[client]; ok {
		return w
	}
	return proxy.Workload{Name: unknownWorkload, Namespace: unknownWorkload}
}

// Destination is proxy.Peers': an endpoint on this node is a pod the
// agent watches; an endpoint on another node is the pod its
// EndpointSlice's targetRef names, whose workload the remote pod cache
// holds (remotepods.go). An endpoint that names no pod (a Service without
// selector), or whose pod the cache does not hold (yet, or the cache is
// off), has workload "unknown" in the Service's namespace, where a
// Service's selector finds its pods.
func (p *meshProxy) Destination(service string, endpoint netip.Addr) proxy.Workload {
	if w, ok := p.table.Load().peers.destination(endpoint); ok {
		return w
	}
	ns, _, _ := strings.Cut(service, "/")
	return proxy.Workload{Name: unknownWorkload, Namespace: ns}
}

// forgetGoneWorkloads drops the series of workloads that neither a pod
// of this node nor an endpoint's pod runs any more, so the workload
// labels stay bounded by the live workloads; the unknown ones stay.
func (p *meshProxy) forgetGoneWorkloads(ps *peers) {
	live := ps.live()
	p.srv.ForgetWorkloads(func(w proxy.Workload) bool {
		return live[w] || w.Name == unknownWorkload
	})
}
