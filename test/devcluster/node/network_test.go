package node

import (
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces, veth pairs and a bridge; CI runs as root")
	}
}

// listenInNetns opens a TCP listener inside the named namespace; the socket stays there
// after the thread switches back.
func listenInNetns(t *testing.T, name, addr string) net.Listener {
	t.Helper()
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- result{err: err}
			return
		}
		target, err := netns.GetFromName(name)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			ch <- result{err: err}
			return
		}
		l, lerr := net.Listen("tcp", addr)
		if err := netns.Set(orig); err != nil {
			ch <- result{err: err} // thread stays locked and is discarded
			return
		}
		runtime.UnlockOSThread()
		ch <- result{l: l, err: lerr}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen in %s: %v", name, r.err)
	}
	return r.l
}

func TestNetworkPodReachableFromHostAndCleanedUp(t *testing.T) {
	requireRoot(t)
	const bridge = "rdnt0"
	prefix := netip.MustParsePrefix("10.244.202.0/24")
	n, err := setupNetwork(bridge, prefix, "10.96.202.0/24")
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			n.close()
		}
	})

	// A second agent on the same bridge is refused while the first holds the lock.
	if _, err := setupNetwork(bridge, prefix, ""); err == nil || !strings.Contains(err.Error(), "another running node agent") {
		t.Errorf("second agent on %s: %v", bridge, err)
	}
	// An overlapping CIDR on another bridge is refused: the first bridge's route covers it.
	if _, err := setupNetwork("rdnt1", netip.MustParsePrefix("10.244.202.0/25"), ""); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("overlapping pod CIDR: %v", err)
	}

	pn, err := n.addPod("0badcafe")
	if err != nil {
		t.Fatal(err)
	}
	if pn.ip.String() != "10.244.202.2" {
		t.Errorf("first pod address %s, want 10.244.202.2", pn.ip)
	}
	l := listenInNetns(t, pn.netns, pn.ip.String()+":8080")
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello from the pod\n")
			c.Close()
		}
	}()
	conn, err := net.DialTimeout("tcp", pn.ip.String()+":8080", 2*time.Second)
	if err != nil {
		t.Fatalf("dial pod from host: %v", err)
	}
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	got, _ := io.ReadAll(conn)
	conn.Close()
	if string(got) != "hello from the pod\n" {
		t.Errorf("read %q from the pod", got)
	}

	// The pod has no default route: only the connected pod CIDR and the Service range
	// through the bridge address.
	out, err := exec.Command("ip", "netns", "exec", pn.netns, "ip", "-4", "route", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("routes in pod: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "default") || !strings.Contains(string(out), "10.244.202.0/24") ||
		!strings.Contains(string(out), "10.96.202.0/24 via 10.244.202.1 dev eth0") {
		t.Errorf("pod routes:\n%s", out)
	}

	if err := n.removePod(pn); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(netnsDir + "/" + pn.netns); !os.IsNotExist(err) {
		t.Errorf("namespace %s left after removePod: %v", pn.netns, err)
	}
	if _, err := netlink.LinkByName(pn.hostIf); err == nil {
		t.Errorf("veth %s left after removePod", pn.hostIf)
	}

	// close removes the bridge and whatever pods are still there.
	if _, err := n.addPod("feedf00d"); err != nil {
		t.Fatal(err)
	}
	closed = true
	if err := n.close(); err != nil {
		t.Fatal(err)
	}
	links, _ := netlink.LinkList()
	for _, link := range links {
		if strings.HasPrefix(link.Attrs().Name, bridge) {
			t.Errorf("link %s left after close", link.Attrs().Name)
		}
	}
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), bridge+"-") {
			t.Errorf("namespace %s left after close", e.Name())
		}
	}
}

// TestNetnsMountSurvivesIPNetnsAdd: after the agent set up /run/netns, an
// `ip netns add` by someone else must not hide the agent's namespaces (it did
// when /run/netns was a plain folder: iproute2 bind-mounted it over itself).
func TestNetnsMountSurvivesIPNetnsAdd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("!!! SKIPPING: needs root (mounts, network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("!!! SKIPPING: iproute2's ip is not installed")
	}
	if err := ensureNetnsMount(); err != nil {
		t.Fatal(err)
	}
	// The agent's own helper: netns.NewNamed alone would leave this
	// goroutine's thread in the new namespace, where later sockets of other
	// goroutines find no 127.0.0.1.
	ns, err := newNamedNetns("rnstst-agent")
	if err != nil {
		t.Fatal(err)
	}
	ns.Close()
	t.Cleanup(func() { _ = netns.DeleteNamed("rnstst-agent") })
	if out, err := exec.Command("ip", "netns", "add", "rnstst-other").CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", "rnstst-other").Run() })
	if err := netns.DeleteNamed("rnstst-agent"); err != nil {
		t.Fatalf("the agent's namespace cannot be deleted after ip netns add: %v", err)
	}
}
