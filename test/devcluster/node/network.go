package node

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where iproute2 and vishvananda/netns keep named network namespaces.
const netnsDir = "/run/netns"

// lockDir holds one lock file per bridge so two agents never manage the same bridge and a
// new agent can tell leftovers of a crashed one (lock free, bridge present) from a live one.
const lockDir = "/run/rauta-devcluster"

// network owns the bridge, the per-pod namespaces and veth pairs of one agent.
type network struct {
	bridge  string
	prefix  netip.Prefix
	gateway netip.Addr
	// services, when valid, is the Service ClusterIP range: pods route it to the bridge
	// address, where the cluster's service proxy answers on the host.
	services netip.Prefix
	lock     *os.File

	mu   sync.Mutex // guards ipam; pod workers add and remove pods concurrently
	ipam *ipam
}

// podNetwork is what addPod made for one pod.
type podNetwork struct {
	id     string // 8 hex characters, from the pod UID
	netns  string
	hostIf string
	ip     netip.Addr
}

func netnsName(bridge, id string) string  { return bridge + "-" + id }
func hostIfName(bridge, id string) string { return bridge + "v" + id }

// setupNetwork takes the bridge lock, removes leftovers of a crashed agent with the same
// bridge name, refuses a pod CIDR that overlaps any existing route or address, and creates
// the bridge with the first host address of the CIDR. A non-empty serviceCIDR is routed
// from every pod to the bridge address.
func setupNetwork(bridge string, prefix netip.Prefix, serviceCIDR string) (*network, error) {
	var services netip.Prefix
	if serviceCIDR != "" {
		p, err := netip.ParsePrefix(serviceCIDR)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("node config: ServiceCIDR %q: want an IPv4 prefix", serviceCIDR)
		}
		if p.Overlaps(prefix) {
			return nil, fmt.Errorf("node config: ServiceCIDR %s overlaps PodCIDR %s", p, prefix)
		}
		services = p.Masked()
	}
	if err := ensureNetnsMount(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", lockDir, err)
	}
	lockPath := filepath.Join(lockDir, bridge+".lock")
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", lockPath, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("bridge %s is managed by another running node agent (%s locked): %w", bridge, lockPath, err)
	}
	n := &network{bridge: bridge, prefix: prefix, gateway: prefix.Addr().Next(), services: services, ipam: newIPAM(prefix), lock: lock}
	if err := n.removeLeftovers(); err != nil {
		n.unlock()
		return nil, err
	}
	if err := checkNoOverlap(prefix); err != nil {
		n.unlock()
		return nil, err
	}
	if err := n.createBridge(); err != nil {
		return nil, errors.Join(err, n.close())
	}
	return n, nil
}

// checkNoOverlap refuses a pod CIDR that any route (other than a default route) or
// interface address already covers: pods must never shadow a real network.
func checkNoOverlap(prefix netip.Prefix) error {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		dst, ok := prefixOf(r.Dst)
		if !ok || dst.Bits() == 0 {
			continue
		}
		if dst.Overlaps(prefix) {
			return fmt.Errorf("pod CIDR %s overlaps route %s on this host; choose another PodCIDR", prefix, dst)
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && prefix.Contains(ip) {
			return fmt.Errorf("pod CIDR %s contains address %s of interface %d on this host; choose another PodCIDR", prefix, ip, a.LinkIndex)
		}
	}
	return nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip, ones).Masked(), true
}

func (n *network) createBridge() error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.bridge}}
	if err := netlink.LinkAdd(br); err != nil {
		return fmt.Errorf("create bridge %s: %w", n.bridge, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.gateway.AsSlice(), Mask: net.CIDRMask(n.prefix.Bits(), 32)}}
	if err := netlink.AddrAdd(br, addr); err != nil {
		return fmt.Errorf("address bridge %s: %w", n.bridge, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("bring up bridge %s: %w", n.bridge, err)
	}
	return nil
}

