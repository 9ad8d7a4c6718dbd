package mesh

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr[T any](v T) *T { return &v }

func service(ns, name string, ips []string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{ClusterIPs: ips, ClusterIP: first(ips), Ports: ports},
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

type ep struct {
	addr  string
	ready *bool
	node  string
}

func slice(ns, svc, name string, family discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...ep) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: family,
		Ports:       ports,
	}
	for _, e := range eps {
		x := discoveryv1.Endpoint{Addresses: []string{e.addr}, Conditions: discoveryv1.EndpointConditions{Ready: e.ready}}
		if e.node != "" {
			x.NodeName = ptr(e.node)
		}
		es.Endpoints = append(es.Endpoints, x)
	}
	return es
}

func port(name string, p int32, proto corev1.Protocol) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr(name), Port: ptr(p), Protocol: ptr(proto)}
}

func aps(s ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, x := range s {
		out = append(out, netip.MustParseAddrPort(x))
	}
	return out
}

func TestFromKube(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	webPorts := []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}
	for _, tc := range []struct {
		name string
		in   Input
		want State
	}{{
		name: "ready endpoints of every slice, by port name, sorted and deduplicated",
		in: Input{
			Services: []*corev1.Service{service("default", "web", []string{"10.96.0.10"}, webPorts...)},
			EndpointSlices: []*discoveryv1.EndpointSlice{
				slice("default", "web", "web-a", discoveryv1.AddressTypeIPv4,
					[]discoveryv1.EndpointPort{port("http", 8080, corev1.ProtocolTCP), port("dns", 5353, corev1.ProtocolUDP)},
					ep{addr: "10.0.0.2", ready: yes}, ep{addr: "10.0.0.1"}, ep{addr: "10.0.0.3", ready: no}),
				// The same endpoint in a second slice while it moves.
				slice("default", "web", "web-b", discoveryv1.AddressTypeIPv4,
					[]discoveryv1.EndpointPort{port("http", 8080, corev1.ProtocolTCP), port("dns", 5353, corev1.ProtocolUDP)},
					ep{addr: "10.0.0.2", ready: yes}),
				// Another service's slice and another namespace's.
				slice("default", "other", "other-a", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 1, corev1.ProtocolTCP)}, ep{addr: "10.9.9.9"}),
				slice("prod", "web", "web-a", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 1, corev1.ProtocolTCP)}, ep{addr: "10.9.9.8"}),
			},
		},
		want: State{
			{Addr: netip.MustParseAddr("10.96.0.10"), Port: 80, Proto: TCP}: {Service: "default/web", Backends: aps("10.0.0.1:8080", "10.0.0.2:8080")},
			{Addr: netip.MustParseAddr("10.96.0.10"), Port: 53, Proto: UDP}: {Service: "default/web", Backends: aps("10.0.0.1:5353", "10.0.0.2:5353")},
		},
	}, {
		name: "dual stack: each ClusterIP gets the slices of its family",
		in: Input{
			Services: []*corev1.Service{service("default", "ds", []string{"10.96.0.11", "fd00:96::11"}, corev1.ServicePort{Port: 80})},
			EndpointSlices: []*discoveryv1.EndpointSlice{
				slice("default", "ds", "v4", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("", 8080, corev1.ProtocolTCP)}, ep{addr: "10.0.0.1"}),
				slice("default", "ds", "v6", discoveryv1.AddressTypeIPv6, []discoveryv1.EndpointPort{port("", 8080, corev1.ProtocolTCP)}, ep{addr: "fd00::1"}),
				slice("default", "ds", "fqdn", discoveryv1.AddressTypeFQDN, []discoveryv1.EndpointPort{port("", 8080, corev1.ProtocolTCP)}, ep{addr: "example.com"}),
			},
		},
		want: State{
			{Addr: netip.MustParseAddr("10.96.0.11"), Port: 80, Proto: TCP}:  {Service: "default/ds", Backends: aps("10.0.0.1:8080")},
			{Addr: netip.MustParseAddr("fd00:96::11"), Port: 80, Proto: TCP}: {Service: "default/ds", Backends: aps("[fd00::1]:8080")},
		},
	}, {
		name: "no ready endpoint, or no slice: the frontend exists and refuses",
		in: Input{
			Services: []*corev1.Service{
				service("default", "down", []string{"10.96.0.12"}, corev1.ServicePort{Port: 80}),
				service("default", "noslice", []string{"10.96.0.13"}, corev1.ServicePort{Port: 80}),
			},
			EndpointSlices: []*discoveryv1.EndpointSlice{
				slice("default", "down", "down-a", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("", 80, corev1.ProtocolTCP)}, ep{addr: "10.0.0.1", ready: no}),
			},
		},
		want: State{
			{Addr: netip.MustParseAddr("10.96.0.12"), Port: 80, Proto: TCP}: {Service: "default/down"},
			{Addr: netip.MustParseAddr("10.96.0.13"), Port: 80, Proto: TCP}: {Service: "default/noslice"},
		},
	}, {
		name: "headless, ExternalName, SCTP and another proxy's Services make no frontend",
		in: Input{
			Services: []*corev1.Service{
				func() *corev1.Service {
					s := service("default", "other-proxy", []string{"10.96.0.17"}, corev1.ServicePort{Port: 80})
					s.Labels = map[string]string{"service.kubernetes.io/service-proxy-name": "other"}
					return s
				}(),
				service("default", "headless", []string{"None"}, corev1.ServicePort{Port: 80}),
				{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}},
				service("default", "sctp", []string{"10.96.0.14"}, corev1.ServicePort{Port: 80, Protocol: corev1.ProtocolSCTP}),
			},
		},
		want: State{},
	}, {
		name: "internalTrafficPolicy Local keeps this node's endpoints",
		in: Input{
			NodeName: "node-a",
			Services: []*corev1.Service{func() *corev1.Service {
				s := service("default", "local", []string{"10.96.0.15"}, corev1.ServicePort{Port: 80})
				s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
				return s
			}()},
			EndpointSlices: []*discoveryv1.EndpointSlice{
				slice("default", "local", "l", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("", 80, corev1.ProtocolTCP)},
					ep{addr: "10.0.0.1", node: "node-a"}, ep{addr: "10.0.0.2", node: "node-b"}, ep{addr: "10.0.0.3"}),
			},
		},
		want: State{
			{Addr: netip.MustParseAddr("10.96.0.15"), Port: 80, Proto: TCP}: {Service: "default/local", Backends: aps("10.0.0.1:80")},
		},
	}, {
		name: "a slice port of another protocol or name does not count",
		in: Input{
			Services: []*corev1.Service{service("default", "p", []string{"10.96.0.16"}, corev1.ServicePort{Name: "a", Port: 80})},
			EndpointSlices: []*discoveryv1.EndpointSlice{
				slice("default", "p", "x", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("a", 81, corev1.ProtocolUDP), port("b", 82, corev1.ProtocolTCP)}, ep{addr: "10.0.0.1"}),
			},
		},
		want: State{
			{Addr: netip.MustParseAddr("10.96.0.16"), Port: 80, Proto: TCP}: {Service: "default/p"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := FromKube(tc.in)
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("FromKube (-want +got):\n%s", diff)
			}
		})
	}
}
