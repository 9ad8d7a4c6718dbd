package node

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// resolvConf is the /etc/resolv.conf the kubelet gives a pod: for dnsPolicy ClusterFirst
// (the default; a hostNetwork pod needs ClusterFirstWithHostNet) the cluster DNS with the
// search path <namespace>.svc.<domain> svc.<domain> <domain> and ndots:5; for None only
// the pod's dnsConfig; dnsConfig's nameservers, searches and options are added in every
// case. Empty: leave the image's file (dnsPolicy Default, or no cluster DNS configured).
func resolvConf(pod *corev1.Pod, clusterDNS, domain string) string {
	var servers, searches []string
	options := map[string]string{}
	var optOrder []string
	setOpt := func(name, value string) {
		if _, ok := options[name]; !ok {
			optOrder = append(optOrder, name)
		}
		options[name] = value
	}
	policy := pod.Spec.DNSPolicy
	cluster := clusterDNS != "" && (policy == corev1.DNSClusterFirstWithHostNet || ((policy == "" || policy == corev1.DNSClusterFirst) && !pod.Spec.HostNetwork))
	if cluster {
		servers = []string{clusterDNS}
		searches = []string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}
		setOpt("ndots", "5")
	}
	if !cluster && policy != corev1.DNSNone {
		return ""
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		servers = append(servers, dc.Nameservers...)
		searches = append(searches, dc.Searches...)
		for _, o := range dc.Options {
			v := ""
			if o.Value != nil {
				v = *o.Value
			}
			setOpt(o.Name, v)
		}
	}
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(searches, " "))
	}
	if len(optOrder) > 0 {
		opts := make([]string, 0, len(optOrder))
		for _, n := range optOrder {
			if v := options[n]; v != "" {
				n += ":" + v
			}
			opts = append(opts, n)
		}
		fmt.Fprintf(&b, "options %s\n", strings.Join(opts, " "))
	}
	return b.String()
}
