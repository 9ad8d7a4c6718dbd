package svcproxy

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// LoadBalancerClass is the spec.loadBalancerClass this proxy answers to, besides none.
// Services of any other class belong to another implementation and are left alone.
const LoadBalancerClass = "rauta.io/devcluster"

// AnnotationLoadBalancerIP requests a specific address from the pool, like the deprecated
// spec.loadBalancerIP (which is honoured too; the annotation wins).
const AnnotationLoadBalancerIP = "rauta.io/loadbalancer-ip"

// ownLoadBalancer reports whether svc is a LoadBalancer Service this proxy implements.
func ownLoadBalancer(svc *corev1.Service) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	return svc.Spec.LoadBalancerClass == nil || *svc.Spec.LoadBalancerClass == LoadBalancerClass
}

// requestedIP is the address svc asks for, if any.
func requestedIP(svc *corev1.Service) (netip.Addr, error) {
	v := svc.Annotations[AnnotationLoadBalancerIP]
	what := "annotation " + AnnotationLoadBalancerIP
	if v == "" {
		v, what = svc.Spec.LoadBalancerIP, "spec.loadBalancerIP"
	}
	if v == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%s %q is not an IPv4 address", what, v)
	}
	return a, nil
}

// statusIP is the first address svc's status shows, so a restarted proxy can keep it.
func statusIP(svc *corev1.Service) netip.Addr {
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			return a
		}
	}
	return netip.Addr{}
}

// frontend is an address the proxy listens on for a Service port: TCP or UDP.
type frontend struct {
	proto corev1.Protocol
	addr  netip.AddrPort
}

// String is the address, with "/udp" after it for UDP.
func (f frontend) String() string {
	if f.proto == corev1.ProtocolUDP {
		return f.addr.String() + "/udp"
	}
	return f.addr.String()
}

// frontendsOf lists the addresses to listen on for svc's TCP and UDP ports: each IPv4
// ClusterIP inside serviceCIDR, the load-balancer address lbIP when valid, and nodePortIP
// with each port's nodePort when both are set. Headless and ExternalName Services have
// none; SCTP ports are not served.
func frontendsOf(svc *corev1.Service, serviceCIDR netip.Prefix, lbIP, nodePortIP netip.Addr) map[frontend]corev1.ServicePort {
	out := map[frontend]corev1.ServicePort{}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return out
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	var cluster []netip.Addr
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() && serviceCIDR.Contains(a) {
			cluster = append(cluster, a)
		}
	}
	for _, port := range svc.Spec.Ports {
		proto := protocolOf(port)
		if (proto != corev1.ProtocolTCP && proto != corev1.ProtocolUDP) || port.Port <= 0 || port.Port > 65535 {
			continue
		}
		for _, a := range cluster {
			out[frontend{proto, netip.AddrPortFrom(a, uint16(port.Port))}] = port
		}
		if lbIP.IsValid() {
			out[frontend{proto, netip.AddrPortFrom(lbIP, uint16(port.Port))}] = port
		}
		if nodePortIP.IsValid() && port.NodePort > 0 && port.NodePort <= 65535 {
			out[frontend{proto, netip.AddrPortFrom(nodePortIP, uint16(port.NodePort))}] = port
		}
	}
	return out
}
