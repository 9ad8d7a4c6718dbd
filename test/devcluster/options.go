package devcluster

import (
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
	// ServiceCIDR is the Service ClusterIP range, default 10.96.0.0/24. ClusterIPs are only
	// allocated, never routed: there is no kube-proxy.
	ServiceCIDR string
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
	defaultServiceCIDR  = "10.96.0.0/24"
	defaultStartTimeout = 2 * time.Minute
	clusterName         = "rauta-devcluster"
)

func (o Options) withDefaults() Options {
	if o.ServiceCIDR == "" {
		o.ServiceCIDR = defaultServiceCIDR
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = defaultStartTimeout
	}
	return o
}
