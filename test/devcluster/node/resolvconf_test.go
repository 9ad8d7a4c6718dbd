package node

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestResolvConf(t *testing.T) {
	two := "2"
	cases := []struct {
		name string
		spec corev1.PodSpec
		dns  string
		want string
	}{
		{"default policy is ClusterFirst", corev1.PodSpec{}, "10.96.0.10",
			"nameserver 10.96.0.10\nsearch ns1.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"},
		{"no cluster DNS configured", corev1.PodSpec{}, "", ""},
		{"Default leaves the image's file", corev1.PodSpec{DNSPolicy: corev1.DNSDefault}, "10.96.0.10", ""},
		{"hostNetwork with ClusterFirst falls back to Default", corev1.PodSpec{HostNetwork: true}, "10.96.0.10", ""},
		{"ClusterFirstWithHostNet", corev1.PodSpec{HostNetwork: true, DNSPolicy: corev1.DNSClusterFirstWithHostNet}, "10.96.0.10",
			"nameserver 10.96.0.10\nsearch ns1.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"},
		{"dnsConfig adds and overrides options", corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.53"}, Searches: []string{"example.test"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "edns0"}}}}, "10.96.0.10",
			"nameserver 10.96.0.10\nnameserver 10.0.0.53\nsearch ns1.svc.cluster.local svc.cluster.local cluster.local example.test\noptions ndots:2 edns0\n"},
		{"None takes dnsConfig only", corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.53"}}}, "10.96.0.10",
			"nameserver 10.0.0.53\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "p"}, Spec: tc.spec}
			if got := resolvConf(pod, tc.dns, "cluster.local"); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
