package devcluster

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/false-systems/rauta/test/devcluster/svcproxy"
)

// ClusterDomain is the cluster's DNS domain, as the kubelet's default.
const ClusterDomain = "cluster.local"

// clusterDNSIP is the cluster DNS address: the tenth of the Service range, as kubeadm and
// kind choose (10.96.0.10 for 10.96.0.0/24).
func clusterDNSIP(serviceCIDR string) (netip.Addr, error) {
	p, err := netip.ParsePrefix(serviceCIDR)
	if err != nil {
		return netip.Addr{}, err
	}
	a := p.Masked().Addr()
	for range 10 {
		a = a.Next()
	}
	if !p.Contains(a) {
		return netip.Addr{}, fmt.Errorf("service range %s has no tenth address for the cluster DNS", serviceCIDR)
	}
	return a, nil
}

// createDNSService creates kube-system/kube-dns with the DNS address as its ClusterIP, so
// the API server never gives that address to another Service and pods find the DNS as in
// other clusters. Its service-proxy-name label makes the service proxy (and rauta mesh)
// leave it alone: the service proxy answers DNS on it itself.
func (c *Cluster) createDNSService(ctx context.Context, ip netip.Addr) error {
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, %s: rauta-devcluster-dns}
spec:
  clusterIP: %s
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
`, svcproxy.LabelServiceProxyName, ip)
	if err := c.Apply(ctx, []byte(manifest)); err != nil {
		return fmt.Errorf("cluster DNS Service: %w", err)
	}
	return nil
}
