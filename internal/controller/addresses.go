package controller

import (
	"fmt"
	"net/netip"
	"sort"
)

// addressPool hands each Gateway without spec.addresses its own address from
// a CIDR, so that every Gateway can use the ports it wants. An assignment is
// kept for as long as the Gateway exists, so a Gateway never moves while it
// serves.
type addressPool struct {
	prefix   netip.Prefix
	assigned map[string]netip.Addr
}

func newAddressPool(cidr string) (*addressPool, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("address pool %q: %w", cidr, err)
	}
	return &addressPool{prefix: p.Masked(), assigned: make(map[string]netip.Addr)}, nil
}

// assign returns the address of every Gateway in keys, releasing the
// addresses of Gateways no longer present. New Gateways take the lowest free
// address, in key order, so the result does not depend on map order. A
// Gateway that finds the pool exhausted gets no address (it then binds the
// default address) and is named in the returned error.
func (p *addressPool) assign(keys []string) (map[string]string, error) {
	live := make(map[string]bool, len(keys))
	for _, k := range keys {
		live[k] = true
	}
	used := make(map[netip.Addr]bool)
	for k, a := range p.assigned {
		if !live[k] {
			delete(p.assigned, k)
			continue
		}
		used[a] = true
	}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	var exhausted []string
	next := p.prefix.Addr().Next() // skip the network address
	for _, k := range sorted {
		if _, ok := p.assigned[k]; ok {
			continue
		}
		for next.IsValid() && p.prefix.Contains(next) && used[next] {
			next = next.Next()
		}
		if !next.IsValid() || !p.prefix.Contains(next) {
			exhausted = append(exhausted, k)
			continue
		}
		p.assigned[k] = next
		used[next] = true
	}
	out := make(map[string]string, len(p.assigned))
	for k, a := range p.assigned {
		out[k] = a.String()
	}
	if len(exhausted) > 0 {
		return out, fmt.Errorf("address pool %s exhausted: no address for %v", p.prefix, exhausted)
	}
	return out, nil
}
