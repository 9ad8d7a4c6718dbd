package mesh

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/false-systems/rauta/internal/proxy"
)

func owned(kind, name string, controller bool) metav1.OwnerReference {
	return metav1.OwnerReference{Kind: kind, Name: name, Controller: &controller}
}

// TestWorkloadOf: the workload of each kind of pod, as Istio names it.
func TestWorkloadOf(t *testing.T) {
	hash := map[string]string{"pod-template-hash": "7d4b9c8f6"}
	for _, c := range []struct {
		name   string
		pod    metav1.ObjectMeta
		wantWL string
	}{
		{"deployment", metav1.ObjectMeta{Name: "web-7d4b9c8f6-x2k9q", Labels: hash,
			OwnerReferences: []metav1.OwnerReference{owned("ReplicaSet", "web-7d4b9c8f6", true)}}, "web"},
		{"deployment with dashes", metav1.ObjectMeta{Name: "my-api-v2-7d4b9c8f6-x2k9q", Labels: hash,
			OwnerReferences: []metav1.OwnerReference{owned("ReplicaSet", "my-api-v2-7d4b9c8f6", true)}}, "my-api-v2"},
		{"bare replicaset", metav1.ObjectMeta{Name: "rs-abcde",
			OwnerReferences: []metav1.OwnerReference{owned("ReplicaSet", "rs", true)}}, "rs"},
		{"replicaset whose name lacks the hash", metav1.ObjectMeta{Name: "rs-abcde", Labels: hash,
			OwnerReferences: []metav1.OwnerReference{owned("ReplicaSet", "rs", true)}}, "rs"},
		{"replicaset named only the hash", metav1.ObjectMeta{Name: "x", Labels: map[string]string{"pod-template-hash": "h"},
			OwnerReferences: []metav1.OwnerReference{owned("ReplicaSet", "-h", true)}}, "-h"},
		{"statefulset", metav1.ObjectMeta{Name: "db-0",
			OwnerReferences: []metav1.OwnerReference{owned("StatefulSet", "db", true)}}, "db"},
		{"daemonset", metav1.ObjectMeta{Name: "agent-q8z2r",
			OwnerReferences: []metav1.OwnerReference{owned("DaemonSet", "agent", true)}}, "agent"},
		{"job", metav1.ObjectMeta{Name: "migrate-29k4x",
			OwnerReferences: []metav1.OwnerReference{owned("Job", "migrate", true)}}, "migrate"},
		{"bare pod", metav1.ObjectMeta{Name: "debug"}, "debug"},
		{"controller among owners", metav1.ObjectMeta{Name: "p",
			OwnerReferences: []metav1.OwnerReference{owned("ConfigMap", "cm", false), owned("StatefulSet", "ss", true)}}, "ss"},
		{"no controller: the first owner", metav1.ObjectMeta{Name: "p",
			OwnerReferences: []metav1.OwnerReference{owned("Thing", "t1", false), owned("Thing", "t2", false)}}, "t1"},
	} {
		c.pod.Namespace = "ns"
		got := workloadOf(&corev1.Pod{ObjectMeta: c.pod})
		if got != (proxy.Workload{Name: c.wantWL, Namespace: "ns"}) {
			t.Errorf("%s: %+v, want %s in ns", c.name, got, c.wantWL)
		}
	}
}

func TestPodWorkloads(t *testing.T) {
	pods := []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "web-0", OwnerReferences: []metav1.OwnerReference{owned("StatefulSet", "web", true)}},
			Status: corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "10.1.0.1"}, {IP: "fd00::1"}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "solo"}, Status: corev1.PodStatus{PodIP: "10.1.0.2"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "host", Name: "h"}, Spec: corev1.PodSpec{HostNetwork: true}, Status: corev1.PodStatus{PodIP: "192.168.0.1"}},
	}
	got := podWorkloads(pods)
	want := map[string]proxy.Workload{"10.1.0.1": {Name: "web", Namespace: "a"}, "fd00::1": {Name: "web", Namespace: "a"}, "10.1.0.2": {Name: "solo", Namespace: "b"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for ip, w := range want {
		if got[netip.MustParseAddr(ip)] != w {
			t.Errorf("%s: %+v, want %+v", ip, got[netip.MustParseAddr(ip)], w)
		}
	}
}

// TestMeshPeers: the mesh proxy names a client on its node by its pod's
// workload and anything else unknown; an endpoint on its node by its pod,
// one elsewhere unknown in the Service's namespace.
func TestMeshPeers(t *testing.T) {
	p := &meshProxy{}
	local := netip.MustParseAddr("10.244.220.5")
	p.table.Store(&proxyTable{peers: peers{local: map[netip.Addr]proxy.Workload{local: {Name: "web", Namespace: "shop"}}}})
	remote := netip.MustParseAddr("10.244.221.9")
	for _, c := range []struct {
		name      string
		got, want proxy.Workload
	}{
		{"local client", p.Source(local), proxy.Workload{Name: "web", Namespace: "shop"}},
		{"host client", p.Source(netip.MustParseAddr("192.168.0.1")), proxy.Workload{Name: "unknown", Namespace: "unknown"}},
		{"local endpoint", p.Destination("shop/api", local), proxy.Workload{Name: "web", Namespace: "shop"}},
		{"remote endpoint", p.Destination("shop/api", remote), proxy.Workload{Name: "unknown", Namespace: "shop"}},
		{"no endpoint", p.Destination("shop/api", netip.Addr{}), proxy.Workload{Name: "unknown", Namespace: "shop"}},
	} {
		if c.got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, c.got, c.want)
		}
	}
}

// TestSlimPodKeepsWorkload: the agent caches pods slimmed (watch.go
// slimPod); the slim pod still names the same workload, and keeps the
// opt-out label, but not the pod's other labels and owners.
func TestSlimPodKeepsWorkload(t *testing.T) {
	full := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: "ns", Name: "web-7d4b9c8f6-x2k9q",
		Labels: map[string]string{"pod-template-hash": "7d4b9c8f6", "app": "web", OptOutLabel: "true"},
		OwnerReferences: []metav1.OwnerReference{
			owned("Thing", "other", false),
			{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d4b9c8f6", UID: "u", Controller: ptrTo(true)},
		},
	}}
	obj, err := slimPod(full)
	if err != nil {
		t.Fatal(err)
	}
	slim := obj.(*corev1.Pod)
	if got, want := workloadOf(slim), workloadOf(full); got != want || want.Name != "web" {
		t.Errorf("slim pod's workload %+v, the pod's %+v, want web", got, want)
	}
	if len(slim.Labels) != 2 || slim.Labels["app"] != "" || slim.Labels[OptOutLabel] != "true" {
		t.Errorf("slim labels %v, want the opt-out label and pod-template-hash only", slim.Labels)
	}
	if len(slim.OwnerReferences) != 1 || slim.OwnerReferences[0].UID != "" {
		t.Errorf("slim owners %+v, want the controller's kind and name only", slim.OwnerReferences)
	}
}
