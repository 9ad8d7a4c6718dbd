package observe

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// listLinks describes every link of the namespace h is bound to. With
// routes, it also marks uplinks (links holding a default route, in any
// table: policy routing may keep the node's way out outside main) and
// collects each link's unicast route destinations for the pod CIDR rule.
func listLinks(h *netlink.Handle, routes bool) ([]linkDesc, error) {
	ls, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make([]linkDesc, 0, len(ls))
	at := make(map[int]int, len(ls))
	for _, l := range ls {
		a := l.Attrs()
		at[a.Index] = len(out)
		out = append(out, linkDesc{
			Name:     a.Name,
			Index:    a.Index,
			Type:     l.Type(),
			Loopback: a.Flags&net.FlagLoopback != 0,
			Master:   a.MasterIndex,
		})
	}
	if !routes {
		return out, nil
	}
	rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for i := range rs {
		r := &rs[i]
		// Local and broadcast entries name the host's own addresses, not
		// where traffic goes.
		if r.Type != unix.RTN_UNICAST {
			continue
		}
		dst, def := routeDst(r.Dst)
		for _, idx := range routeLinks(r) {
			j, ok := at[idx]
			if !ok {
				continue
			}
			if def {
				out[j].Uplink = true
			} else if dst.IsValid() {
				out[j].Routes = append(out[j].Routes, dst)
			}
		}
	}
	return out, nil
}

// routeDst converts a route destination; def reports a default route
// (netlink gives it as nil or as a zero-length prefix).
func routeDst(d *net.IPNet) (p netip.Prefix, def bool) {
	if d == nil {
		return netip.Prefix{}, true
	}
	ones, _ := d.Mask.Size()
	addr, ok := netip.AddrFromSlice(d.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	if ones == 0 {
		return netip.Prefix{}, true
	}
	return netip.PrefixFrom(addr.Unmap(), ones).Masked(), false
}

// routeLinks are the output interfaces of a route, multipath included.
func routeLinks(r *netlink.Route) []int {
	var idx []int
	if r.LinkIndex > 0 {
		idx = append(idx, r.LinkIndex)
	}
	for _, nh := range r.MultiPath {
		if nh != nil && nh.LinkIndex > 0 {
			idx = append(idx, nh.LinkIndex)
		}
	}
	return idx
}
