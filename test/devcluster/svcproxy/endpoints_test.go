package svcproxy

import (
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func ptr[T any](v T) *T { return &v }

func endpoint(ip string, ready, serving, terminating bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating}}
}

func slice(ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4, Ports: ports, Endpoints: eps}
}

func TestBackendsFor(t *testing.T) {
	http := corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("web")}
	unnamed := corev1.ServicePort{Port: 8080, TargetPort: intstr.FromInt32(3000)}
	httpPorts := []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(3000))}, {Name: ptr("metrics"), Port: ptr(int32(9090))}}
	tests := []struct {
		name   string
		port   corev1.ServicePort
		slices []*discoveryv1.EndpointSlice
		want   []string
	}{
		{
			name: "ready endpoints with the port resolved by name",
			port: http,
			slices: []*discoveryv1.EndpointSlice{slice(httpPorts,
				endpoint("10.244.0.3", true, true, false), endpoint("10.244.0.2", true, true, false), endpoint("10.244.0.4", false, false, false))},
			want: []string{"10.244.0.2:3000", "10.244.0.3:3000"},
		},
		{
			name:   "unnamed single port",
			port:   unnamed,
			slices: []*discoveryv1.EndpointSlice{slice([]discoveryv1.EndpointPort{{Port: ptr(int32(3000))}}, endpoint("10.244.0.2", true, true, false))},
			want:   []string{"10.244.0.2:3000"},
		},
		{
			name: "ports may differ per slice (during a rollout changing the container port)",
			port: http,
			slices: []*discoveryv1.EndpointSlice{
				slice(httpPorts, endpoint("10.244.0.2", true, true, false)),
				slice([]discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(4000))}}, endpoint("10.244.0.9", true, true, false)),
			},
			want: []string{"10.244.0.2:3000", "10.244.0.9:4000"},
		},
		{
			name:   "a slice without the port contributes nothing",
			port:   http,
			slices: []*discoveryv1.EndpointSlice{slice([]discoveryv1.EndpointPort{{Name: ptr("metrics"), Port: ptr(int32(9090))}}, endpoint("10.244.0.2", true, true, false))},
		},
		{
			name:   "protocol must match",
			port:   corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolUDP},
			slices: []*discoveryv1.EndpointSlice{slice(httpPorts, endpoint("10.244.0.2", true, true, false))},
		},
		{
			name: "terminating but serving endpoints only when none is ready",
			port: http,
			slices: []*discoveryv1.EndpointSlice{slice(httpPorts,
				endpoint("10.244.0.5", false, true, true), endpoint("10.244.0.6", false, false, true))},
			want: []string{"10.244.0.5:3000"},
		},
		{
			name: "ready endpoints win over terminating ones",
			port: http,
			slices: []*discoveryv1.EndpointSlice{slice(httpPorts,
				endpoint("10.244.0.5", false, true, true), endpoint("10.244.0.2", true, true, false))},
			want: []string{"10.244.0.2:3000"},
		},
		{
			name: "unknown readiness counts as ready; duplicates across slices collapse",
			port: http,
			slices: []*discoveryv1.EndpointSlice{
				slice(httpPorts, discoveryv1.Endpoint{Addresses: []string{"10.244.0.7"}}),
				slice(httpPorts, endpoint("10.244.0.7", true, true, false)),
			},
			want: []string{"10.244.0.7:3000"},
		},
		{
			name: "IPv6 slices and bad addresses are skipped",
			port: http,
			slices: []*discoveryv1.EndpointSlice{
				{AddressType: discoveryv1.AddressTypeIPv6, Ports: httpPorts, Endpoints: []discoveryv1.Endpoint{endpoint("fd00::1", true, true, false)}},
				slice(httpPorts, endpoint("not-an-ip", true, true, false)),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, a := range backendsFor(tt.port, tt.slices) {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	set := &backendSet{addrs: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:1"), netip.MustParseAddrPort("10.0.0.3:1")}}
	var firsts []string
	for range 6 {
		firsts = append(firsts, set.at(set.start(), 0).Addr().String())
	}
	want := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.1", "10.0.0.2", "10.0.0.3"}
	if !slices.Equal(firsts, want) {
		t.Errorf("first picks %v, want %v", firsts, want)
	}
	// Retries after a failed dial continue with the following endpoints.
	start := set.start() // the 7th connection starts at 10.0.0.1
	if got := []string{set.at(start, 0).Addr().String(), set.at(start, 1).Addr().String(), set.at(start, 2).Addr().String()}; !slices.Equal(got, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
		t.Errorf("retry order %v", got)
	}
}
