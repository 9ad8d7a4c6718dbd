package ebpf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// topology: client netns C <-veth-> router netns R <-veth-> server netns S.
// R forwards (its own sysctl, not the host's); the observer attaches to R's
// two interfaces, so it sees each request and response twice (ingress on
// one side, egress on the other) and must de-duplicate.
type topology struct {
	prefix           string
	client, router   string // netns names
	server           string
	rClient, rServer string // router-side interface names
	clientIP         string
	serverIP         string
	serverIP6        string
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: eBPF integration tests need root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN); CI runs them as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("SKIP: iproute2 (ip) not installed")
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newTopology builds the namespaces with a unique prefix and removes them
// in t.Cleanup, also when the test fails.
func newTopology(t *testing.T) *topology {
	t.Helper()
	requireRoot(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	p := "rtob" + hex.EncodeToString(b) // 10 chars; interface names stay < 16
	n, _ := rand.Int(rand.Reader, big.NewInt(250))
	net1, net2 := fmt.Sprintf("10.%d.%d", 200+n.Int64()%50, 1+n.Int64()%120*2), fmt.Sprintf("10.%d.%d", 200+n.Int64()%50, 2+n.Int64()%120*2)
	tp := &topology{
		prefix: p, client: p + "c", router: p + "r", server: p + "s",
		rClient: p + "rc", rServer: p + "rs",
		clientIP: net1 + ".2", serverIP: net2 + ".2",
		serverIP6: "fd00:db8:2::2",
	}
	t.Cleanup(func() {
		for _, ns := range []string{tp.client, tp.router, tp.server} {
			// Deleting a namespace removes the veth ends inside it.
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, ns := range []string{tp.client, tp.router, tp.server} {
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	// client side
	run(t, "ip", "link", "add", p+"cc", "netns", tp.client, "type", "veth", "peer", "name", tp.rClient, "netns", tp.router)
	run(t, "ip", "-n", tp.client, "addr", "add", net1+".2/24", "dev", p+"cc")
	run(t, "ip", "-n", tp.client, "link", "set", p+"cc", "up")
	run(t, "ip", "-n", tp.client, "route", "add", "default", "via", net1+".1")
	run(t, "ip", "-n", tp.router, "addr", "add", net1+".1/24", "dev", tp.rClient)
	run(t, "ip", "-n", tp.router, "link", "set", tp.rClient, "up")
	// server side
	run(t, "ip", "link", "add", p+"ss", "netns", tp.server, "type", "veth", "peer", "name", tp.rServer, "netns", tp.router)
	run(t, "ip", "-n", tp.server, "addr", "add", net2+".2/24", "dev", p+"ss")
	run(t, "ip", "-n", tp.server, "link", "set", p+"ss", "up")
	run(t, "ip", "-n", tp.server, "route", "add", "default", "via", net2+".1")
	run(t, "ip", "-n", tp.router, "addr", "add", net2+".1/24", "dev", tp.rServer)
	run(t, "ip", "-n", tp.router, "link", "set", tp.rServer, "up")
	run(t, "ip", "netns", "exec", tp.router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	// IPv6 on the same links (nodad: usable at once).
	run(t, "ip", "-n", tp.client, "-6", "addr", "add", "fd00:db8:1::2/64", "dev", p+"cc", "nodad")
	run(t, "ip", "-n", tp.client, "-6", "route", "add", "default", "via", "fd00:db8:1::1")
	run(t, "ip", "-n", tp.router, "-6", "addr", "add", "fd00:db8:1::1/64", "dev", tp.rClient, "nodad")
	run(t, "ip", "-n", tp.router, "-6", "addr", "add", "fd00:db8:2::1/64", "dev", tp.rServer, "nodad")
	run(t, "ip", "-n", tp.server, "-6", "addr", "add", tp.serverIP6+"/64", "dev", p+"ss", "nodad")
	run(t, "ip", "-n", tp.server, "-6", "route", "add", "default", "via", "fd00:db8:2::1")
	run(t, "ip", "netns", "exec", tp.router, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
	return tp
}

func (tp *topology) netnsPath(name string) string { return "/var/run/netns/" + name }

// inNetns runs fn on a thread switched into the named namespace; sockets
// made there stay in it after the thread switches back.
func inNetns(name string, fn func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter netns %s: %w", name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		panic(fmt.Sprintf("cannot return to the original network namespace: %v", err))
	}
	return ferr
}

// listen opens a TCP listener inside the server namespace.
func (tp *topology) listen(t *testing.T, port int) net.Listener {
	t.Helper()
	return tp.listenOn(t, net.JoinHostPort(tp.serverIP, fmt.Sprint(port)))
}

func (tp *topology) listenOn(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := inNetns(tp.server, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dial connects from the client namespace.
func (tp *topology) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(tp.client, func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}
