package ebpf

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/false-systems/rauta/internal/observe"
)

// discoveryNode stands in for a node's root namespace: loopback, an
// uplink veth holding the default route (as a kind node's eth0 does), and
// pods added and deleted while the observer runs. Everything lives in
// namespaces made here and is deleted in t.Cleanup.
type discoveryNode struct {
	prefix   string
	host     string // the observer's namespace
	upstream string // the far end of the uplink
	uplink   string // host-side uplink device
	net      int    // second octet of the pod range 10.<net>.0.0/16
}

type discoveryPod struct {
	ns      string
	hostDev string // the pod's veth in the host namespace
	addr    string // the pod's HTTP server
	hostIP  string // address of hostDev (its connected route is the pod's)
}

func newDiscoveryNode(t *testing.T) *discoveryNode {
	t.Helper()
	requireRoot(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	n, _ := rand.Int(rand.Reader, big.NewInt(50))
	p := "rtad" + hex.EncodeToString(b)
	d := &discoveryNode{prefix: p, host: p + "h", upstream: p + "x", uplink: p + "u", net: 200 + int(n.Int64())}
	t.Cleanup(func() {
		// Pods first (their namespaces hold one end of each veth).
		out, _ := exec.Command("ip", "netns", "list").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], p) {
				_ = exec.Command("ip", "netns", "del", f[0]).Run()
			}
		}
	})
	for _, ns := range []string{d.host, d.upstream} {
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	// The uplink is outside the pod range, so only its default route
	// keeps auto off it (the unit tests cover a pod-range uplink).
	run(t, "ip", "link", "add", d.uplink, "netns", d.host, "type", "veth", "peer", "name", p+"ux", "netns", d.upstream)
	run(t, "ip", "-n", d.host, "addr", "add", "172.31.255.1/24", "dev", d.uplink)
	run(t, "ip", "-n", d.upstream, "addr", "add", "172.31.255.2/24", "dev", p+"ux")
	run(t, "ip", "-n", d.host, "link", "set", d.uplink, "up")
	run(t, "ip", "-n", d.upstream, "link", "set", p+"ux", "up")
	run(t, "ip", "-n", d.host, "route", "add", "default", "via", "172.31.255.2")
	return d
}

func (d *discoveryNode) podCIDR() string { return fmt.Sprintf("10.%d.0.0/16", d.net) }

// addPod creates a pod namespace with a veth into the host namespace and
// an HTTP server on port 8080, as a CNI's ADD does.
func (d *discoveryNode) addPod(t *testing.T, i int) discoveryPod {
	t.Helper()
	pod := discoveryPod{
		ns:      fmt.Sprintf("%sp%d", d.prefix, i),
		hostDev: fmt.Sprintf("%sv%d", d.prefix, i),
		hostIP:  fmt.Sprintf("10.%d.%d.1", d.net, i),
	}
	podDev := fmt.Sprintf("%se%d", d.prefix, i)
	podIP := fmt.Sprintf("10.%d.%d.2", d.net, i)
	run(t, "ip", "netns", "add", pod.ns)
	run(t, "ip", "-n", pod.ns, "link", "set", "lo", "up")
	run(t, "ip", "link", "add", podDev, "netns", pod.ns, "type", "veth", "peer", "name", pod.hostDev, "netns", d.host)
	run(t, "ip", "-n", pod.ns, "addr", "add", podIP+"/24", "dev", podDev)
	run(t, "ip", "-n", pod.ns, "link", "set", podDev, "up")
	run(t, "ip", "-n", pod.ns, "route", "add", "default", "via", pod.hostIP)
	run(t, "ip", "-n", d.host, "addr", "add", pod.hostIP+"/24", "dev", pod.hostDev)
	run(t, "ip", "-n", d.host, "link", "set", pod.hostDev, "up")
	pod.addr = startServerOn(t, &topology{server: pod.ns}, net.JoinHostPort(podIP, "8080"))
	return pod
}

// ourHooks counts the observer's hooks on dev in ns: TCX programs (with
// their link ids) and clsact filters named rauta_observe_.
func ourHooks(t *testing.T, ns, dev string) (n int, links []link.ID) {
	t.Helper()
	err := inNetns(ns, func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
			res, err := link.QueryPrograms(link.QueryOptions{Target: ifc.Index, Attach: at})
			if err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
				return fmt.Errorf("query tcx: %w", err)
			}
			if res == nil {
				continue
			}
			for _, p := range res.Programs {
				n++
				if id, ok := p.LinkID(); ok {
					links = append(links, id)
				}
			}
		}
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		l := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: ifc.Index}}
		for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
			fs, err := h.FilterList(l, parent)
			if err != nil {
				continue // no clsact qdisc
			}
			for _, f := range fs {
				if bf, ok := f.(*netlink.BpfFilter); ok && strings.HasPrefix(bf.Name, "rauta_observe_") {
					n++
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("hooks on %s: %v", dev, err)
	}
	return n, links
}

