package devcluster

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/false-systems/rauta/test/devcluster/node"
)

// Options configure a cluster. The zero value starts etcd, kube-apiserver and
// kube-controller-manager without a node, building missing binaries first.
type Options struct {
	// Dir holds certificates, kubeconfigs, etcd data and component logs. Empty: a new
	// temporary folder, removed by Stop.
	Dir string
	// KeepDir leaves Dir in place after Stop (logs for debugging).
	KeepDir bool
	// RepoRoot is the rauta checkout, for hack/devcluster-build.sh and for finding the
	// Gateway API module. Empty: found by walking up from the working folder.
	RepoRoot string
	// Binaries overrides the cached binaries (all fields must be set).
	Binaries *Binaries
	// NoBuild fails with ErrBinariesMissing instead of building missing binaries.
	NoBuild bool
	// ServiceCIDR is the Service ClusterIP range (IPv4). Default 10.96.N.0/24, where N is the
	// third byte of the node's pod CIDR (10.96.0.0/24 for the default 10.244.0.0/24), so
	// clusters on different pod CIDRs can run side by side. With a node, the service proxy
	// (package svcproxy) makes every ClusterIP:port answer on the host and in pods.
	ServiceCIDR string
	// LoadBalancerCIDR is the pool LoadBalancer Services get addresses from (with a node
	// only). Default 127.0.N.0/24 with N as above, or 127.0.200.0/24 for the default pod
	// CIDR: inside 127.0.0.0/8, so always local and never routed off the machine. Two
	// clusters running at once need different pools (Start refuses a pool in use).
	LoadBalancerCIDR string
	// SkipGatewayAPI does not install the Gateway API CRDs.
	SkipGatewayAPI bool
	// Node, when set, runs a node agent in this process (requires root). Client identities,
	// certificates are filled in by Start, and the echo-basic images are mapped after any
	// mappings in Node.Images.
	Node *node.Config
	// StartTimeout bounds each wait for a component to become healthy, default 2 minutes.
	StartTimeout time.Duration
}

const (
	defaultLBCIDR       = "127.0.200.0/24"
	defaultStartTimeout = 2 * time.Minute
	clusterName         = "rauta-devcluster"
)

func (o Options) withDefaults() Options {
	// The third byte of the pod CIDR tells clusters apart: tests already give each cluster
	// its own pod CIDR (the node agent refuses overlapping ones).
	var n byte
	if o.Node != nil {
		if p, err := netip.ParsePrefix(o.Node.WithDefaults().PodCIDR); err == nil && p.Addr().Is4() {
			n = p.Addr().As4()[2]
		}
	}
	if o.ServiceCIDR == "" {
		o.ServiceCIDR = fmt.Sprintf("10.96.%d.0/24", n)
	}
	if o.LoadBalancerCIDR == "" {
		o.LoadBalancerCIDR = defaultLBCIDR
		if n != 0 {
			o.LoadBalancerCIDR = fmt.Sprintf("127.0.%d.0/24", n)
		}
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = defaultStartTimeout
	}
	return o
}

// validate checks a defaulted Options: IPv4 ranges that do not overlap each other.
func (o Options) validate() error {
	svc, err := netip.ParsePrefix(o.ServiceCIDR)
	if err != nil || !svc.Addr().Is4() {
		return fmt.Errorf("options: ServiceCIDR %q: want an IPv4 prefix", o.ServiceCIDR)
	}
	lb, err := netip.ParsePrefix(o.LoadBalancerCIDR)
	if err != nil || !lb.Addr().Is4() {
		return fmt.Errorf("options: LoadBalancerCIDR %q: want an IPv4 prefix", o.LoadBalancerCIDR)
	}
	if svc.Overlaps(lb) {
		return fmt.Errorf("options: LoadBalancerCIDR %s overlaps ServiceCIDR %s", lb, svc)
	}
	if o.Node != nil {
		if pods, err := netip.ParsePrefix(o.Node.WithDefaults().PodCIDR); err == nil {
			for name, p := range map[string]netip.Prefix{"ServiceCIDR": svc, "LoadBalancerCIDR": lb} {
				if p.Overlaps(pods) {
					return fmt.Errorf("options: %s %s overlaps the pod CIDR %s", name, p, pods)
				}
			}
		}
	}
	return nil
}
