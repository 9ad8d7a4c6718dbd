// Package node is the node agent of the local cluster: it registers a Node, binds
// unscheduled pods to it, and runs each pod's containers as local processes in a network
// namespace of their own, attached by a veth pair to a bridge on the pod CIDR. Images map
// to local binaries; the agent sets pod IPs, container statuses and readiness, serves
// container logs to the API server, and removes every process, namespace and link it made.
package node

import (
	"fmt"
	"net/netip"
	"time"

	"k8s.io/client-go/rest"
)

// Config configures an Agent. Zero fields take the defaults of WithDefaults.
type Config struct {
	// Name of the Node object, default "rauta-devcluster-node".
	Name string
	// PodCIDR is the IPv4 range pods get addresses from, default 10.244.0.0/24. The bridge
	// takes the first host address; the rest go to pods. Start refuses a range that
	// overlaps an existing route.
	PodCIDR string
	// Bridge is the name of the bridge the agent creates, default "rauta0". It also prefixes
	// the names of the network namespaces, so two agents need two bridge names.
	Bridge string
	// StateDir holds container logs; required.
	StateDir string
	// Images maps image references to local binaries or OCI image layouts.
	Images []ImageMapping
	// ServiceCIDR is the cluster's Service ClusterIP range. When set, every pod gets a
	// route to it through the bridge, where the cluster's service proxy answers.
	ServiceCIDR string
	// ClusterDNS is the cluster DNS address pods with dnsPolicy ClusterFirst get in their
	// /etc/resolv.conf (image containers; binary ones share the host's files), and
	// ClusterDomain its domain ("cluster.local" when ClusterDNS is set). Empty: no
	// resolv.conf is written.
	ClusterDNS, ClusterDomain string
	// NodeClient authenticates as system:node:<Name> (group system:nodes).
	NodeClient *rest.Config
	// BinderClient may create pods/binding (the agent binds pods as a scheduler would).
	BinderClient *rest.Config
	// ServingCertPEM and ServingKeyPEM are the certificate of the log endpoint, valid for
	// 127.0.0.1; ClientCAPEM verifies the API server's client certificate.
	ServingCertPEM, ServingKeyPEM, ClientCAPEM []byte
	// HeartbeatInterval is how often the node Lease is renewed, default 10s.
	HeartbeatInterval time.Duration
	// CgroupRoot is the cgroup v2 mount under which the agent makes its parent cgroup
	// (rauta-devcluster-<Bridge>) and one cgroup per pod; default: the host's cgroup2
	// mount from /proc/self/mountinfo (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a
	// hybrid host).
	CgroupRoot string
	// MaxExecs bounds the exec sessions running at once (more are refused with 429),
	// default 64.
	MaxExecs int
	// ExecIdleTimeout closes an exec session without traffic for this long, default 1h.
	ExecIdleTimeout time.Duration
	// ExecStreamCreationTimeout bounds how long an exec waits for the client to open
	// its streams after the upgrade, default 30s (the kubelet's).
	ExecStreamCreationTimeout time.Duration
	// CgroupKillWait bounds how long removing a pod waits for its killed cgroup to
	// empty, default 5s.
	CgroupKillWait time.Duration
}

// ImageMapping runs Binary, or the image in the OCI image layout folder Layout, for every
// image whose repository (the reference without tag or digest) equals Repository.
// Exactly one of Binary and Layout is set.
type ImageMapping struct {
	Repository string
	Binary     string
	Layout     string
}

// EchoBasicImages maps the conformance echo server images to a local echo-basic binary.
func EchoBasicImages(binary string) []ImageMapping {
	return []ImageMapping{
		{Repository: "registry.k8s.io/gateway-api/echo-basic", Binary: binary},
		{Repository: "gcr.io/k8s-staging-gateway-api/echo-basic", Binary: binary},
	}
}

