package lb

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/false-systems/rauta/internal/ir"
)

// Balancer picks an endpoint for one request. Implementations are safe for
// concurrent use and Pick never allocates.
//
// Endpoints that failed are ejected for a while (passive health, see
// health.go) and skipped by Pick while others are usable; when none is,
// Pick chooses as if none were ejected (Envoy's panic mode), since a
// request sent somewhere may still succeed and one not sent cannot.
type Balancer interface {
	// Pick returns the endpoint for a request, or nil when the balancer has no
	// endpoints. key is the request's hash key (see Hash); only Maglev uses it.
	Pick(key uint64) *Endpoint
	// Retry returns an endpoint other than failed for another attempt of
	// key's request, or nil when no other endpoint is usable.
	Retry(key uint64, failed *Endpoint) *Endpoint
	// Eject leaves an endpoint that failed out for a back-off period,
	// within the share HealthOptions allows; it reports whether it did.
	Eject(e *Endpoint) bool
	// StartRetry takes a place in the backend's retry budget, reporting
	// false when it is spent; EndRetry gives a place back.
	StartRetry() bool
	EndRetry()
	// Endpoints lists the balancer's endpoints (shared, not to be
	// modified): what keeps them in the Registry (Registry.Prune).
	Endpoints() []*Endpoint
}

// New builds the balancer of one backend. The empty policy means RoundRobin.
// Endpoints come from reg, so their state is shared with every other balancer
// naming the same address; a nil reg gives the balancer private endpoints.
// An address listed twice is used once, with the weight of its first entry.
// Maglev uses DefaultMaglevTableSize, or a larger prime when the backend has
// more than a hundredth of that many endpoints, so each endpoint keeps about
// a hundred slots or more (the balance the Maglev paper recommends).
func New(policy ir.LBPolicy, eps []ir.Endpoint, reg *Registry) (Balancer, error) {
	switch policy {
	case "", ir.LBRoundRobin, ir.LBLeastRequest, ir.LBMaglev:
	default:
		return nil, fmt.Errorf("unknown load balancing policy %q", policy)
	}
	resolved, weights, err := resolve(eps, reg)
	if err != nil {
		return nil, err
	}
	var h *health
	if reg != nil {
		h = reg.health
	}
	switch policy {
	case ir.LBLeastRequest:
		return newLeastRequest(resolved, h), nil
	case ir.LBMaglev:
		m, err := NewMaglev(resolved, weights, maglevTableSizeFor(len(resolved)))
		if err != nil {
			return nil, err
		}
		m.h = h
		if h == nil {
			m.h = defaultHealth
		}
		return m, nil
	default:
		return newRoundRobin(resolved, h), nil
	}
}

// resolve turns IR endpoints into shared Endpoints, dropping repeated
// addresses (two EndpointSlices may list the same one during a rollout).
func resolve(eps []ir.Endpoint, reg *Registry) ([]*Endpoint, []uint32, error) {
	out := make([]*Endpoint, 0, len(eps))
	weights := make([]uint32, 0, len(eps))
	seen := make(map[string]struct{}, len(eps))
	for i, ep := range eps {
		addr, err := FormatAddr(ep.Address, ep.Port)
		if err != nil {
			return nil, nil, fmt.Errorf("endpoint %d: %w", i, err)
		}
		if _, dup := seen[addr]; dup {
			continue
		}
		seen[addr] = struct{}{}
		var e *Endpoint
		if reg != nil {
			e = reg.Endpoint(addr)
		} else {
			e = &Endpoint{Addr: addr}
		}
		out = append(out, e)
		weights = append(weights, ep.Weight)
	}
	return out, weights, nil
}

// FormatAddr returns the dial address of an IP or DNS name and a port, in the
// canonical form a Registry is keyed by: "10.0.0.1:8080", "[::1]:80",
// "backend.example:80".
func FormatAddr(host string, port uint32) (string, error) {
	if port == 0 || port > 65535 {
		return "", fmt.Errorf("address %q: port %d out of range 1-65535", host, port)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(ip, uint16(port)).String(), nil
	}
	if !validHostname(host) {
		return "", fmt.Errorf("address %q: neither an IP address nor a DNS name", host)
	}
	return net.JoinHostPort(strings.ToLower(host), strconv.FormatUint(uint64(port), 10)), nil
}

// validHostname accepts DNS names (RFC 1123 labels, optional trailing dot).
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}
