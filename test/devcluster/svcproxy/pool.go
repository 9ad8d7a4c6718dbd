package svcproxy

import (
	"errors"
	"fmt"
	"net/netip"
)

// Errors of pool.assign; the message of the wrapping error names the address.
var (
	errOutOfPool = errors.New("not in the load-balancer pool")
	errTaken     = errors.New("already assigned to another Service")
	errExhausted = errors.New("load-balancer pool exhausted")
)

// pool hands out load-balancer addresses of one prefix, one per Service key. It is not safe
// for concurrent use: the proxy's single sync loop owns it.
type pool struct {
	prefix netip.Prefix
	owner  map[netip.Addr]string
	byKey  map[string]netip.Addr
}

func newPool(prefix netip.Prefix) *pool {
	return &pool{prefix: prefix.Masked(), owner: map[netip.Addr]string{}, byKey: map[string]netip.Addr{}}
}

// usable reports whether a is in the pool. Like MetalLB's avoidBuggyIPs, the network and
// broadcast addresses of prefixes longer than two addresses are left out: some clients
// refuse them.
func (p *pool) usable(a netip.Addr) bool {
	if !p.prefix.Contains(a) {
		return false
	}
	if p.prefix.Bits() >= 31 {
		return true
	}
	return a != p.prefix.Addr() && a != lastAddr(p.prefix)
}

// assign returns key's address. A requested address (want) is given if it is in the pool
// and free, else nothing (and key loses the address it had). Without a request key keeps its
// address, or gets prefer (the address its status already shows, so a restarted proxy keeps
// addresses stable) when that is usable and free, or else the lowest free address that
// reserved does not hold for another Service.
func (p *pool) assign(key string, want, prefer netip.Addr, reserved func(netip.Addr) bool) (netip.Addr, error) {
	cur, has := p.byKey[key]
	if want.IsValid() {
		if has && cur == want {
			return cur, nil
		}
		if !p.usable(want) {
			p.release(key)
			return netip.Addr{}, fmt.Errorf("requested %s: %w %s", want, errOutOfPool, p.prefix)
		}
		if other, taken := p.owner[want]; taken && other != key {
			p.release(key)
			return netip.Addr{}, fmt.Errorf("requested %s: %w (%s)", want, errTaken, other)
		}
		p.release(key)
		p.take(key, want)
		return want, nil
	}
	if has {
		return cur, nil
	}
	if prefer.IsValid() && p.usable(prefer) {
		if _, taken := p.owner[prefer]; !taken {
			p.take(key, prefer)
			return prefer, nil
		}
	}
	for a := p.prefix.Addr(); p.prefix.Contains(a); a = a.Next() {
		if !p.usable(a) {
			continue
		}
		if _, taken := p.owner[a]; taken || (reserved != nil && reserved(a)) {
			continue
		}
		p.take(key, a)
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("%w (%s, %d addresses in use)", errExhausted, p.prefix, len(p.owner))
}

func (p *pool) take(key string, a netip.Addr) {
	p.owner[a] = key
	p.byKey[key] = a
}

// release frees key's address, if it has one, and reports whether it had.
func (p *pool) release(key string) bool {
	a, ok := p.byKey[key]
	if ok {
		delete(p.owner, a)
		delete(p.byKey, key)
	}
	return ok
}

// lookup returns key's address.
func (p *pool) lookup(key string) (netip.Addr, bool) {
	a, ok := p.byKey[key]
	return a, ok
}

// lastAddr is the highest address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