// EchoAdvancedImages maps the mesh conformance image (Istio's echo app) to the OCI layout
// devcluster.BuildEchoAdvancedImage writes (package echoadvanced, a compatible stand-in).
func EchoAdvancedImages(layout string) []ImageMapping {
	return []ImageMapping{
		{Repository: "registry.k8s.io/gateway-api/echo-advanced", Layout: layout},
		{Repository: "gcr.io/k8s-staging-gateway-api/echo-advanced", Layout: layout},
	}
}

// CoreDNSImages maps the CoreDNS image (which the conformance suite runs behind its
// UDPRoutes, with "-conf /root/Corefile") to rauta-echo, whose -conf mode answers DNS as
// CoreDNS's whoami plugin does (internal/echo).
func CoreDNSImages(rautaEcho string) []ImageMapping {
	return []ImageMapping{{Repository: "registry.k8s.io/coredns/coredns", Binary: rautaEcho}}
}

// WithDefaults returns c with empty fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Name == "" {
		c.Name = "rauta-devcluster-node"
	}
	if c.PodCIDR == "" {
		c.PodCIDR = "10.244.0.0/24"
	}
	if c.Bridge == "" {
		c.Bridge = "rauta0"
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.ClusterDNS != "" && c.ClusterDomain == "" {
		c.ClusterDomain = "cluster.local"
	}
	if c.MaxExecs <= 0 {
		c.MaxExecs = 64
	}
	if c.ExecIdleTimeout <= 0 {
		c.ExecIdleTimeout = time.Hour
	}
	if c.ExecStreamCreationTimeout <= 0 {
		c.ExecStreamCreationTimeout = 30 * time.Second
	}
	if c.CgroupKillWait <= 0 {
		c.CgroupKillWait = 5 * time.Second
	}
	return c
}

// validate checks a defaulted Config.
func (c Config) validate() (netip.Prefix, error) {
	prefix, err := netip.ParsePrefix(c.PodCIDR)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("node config: PodCIDR %q: %w", c.PodCIDR, err)
	}
	if !prefix.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("node config: PodCIDR %q: only IPv4 is supported", c.PodCIDR)
	}
	if prefix != prefix.Masked() {
		return netip.Prefix{}, fmt.Errorf("node config: PodCIDR %q: host bits set (use %s)", c.PodCIDR, prefix.Masked())
	}
	if prefix.Bits() > 29 || prefix.Bits() < 16 {
		return netip.Prefix{}, fmt.Errorf("node config: PodCIDR %q: prefix length must be between 16 and 29", c.PodCIDR)
	}
	// Interface names are at most 15 bytes; namespaces are named "<bridge>-<8 hex>".
	if len(c.Bridge) == 0 || len(c.Bridge) > 6 {
		return netip.Prefix{}, fmt.Errorf("node config: Bridge %q: must be 1 to 6 characters", c.Bridge)
	}
	for _, r := range c.Bridge {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return netip.Prefix{}, fmt.Errorf("node config: Bridge %q: only lowercase letters and digits", c.Bridge)
		}
	}
	if c.StateDir == "" {
		return netip.Prefix{}, fmt.Errorf("node config: StateDir is empty")
	}
	if c.NodeClient == nil || c.BinderClient == nil {
		return netip.Prefix{}, fmt.Errorf("node config: NodeClient and BinderClient are required")
	}
	if len(c.ServingCertPEM) == 0 || len(c.ServingKeyPEM) == 0 || len(c.ClientCAPEM) == 0 {
		return netip.Prefix{}, fmt.Errorf("node config: ServingCertPEM, ServingKeyPEM and ClientCAPEM are required")
	}
	for i, m := range c.Images {
		if m.Repository == "" || (m.Binary == "") == (m.Layout == "") {
			return netip.Prefix{}, fmt.Errorf("node config: Images[%d]: Repository and exactly one of Binary and Layout are required", i)
		}
	}
	return prefix, nil
}