// removeLeftovers deletes namespaces and links named after this bridge. It runs only
// while holding the bridge lock, so they belong to an agent that is gone.
func (n *network) removeLeftovers() error {
	var errs []error
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("list %s: %w", netnsDir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), n.bridge+"-") {
			if err := netns.DeleteNamed(e.Name()); err != nil {
				errs = append(errs, fmt.Errorf("delete leftover namespace %s: %w", e.Name(), err))
			}
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		name := l.Attrs().Name
		if name == n.bridge || strings.HasPrefix(name, n.bridge+"v") {
			if err := netlink.LinkDel(l); err != nil && !linkGone(err) {
				errs = append(errs, fmt.Errorf("delete leftover link %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// addPod creates the pod's namespace and veth pair: eth0 inside with the pod address, the
// connected route of the pod CIDR and, when set, a route of the Service range via the
// bridge address (pods reach the host bridge address, each other and ClusterIPs, nothing
// else), the host end attached to the bridge.
func (n *network) addPod(id string) (podNetwork, error) {
	n.mu.Lock()
	ip, err := n.ipam.allocate()
	n.mu.Unlock()
	if err != nil {
		return podNetwork{}, err
	}
	pn := podNetwork{id: id, netns: netnsName(n.bridge, id), hostIf: hostIfName(n.bridge, id), ip: ip}
	if err := n.configurePod(pn); err != nil {
		return podNetwork{}, errors.Join(err, n.removePod(pn))
	}
	return pn, nil
}

func (n *network) configurePod(pn podNetwork) error {
	ns, err := newNamedNetns(pn.netns)
	if err != nil {
		return err
	}
	defer ns.Close()

	peer := pn.hostIf + "p"
	if len(peer) > 15 {
		peer = "rdcpeer" + pn.id
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: pn.hostIf}, PeerName: peer}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", pn.hostIf, err)
	}
	br, err := netlink.LinkByName(n.bridge)
	if err != nil {
		return fmt.Errorf("find bridge %s: %w", n.bridge, err)
	}
	host, err := netlink.LinkByName(pn.hostIf)
	if err != nil {
		return fmt.Errorf("find veth %s: %w", pn.hostIf, err)
	}
	if err := netlink.LinkSetMaster(host, br); err != nil {
		return fmt.Errorf("attach %s to %s: %w", pn.hostIf, n.bridge, err)
	}
	peerLink, err := netlink.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("find veth peer %s: %w", peer, err)
	}
	if err := netlink.LinkSetNsFd(peerLink, int(ns)); err != nil {
		return fmt.Errorf("move %s into %s: %w", peer, pn.netns, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("bring up %s: %w", pn.hostIf, err)
	}

	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", pn.netns, err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo in %s: %w", pn.netns, err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring up lo in %s: %w", pn.netns, err)
	}
	eth, err := h.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", peer, pn.netns, err)
	}
	if err := h.LinkSetName(eth, "eth0"); err != nil {
		return fmt.Errorf("rename %s to eth0 in %s: %w", peer, pn.netns, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: pn.ip.AsSlice(), Mask: net.CIDRMask(n.prefix.Bits(), 32)}}
	if err := h.AddrAdd(eth, addr); err != nil {
		return fmt.Errorf("address eth0 in %s: %w", pn.netns, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("bring up eth0 in %s: %w", pn.netns, err)
	}
	if n.services.IsValid() {
		route := &netlink.Route{
			LinkIndex: eth.Attrs().Index,
			Dst:       &net.IPNet{IP: n.services.Addr().AsSlice(), Mask: net.CIDRMask(n.services.Bits(), 32)},
			Gw:        n.gateway.AsSlice(),
		}
		if err := h.RouteAdd(route); err != nil {
			return fmt.Errorf("route %s via %s in %s: %w", n.services, n.gateway, pn.netns, err)
		}
	}
	return nil
}

// removePod deletes the namespace (which destroys the veth pair with it), the host end if
// it survived, and releases the address.
func (n *network) removePod(pn podNetwork) error {
	var errs []error
	if err := netns.DeleteNamed(pn.netns); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("delete namespace %s: %w", pn.netns, err))
	}
	if l, err := netlink.LinkByName(pn.hostIf); err == nil {
		if err := netlink.LinkDel(l); err != nil && !linkGone(err) {
			errs = append(errs, fmt.Errorf("delete veth %s: %w", pn.hostIf, err))
		}
	}
	if pn.ip.IsValid() {
		n.mu.Lock()
		n.ipam.release(pn.ip)
		n.mu.Unlock()
	}
	return errors.Join(errs...)
}

// linkGone recognises deleting a link that vanished meanwhile: deleting a namespace
// destroys its veth pair, and the kernel may finish that after the link was listed.
func linkGone(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.Is(err, syscall.ENODEV) || errors.As(err, &nf)
}

// close removes the bridge and any namespace or link left, then releases the lock.
func (n *network) close() error {
	err := n.removeLeftovers()
	n.unlock()
	return err
}

func (n *network) unlock() {
	if n.lock != nil {
		// Closing the file releases the lock as well; unlocking first only makes it explicit.
		_ = syscall.Flock(int(n.lock.Fd()), syscall.LOCK_UN)
		n.lock.Close()
		os.Remove(n.lock.Name())
		n.lock = nil
	}
}

// newNamedNetns creates a persistent named namespace. netns.NewNamed switches the calling
// thread into the new namespace, so it runs on a locked thread that is switched back; if
// switching back fails the thread stays locked and Go discards it when the goroutine ends.
func newNamedNetns(name string) (netns.NsHandle, error) {
	type result struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- result{err: fmt.Errorf("current namespace: %w", err)}
			return
		}
		defer orig.Close()
		ns, err := netns.NewNamed(name)
		if err != nil {
			// The thread may or may not have switched; it stays locked and is discarded.
			ch <- result{err: fmt.Errorf("create namespace %s: %w", name, err)}
			return
		}
		if err := netns.Set(orig); err != nil {
			ch <- result{ns: ns, err: fmt.Errorf("return from namespace %s: %w", name, err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{ns: ns}
	}()
	r := <-ch
	if r.err != nil && r.ns.IsOpen() {
		r.ns.Close()
	}
	return r.ns, r.err
}

// ensureNetnsMount makes netnsDir a shared mount point, as `ip netns add`
// does, before the agent mounts any namespace there. Were it a plain folder,
// the next `ip netns add` by anyone (a test, an operator) would bind-mount
// it over itself and hide the namespaces mounted in it, which could then no
// longer be unmounted by their path (seen: "delete leftover namespace ...:
// invalid argument" after an eBPF test ran beside a cluster).
func ensureNetnsMount() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", netnsDir, err)
	}
	err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s shared: %w", netnsDir, err)
	}
	// EINVAL: not a mount point yet.
	if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %s: %w", netnsDir, err)
	}
	if err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", netnsDir, err)
	}
	return nil
}
