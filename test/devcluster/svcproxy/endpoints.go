package svcproxy

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// backendsFor lists the addresses a Service port forwards to: every ready IPv4 endpoint of
// the Service's EndpointSlices, with the port the slice publishes under the Service port's
// name and protocol (the resolved targetPort). Like kube-proxy, it falls back to endpoints
// that are terminating but still serving when none is ready, so a Deployment whose last
// pods are draining keeps answering. The result is sorted and has no duplicates.
func backendsFor(port corev1.ServicePort, slices_ []*discoveryv1.EndpointSlice) []netip.AddrPort {
	var ready, serving []netip.AddrPort
	for _, s := range slices_ {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		target, ok := slicePort(s, port)
		if !ok {
			continue
		}
		for _, ep := range s.Endpoints {
			c := ep.Conditions
			isReady := c.Ready == nil || *c.Ready // nil means unknown, read as ready (API docs)
			isServing := c.Serving != nil && *c.Serving && c.Terminating != nil && *c.Terminating
			if !isReady && !isServing {
				continue
			}
			for _, a := range ep.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil || !ip.Is4() {
					continue
				}
				ap := netip.AddrPortFrom(ip, target)
				if isReady {
					ready = append(ready, ap)
				} else {
					serving = append(serving, ap)
				}
			}
		}
	}
	out := ready
	if len(out) == 0 {
		out = serving
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return slices.Compact(out)
}

// slicePort finds the slice's port for a Service port: the same name (empty for a
// single unnamed port) and protocol.
func slicePort(s *discoveryv1.EndpointSlice, port corev1.ServicePort) (uint16, bool) {
	for _, p := range s.Ports {
		name, proto := "", corev1.ProtocolTCP
		if p.Name != nil {
			name = *p.Name
		}
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if name == port.Name && proto == protocolOf(port) && p.Port != nil && *p.Port > 0 && *p.Port <= 65535 {
			return uint16(*p.Port), true
		}
	}
	return 0, false
}

func protocolOf(port corev1.ServicePort) corev1.Protocol {
	if port.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return port.Protocol
}
