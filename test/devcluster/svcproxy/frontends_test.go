package svcproxy

import (
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFrontendsOf(t *testing.T) {
	cidr := netip.MustParsePrefix("10.96.211.0/24")
	lb := netip.MustParseAddr("127.0.211.1")
	np := netip.MustParseAddr("127.0.0.1")
	svc := func(typ corev1.ServiceType, ips ...string) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{
			Type: typ, ClusterIP: ips[0], ClusterIPs: ips,
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, NodePort: 30080},
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, NodePort: 30053},
			},
		}}
	}
	tests := []struct {
		name string
		svc  *corev1.Service
		lb   netip.Addr
		np   netip.Addr
		want []string
	}{
		{name: "cluster ip, tcp and udp ports", svc: svc(corev1.ServiceTypeClusterIP, "10.96.211.10"), want: []string{"10.96.211.10:53/udp", "10.96.211.10:80"}},
		{name: "load balancer and node port", svc: svc(corev1.ServiceTypeLoadBalancer, "10.96.211.10"), lb: lb, np: np,
			want: []string{"10.96.211.10:53/udp", "10.96.211.10:80", "127.0.0.1:30053/udp", "127.0.0.1:30080", "127.0.211.1:53/udp", "127.0.211.1:80"}},
		{name: "headless", svc: svc(corev1.ServiceTypeClusterIP, "None")},
		{name: "cluster ip outside the range is ignored", svc: svc(corev1.ServiceTypeClusterIP, "10.97.0.1")},
		{name: "external name", svc: svc(corev1.ServiceTypeExternalName, "10.96.211.10")},
		{name: "dual stack keeps IPv4", svc: svc(corev1.ServiceTypeClusterIP, "fd00::10", "10.96.211.10"), want: []string{"10.96.211.10:53/udp", "10.96.211.10:80"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for a := range frontendsOf(tt.svc, cidr, tt.lb, tt.np) {
				got = append(got, a.String())
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOwnLoadBalancerAndRequests(t *testing.T) {
	lb := func(class *string, ann, spec string) *corev1.Service {
		s := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: class, LoadBalancerIP: spec}}
		if ann != "" {
			s.Annotations = map[string]string{AnnotationLoadBalancerIP: ann}
		}
		return s
	}
	if !ownLoadBalancer(lb(nil, "", "")) || !ownLoadBalancer(lb(ptr(LoadBalancerClass), "", "")) {
		t.Error("LoadBalancer without class or with ours not claimed")
	}
	if ownLoadBalancer(lb(ptr("example.com/other"), "", "")) {
		t.Error("another class claimed")
	}
	if ownLoadBalancer(&corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort}}) {
		t.Error("NodePort claimed")
	}
	if a, err := requestedIP(lb(nil, "127.0.211.7", "127.0.211.8")); err != nil || a != netip.MustParseAddr("127.0.211.7") {
		t.Errorf("annotation should win: %v %v", a, err)
	}
	if a, err := requestedIP(lb(nil, "", "127.0.211.8")); err != nil || a != netip.MustParseAddr("127.0.211.8") {
		t.Errorf("spec.loadBalancerIP: %v %v", a, err)
	}
	if _, err := requestedIP(lb(nil, "nope", "")); err == nil {
		t.Error("bad annotation accepted")
	}
	st := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{Hostname: "h"}, {IP: "127.0.211.3"}}}}}
	if a := statusIP(st); a != netip.MustParseAddr("127.0.211.3") {
		t.Errorf("status ip %v", a)
	}
}
