package svcproxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// lockDir is shared with the node agent's bridge locks.
const lockDir = "/run/rauta-devcluster"

// localRange makes every address of a prefix local to the host, so sockets can bind any of
// them and traffic to them (from the host, or from pods through the bridge) is delivered
// here: the route "local <prefix> dev lo" in the local table, the way 127.0.0.0/8 works.
// A prefix an existing local route already covers (a pool inside 127.0.0.0/8) needs none.
// A lock file per prefix keeps two running clusters apart and tells a leftover route of a
// crashed one (lock free, route present) from a live one.
type localRange struct {
	prefix netip.Prefix
	route  *netlink.Route // nil when the prefix was already local
	lock   *os.File
}

func lockPath(prefix netip.Prefix) string {
	return filepath.Join(lockDir, "range-"+strings.ReplaceAll(prefix.String(), "/", "_")+".lock")
}

// claimLocalRange takes the prefix's lock and installs the local route unless an existing
// local route covers the prefix. It refuses a prefix that overlaps any other route or
// address of the host.
func claimLocalRange(prefix netip.Prefix) (*localRange, error) {
	prefix = prefix.Masked()
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", lockDir, err)
	}
	path := lockPath(prefix)
	lock, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("range %s is used by another running cluster (%s locked); choose another ServiceCIDR or LoadBalancerCIDR: %w", prefix, path, err)
	}
	r := &localRange{prefix: prefix, lock: lock}
	if err := r.install(); err != nil {
		r.unlock()
		return nil, err
	}
	return r, nil
}

func (r *localRange) install() error {
	locals, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_LOCAL}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list local routes: %w", err)
	}
	var stale bool
	for _, rt := range locals {
		dst, ok := routePrefix(rt.Dst)
		if !ok || !dst.Overlaps(r.prefix) {
			continue
		}
		switch {
		case rt.Type == unix.RTN_LOCAL && dst.Bits() < r.prefix.Bits() && dst.Contains(r.prefix.Addr()):
			return nil // already local, e.g. inside 127.0.0.0/8
		case rt.Type == unix.RTN_LOCAL && dst == r.prefix:
			stale = true // left by a crashed run: we hold the lock, so it is ours now
		default:
			return fmt.Errorf("range %s overlaps %s on this host (local table); choose another range", r.prefix, dst)
		}
	}
	main, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	for _, rt := range main {
		if dst, ok := routePrefix(rt.Dst); ok && dst.Bits() > 0 && dst.Overlaps(r.prefix) {
			return fmt.Errorf("range %s overlaps route %s on this host; choose another range", r.prefix, dst)
		}
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	route := &netlink.Route{
		LinkIndex: lo.Attrs().Index,
		Dst:       &net.IPNet{IP: r.prefix.Addr().AsSlice(), Mask: net.CIDRMask(r.prefix.Bits(), 32)},
		Table:     unix.RT_TABLE_LOCAL,
		Type:      unix.RTN_LOCAL,
		Scope:     netlink.SCOPE_HOST,
	}
	// Replace, so a stale route of a crashed run is taken over instead of failing with EEXIST.
	if err := netlink.RouteReplace(route); err != nil {
		what := "add"
		if stale {
			what = "replace stale"
		}
		return fmt.Errorf("%s route local %s dev lo: %w", what, r.prefix, err)
	}
	r.route = route
	return nil
}

// release removes the route (if it added one) and the lock.
func (r *localRange) release() error {
	var err error
	if r.route != nil {
		if e := netlink.RouteDel(r.route); e != nil && !errors.Is(e, syscall.ESRCH) {
			err = fmt.Errorf("remove route local %s dev lo: %w", r.prefix, e)
		}
		r.route = nil
	}
	r.unlock()
	return err
}

// routed reports whether release will remove a route (false: the prefix was already local).
func (r *localRange) routed() bool { return r.route != nil }

func (r *localRange) unlock() {
	if r.lock != nil {
		os.Remove(r.lock.Name())
		r.lock.Close() // closing releases the flock
		r.lock = nil
	}
}

func routePrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip, ones).Masked(), true
}
