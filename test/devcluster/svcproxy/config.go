package svcproxy

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"k8s.io/client-go/rest"
)

// Config configures a Proxy.
type Config struct {
	// Client reads Services and EndpointSlices, writes Services' status and creates Events.
	Client *rest.Config
	// ServiceCIDR is the cluster's ClusterIP range (IPv4); required. Start makes the whole
	// range local to the host (a route in the local table) so listeners can bind any
	// ClusterIP, and removes that route on Stop.
	ServiceCIDR netip.Prefix
	// LoadBalancerCIDR is the pool of LoadBalancer addresses. Invalid (zero): LoadBalancer
	// Services get no address. A pool inside 127.0.0.0/8 is local already and never
	// routed off the machine; any other pool gets a local route like ServiceCIDR.
	LoadBalancerCIDR netip.Prefix
	// NodePortAddr, when valid, also serves each Service port's nodePort on this address
	// (for example 127.0.0.1).
	NodePortAddr netip.Addr
	// APIServer, when valid, is the backend of the default/kubernetes Service while it has
	// no EndpointSlice (the local cluster runs kube-apiserver without its endpoint
	// reconciler, because EndpointSlices refuse loopback addresses).
	APIServer netip.AddrPort
	// MaxConnsPerListener bounds concurrent connections per listening address; further
	// connections are reset at once. Default 4096.
	MaxConnsPerListener int
	// DialTimeout bounds each dial of an endpoint, default 5s.
	DialTimeout time.Duration
	// DialAttempts is how many endpoints a connection tries when dials are refused;
	// default 1, as kube-proxy, which never retries: a client that reaches a pod that
	// stopped listening sees the failure, so rollout tests measure what a real cluster
	// would show, not what a forgiving proxy hides.
	DialAttempts int
	// UDPIdleTimeout ends a UDP flow (one client address) after no datagram either way for
	// this long; default 60s.
	UDPIdleTimeout time.Duration
	// MaxUDPFlowsPerListener bounds the flows of one UDP frontend; a datagram that would
	// start one more is dropped. Default 4096.
	MaxUDPFlowsPerListener int
	// DNS, when valid, is the cluster DNS address (inside ServiceCIDR, by convention its
	// tenth address): the proxy answers Service names on DNS:53, UDP and TCP (dns.go).
	DNS netip.Addr
	// ClusterDomain is the DNS domain of the cluster, default "cluster.local".
	ClusterDomain string
	// Log receives errors of the background sync (nil: discarded).
	Log *slog.Logger
}

const (
	defaultMaxConns    = 4096
	defaultDialTimeout = 5 * time.Second
)

func (c Config) withDefaults() Config {
	if c.MaxConnsPerListener <= 0 {
		c.MaxConnsPerListener = defaultMaxConns
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = defaultDialTimeout
	}
	if c.UDPIdleTimeout <= 0 {
		c.UDPIdleTimeout = 60 * time.Second
	}
	if c.MaxUDPFlowsPerListener <= 0 {
		c.MaxUDPFlowsPerListener = defaultMaxConns
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = "cluster.local"
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	if c.Client == nil {
		return fmt.Errorf("svcproxy config: Client is required")
	}
	if !c.ServiceCIDR.IsValid() || !c.ServiceCIDR.Addr().Is4() {
		return fmt.Errorf("svcproxy config: ServiceCIDR %q: an IPv4 prefix is required", c.ServiceCIDR)
	}
	if c.LoadBalancerCIDR.IsValid() {
		if !c.LoadBalancerCIDR.Addr().Is4() {
			return fmt.Errorf("svcproxy config: LoadBalancerCIDR %s: only IPv4 is supported", c.LoadBalancerCIDR)
		}
		if c.LoadBalancerCIDR.Overlaps(c.ServiceCIDR) {
			return fmt.Errorf("svcproxy config: LoadBalancerCIDR %s overlaps ServiceCIDR %s", c.LoadBalancerCIDR, c.ServiceCIDR)
		}
	}
	if c.DNS.IsValid() && !c.ServiceCIDR.Contains(c.DNS) {
		return fmt.Errorf("svcproxy config: DNS %s is not inside ServiceCIDR %s", c.DNS, c.ServiceCIDR)
	}
	if c.NodePortAddr.IsValid() && !c.NodePortAddr.Is4() {
		return fmt.Errorf("svcproxy config: NodePortAddr %s: only IPv4 is supported", c.NodePortAddr)
	}
	return nil
}
