package node

import (
	"fmt"
	"net/netip"
)

// ipam hands out pod addresses from one IPv4 prefix. The network address, the first host
// address (the bridge) and the broadcast address are never given out. Allocation continues
// after the last address handed out, so a deleted pod's address is not reused at once
// (clients that cached it would reach the wrong pod). Not safe for concurrent use.
type ipam struct {
	prefix  netip.Prefix
	gateway netip.Addr
	used    map[netip.Addr]bool
	next    netip.Addr
}

func newIPAM(prefix netip.Prefix) *ipam {
	gw := prefix.Masked().Addr().Next()
	return &ipam{prefix: prefix.Masked(), gateway: gw, used: map[netip.Addr]bool{}, next: gw.Next()}
}

func (p *ipam) first() netip.Addr { return p.gateway.Next() }

// last is the address before the broadcast address.
func (p *ipam) last() netip.Addr {
	a := p.prefix.Addr().As4()
	host := uint32(1)<<(32-p.prefix.Bits()) - 1
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	v--
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (p *ipam) allocate() (netip.Addr, error) {
	first, last := p.first(), p.last()
	addr := p.next
	for range 1 << (32 - p.prefix.Bits()) {
		if addr.Compare(last) > 0 || addr.Compare(first) < 0 {
			addr = first
		}
		if !p.used[addr] {
			p.used[addr] = true
			p.next = addr.Next()
			return addr, nil
		}
		addr = addr.Next()
	}
	return netip.Addr{}, fmt.Errorf("pod CIDR %s exhausted", p.prefix)
}

func (p *ipam) release(addr netip.Addr) {
	delete(p.used, addr)
}
