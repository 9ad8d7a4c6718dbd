package mesh

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// labelServiceProxyName marks a Service served by another proxy;
// kube-proxy leaves such Services alone, and so does the mesh.
const labelServiceProxyName = "service.kubernetes.io/service-proxy-name"

// Input is what FromKube reads: the objects of every namespace, and this
// node's name for Services whose internalTrafficPolicy is Local.
type Input struct {
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	NodeName       string
}

// FromKube turns Services and EndpointSlices into map contents. It is pure:
// the same input gives the same State, and nothing in the input is changed.
//
// Every ClusterIP of a Service (one per IP family) and every TCP or UDP
// port makes a frontend. Its backends are the ready endpoints of the
// Service's EndpointSlices of the same address family, at the port the
// slice gives for the Service port's name. Headless and ExternalName
// Services have no ClusterIP and no frontend, and Services labelled
// service.kubernetes.io/service-proxy-name belong to another proxy. With
// internalTrafficPolicy Local only endpoints on NodeName count (none when
// NodeName is empty), as kube-proxy does.
func FromKube(in Input) State {
	type nsName struct{ ns, name string }
	byService := make(map[nsName][]*discoveryv1.EndpointSlice)
	for _, es := range in.EndpointSlices {
		name := es.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		k := nsName{es.Namespace, name}
		byService[k] = append(byService[k], es)
	}

	st := make(State)
	for _, svc := range in.Services {
		if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Labels[labelServiceProxyName] != "" {
			continue
		}
		local := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
		esl := byService[nsName{svc.Namespace, svc.Name}]
		for _, ip := range clusterIPs(svc) {
			family := discoveryv1.AddressTypeIPv4
			if ip.Is6() {
				family = discoveryv1.AddressTypeIPv6
			}
			for _, sp := range svc.Spec.Ports {
				proto, ok := protoOf(sp.Protocol)
				if !ok {
					continue
				}
				f := Frontend{Addr: ip, Port: uint16(sp.Port), Proto: proto}
				st[f] = Entry{
					Service:  svc.Namespace + "/" + svc.Name,
					Backends: backends(esl, family, sp.Name, sp.Protocol, local, in.NodeName),
				}
			}
		}
	}
	return st
}

// clusterIPs are the Service's valid ClusterIPs (spec.clusterIPs, else
// spec.clusterIP), unmapped; "None" and unparsable values are skipped.
func clusterIPs(svc *corev1.Service) []netip.Addr {
	raw := svc.Spec.ClusterIPs
	if len(raw) == 0 && svc.Spec.ClusterIP != "" {
		raw = []string{svc.Spec.ClusterIP}
	}
	var out []netip.Addr
	for _, s := range raw {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			continue
		}
		a = a.Unmap()
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func protoOf(p corev1.Protocol) (Proto, bool) {
	switch p {
	case corev1.ProtocolTCP, "":
		return TCP, true
	case corev1.ProtocolUDP:
		return UDP, true
	}
	return 0, false
}

// backends collects the ready endpoints of one Service port over the
// slices of one address family, sorted and without duplicates (an
// endpoint may sit in two slices while the controller moves it).
func backends(esl []*discoveryv1.EndpointSlice, family discoveryv1.AddressType, portName string, proto corev1.Protocol, local bool, node string) []netip.AddrPort {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	var out []netip.AddrPort
	for _, es := range esl {
		if es.AddressType != family {
			continue
		}
		port, ok := slicePort(es, portName, proto)
		if !ok {
			continue
		}
		for _, ep := range es.Endpoints {
			// A nil ready condition means unknown, which the API asks
			// consumers to treat as ready.
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if local && (node == "" || ep.NodeName == nil || *ep.NodeName != node) {
				continue
			}
			if len(ep.Addresses) == 0 {
				continue
			}
			// Addresses are fungible; kube-proxy uses the first.
			a, err := netip.ParseAddr(ep.Addresses[0])
			if err != nil || a.Zone() != "" {
				continue
			}
			a = a.Unmap()
			if a.Is4() != (family == discoveryv1.AddressTypeIPv4) {
				continue
			}
			out = append(out, netip.AddrPortFrom(a, port))
		}
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return slices.Compact(out)
}

// slicePort is the port a slice gives for the Service port named name
// (the empty name of a single unnamed port matches an unnamed slice port).
func slicePort(es *discoveryv1.EndpointSlice, name string, proto corev1.Protocol) (uint16, bool) {
	for _, p := range es.Ports {
		pn := ""
		if p.Name != nil {
			pn = *p.Name
		}
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pn == name && pp == proto && p.Port != nil && *p.Port > 0 && *p.Port < 65536 {
			return uint16(*p.Port), true
		}
	}
	return 0, false
}
