// Package enrich maps IP addresses to pod, namespace and service: from the
// Kubernetes API (Pod and EndpointSlice informers) inside a cluster, or from
// a static YAML/JSON file in standalone use.
package enrich

import "net/netip"

// Info is what is known about an address.
type Info struct {
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Service   string `json:"service,omitempty"`
}

// Resolver looks addresses up; implementations are safe for concurrent use.
type Resolver interface {
	Lookup(ip netip.Addr) (Info, bool)
}

// None resolves nothing.
type None struct{}

// Lookup implements Resolver.
func (None) Lookup(netip.Addr) (Info, bool) { return Info{}, false }

// RouteSource is implemented by resolvers that know services' routes (the
// path prefixes of their HTTPRoute rules, or a static list). Targets that
// match one are labelled with it ahead of templates from traffic, and
// those labels do not wait for room in the route budget.
type RouteSource interface {
	Routes(service string) []string
}
