package observe

import (
	"net"
	"net/netip"
	"time"
)

// ownAddrs are the addresses the observer's metrics listener answers on,
// so that only scrapes of the observer itself are left out of what it
// records: other pods serve /metrics on port 9090 too, and those are
// traffic like any other.
type ownAddrs struct {
	port uint16
	// fixed: the listener is bound to one address; else any address of
	// the observer's network namespace, refreshed every refreshEvery (a
	// node's addresses change: DHCP, added IPs).
	fixed    netip.Addr
	set      map[netip.Addr]struct{}
	list     func() []netip.Addr
	nextLoad time.Time
}

const ownAddrsRefresh = 30 * time.Second

// newOwnAddrs for a listener bound to bound (its Addr()); list returns the
// namespace's addresses (nil: the interfaces' addresses).
func newOwnAddrs(bound netip.AddrPort, list func() []netip.Addr) *ownAddrs {
	o := &ownAddrs{port: bound.Port(), list: list}
	if a := bound.Addr().Unmap(); a.IsValid() && !a.IsUnspecified() {
		o.fixed = a
		return o
	}
	if o.list == nil {
		o.list = interfaceAddrs
	}
	o.load(time.Now())
	return o
}

func (o *ownAddrs) load(now time.Time) {
	o.set = make(map[netip.Addr]struct{})
	for _, a := range o.list() {
		o.set[a.Unmap()] = struct{}{}
	}
	o.nextLoad = now.Add(ownAddrsRefresh)
}

// refresh reloads the address set when it is due; the pipeline's tick
// calls it.
func (o *ownAddrs) refresh(now time.Time) {
	if o != nil && o.set != nil && !now.Before(o.nextLoad) {
		o.load(now)
	}
}

// is reports whether ap is the observer's own metrics endpoint.
func (o *ownAddrs) is(ap netip.AddrPort) bool {
	if o == nil || ap.Port() != o.port {
		return false
	}
	a := ap.Addr().Unmap()
	if o.fixed.IsValid() {
		return a == o.fixed
	}
	_, ok := o.set[a]
	return ok
}

func interfaceAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}