// waitMetric polls until cond holds for the metric's value, within 10 s
// (notifications are handled within ~100 ms; the resync alone would take
// 10 s). It returns the last value.
func waitMetric(t *testing.T, obs *runningObserver, name string, cond func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := obs.metric(t, name, "")
		if cond(v) || time.Now().After(deadline) {
			return v
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func equals(want float64) func(float64) bool { return func(v float64) bool { return v == want } }

// TestDiscoveryFollowsPods (issue 16 point 9): with -interface auto (or a
// pattern) the observer attaches to a pod's veth when it appears, without
// a restart, sees its traffic, and when the veth is deleted detaches,
// leaks no TCX link, and releases the pod's tracked connections at once
// (not after the 60 s idle timeout). With a pod CIDR, a veth whose route
// leaves the range is detached while it still exists (no hook left on
// it) and attached again when the route comes back. The uplink (default
// route) and loopback are never attached.
func TestDiscoveryFollowsPods(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		entries    func(d *discoveryNode) []string
		cidr       bool
	}{
		{"auto/tcx", "tcx", func(*discoveryNode) []string { return []string{"auto"} }, false},
		{"auto+podcidr/clsact", "clsact", func(*discoveryNode) []string { return []string{"auto"} }, true},
		{"pattern+podcidr/tcx", "tcx", func(d *discoveryNode) []string { return []string{d.prefix + "v*"} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDiscoveryNode(t)
			tp := &topology{router: d.host, client: d.host}
			obs := startObserverOn(t, tp, tc.mode, tc.entries(d), func(c *observe.Config) {
				if tc.cidr {
					c.PodCIDRs = []string{d.podCIDR()}
				}
			})
			if v := obs.metric(t, "rauta_observer_attached_interfaces", ""); v != 0 {
				t.Fatalf("attached to %v interfaces at start; the node has only loopback and its uplink", v)
			}

			pod := d.addPod(t, 1)
			if v := waitMetric(t, obs, "rauta_observer_attached_interfaces", equals(1)); v != 1 {
				t.Fatalf("attached interfaces %v after the pod's veth appeared, want 1", v)
			}
			n, links := ourHooks(t, d.host, pod.hostDev)
			if n != 2 {
				t.Fatalf("%d observer hooks on the new pod's veth, want 2 (ingress and egress)", n)
			}
			if tc.mode == "tcx" && len(links) != 2 {
				t.Fatalf("%d TCX link ids on the new pod's veth, want 2", len(links))
			}
			for _, dev := range []string{d.uplink, "lo"} {
				if k, _ := ourHooks(t, d.host, dev); k != 0 {
					t.Errorf("%d observer hooks on %s: neither the uplink nor loopback is a pod", k, dev)
				}
			}
			if got := sendAndCount(t, tp, obs, pod.addr, "new-pod", 5); got != 5 {
				t.Fatalf("saw %d of 5 requests to the new pod", got)
			}
			if v := waitMetric(t, obs, "rauta_observer_tracked_connections", func(v float64) bool { return v >= 1 }); v < 1 {
				t.Fatalf("tracked connections %v with the client's keep-alive connection open, want >= 1", v)
			}

			if tc.cidr {
				// The pod's route goes: the veth is out of the pod CIDR.
				run(t, "ip", "-n", d.host, "addr", "flush", "dev", pod.hostDev)
				if v := waitMetric(t, obs, "rauta_observer_attached_interfaces", equals(0)); v != 0 {
					t.Fatalf("attached interfaces %v after the veth left the pod CIDR, want 0", v)
				}
				if k, _ := ourHooks(t, d.host, pod.hostDev); k != 0 {
					t.Errorf("%d observer hooks left on a veth no longer selected", k)
				}
				if tc.mode == "clsact" && hasClsact(t, &topology{router: d.host}, pod.hostDev) {
					t.Errorf("clsact qdisc left on a veth no longer selected")
				}
				run(t, "ip", "-n", d.host, "addr", "add", pod.hostIP+"/24", "dev", pod.hostDev)
				if v := waitMetric(t, obs, "rauta_observer_attached_interfaces", equals(1)); v != 1 {
					t.Fatalf("attached interfaces %v after the route came back, want 1", v)
				}
				if got := sendAndCount(t, tp, obs, pod.addr, "back", 5); got != 5 {
					t.Fatalf("saw %d of 5 requests after the veth was selected again", got)
				}
				_, links = ourHooks(t, d.host, pod.hostDev)
			}

			// The pod goes: its veth is deleted.
			run(t, "ip", "-n", d.host, "link", "del", pod.hostDev)
			if v := waitMetric(t, obs, "rauta_observer_attached_interfaces", equals(0)); v != 0 {
				t.Fatalf("attached interfaces %v after the veth was deleted, want 0", v)
			}
			if v := waitMetric(t, obs, "rauta_observer_tracked_connections", equals(0)); v != 0 {
				t.Errorf("tracked connections %v after the pod's veth was deleted, want 0 (released, not left to the idle timeout)", v)
			}
			if v := obs.metric(t, "rauta_observer_released_connections_total", ""); v < 1 {
				t.Errorf("released connections %v, want >= 1", v)
			}
			wantDetaches := 1.0
			if tc.cidr {
				wantDetaches = 2
			}
			if v := obs.metric(t, "rauta_observer_interface_detachments_total", ""); v != wantDetaches {
				t.Errorf("detachments %v, want %v", v, wantDetaches)
			}
			if v := obs.metric(t, "rauta_observer_interface_attachments_total", ""); v != wantDetaches {
				t.Errorf("attachments %v, want %v", v, wantDetaches)
			}
			if v := obs.metric(t, "rauta_observer_interface_attach_errors_total", ""); v != 0 {
				t.Errorf("attach errors %v, want 0", v)
			}
			// The TCX links went with the device in the kernel; the
			// observer must also have closed them, or they stay as
			// defunct links holding the program.
			for _, id := range links {
				deadline := time.Now().Add(5 * time.Second)
				for {
					l, err := link.NewFromID(id)
					if err != nil {
						break
					}
					l.Close()
					if time.Now().After(deadline) {
						t.Errorf("TCX link %d still exists after its veth was deleted: the observer leaked it", id)
						break
					}
					time.Sleep(25 * time.Millisecond)
				}
			}
			obs.stop(t)
			if k, _ := ourHooks(t, d.host, d.uplink); k != 0 {
				t.Errorf("%d hooks on the uplink after the observer stopped", k)
			}
		})
	}
}

// TestDiscoveryCap: past -max-interfaces a selected veth is not attached;
// the refusal is counted once, and the veth is attached when room is made.
func TestDiscoveryCap(t *testing.T) {
	d := newDiscoveryNode(t)
	tp := &topology{router: d.host, client: d.host}
	first := d.addPod(t, 1)
	obs := startObserverOn(t, tp, "tcx", []string{"auto"}, func(c *observe.Config) { c.MaxInterfaces = 1 })
	if v := obs.metric(t, "rauta_observer_attached_interfaces", ""); v != 1 {
		t.Fatalf("attached interfaces %v at start with one pod, want 1", v)
	}
	second := d.addPod(t, 2)
	if v := waitMetric(t, obs, "rauta_observer_interface_refusals_total", equals(1)); v != 1 {
		t.Fatalf("refusals %v with a second pod over the cap of 1, want 1", v)
	}
	if n, _ := ourHooks(t, d.host, second.hostDev); n != 0 {
		t.Errorf("%d hooks on the veth over the cap", n)
	}
	// Link changes and resyncs do not count the same refusal again.
	run(t, "ip", "-n", d.host, "link", "set", second.hostDev, "mtu", "1400")
	time.Sleep(300 * time.Millisecond)
	if v := obs.metric(t, "rauta_observer_interface_refusals_total", ""); v != 1 {
		t.Errorf("refusals %v after a change on the refused veth, want still 1", v)
	}
	run(t, "ip", "-n", d.host, "link", "del", first.hostDev)
	if n := waitHooks(t, d.host, second.hostDev, 2); n != 2 {
		t.Fatalf("%d hooks on the second pod's veth after the first was deleted, want 2", n)
	}
	if got := sendAndCount(t, tp, obs, second.addr, "second", 3); got != 3 {
		t.Errorf("saw %d of 3 requests to the pod attached once room was made", got)
	}
}

func waitHooks(t *testing.T, ns, dev string, want int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := ourHooks(t, ns, dev)
		if n == want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(25 * time.Millisecond)
	}
}
