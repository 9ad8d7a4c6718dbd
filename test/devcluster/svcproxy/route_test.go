package svcproxy

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("!!! skipping: needs root to add routes to the local table; CI runs as root")
	}
}

func localTable(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-4", "route", "show", "table", "local").CombinedOutput()
	if err != nil {
		t.Fatalf("ip route show table local: %v\n%s", err, out)
	}
	return string(out)
}

func TestLocalRange(t *testing.T) {
	requireRoot(t)
	prefix := netip.MustParsePrefix("10.96.230.0/24")
	const want = "local 10.96.230.0/24 dev lo"
	r, err := claimLocalRange(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.release() })
	if !strings.Contains(localTable(t), want) || !r.routed() {
		t.Fatalf("route missing after claim:\n%s", localTable(t))
	}
	// Any address of the range can be bound, and reached from the host.
	ln, err := net.Listen("tcp4", "10.96.230.77:0")
	if err != nil {
		t.Fatalf("bind inside the range: %v", err)
	}
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial inside the range: %v", err)
	}
	c.Close()
	ln.Close()

	// A second claim while the first is held is refused.
	if _, err := claimLocalRange(prefix); err == nil || !strings.Contains(err.Error(), "another running cluster") {
		t.Errorf("second claim: %v", err)
	}

	// A crash leaves the route but frees the lock: the next claim takes the route over and
	// its release removes it.
	r.unlock()
	r.route = nil
	r2, err := claimLocalRange(prefix)
	if err != nil {
		t.Fatalf("claim over a stale route: %v", err)
	}
	if err := r2.release(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(localTable(t), want) {
		t.Errorf("route left after release:\n%s", localTable(t))
	}

	// A pool inside 127.0.0.0/8 is local already: no route is added or removed.
	lb, err := claimLocalRange(netip.MustParsePrefix("127.0.213.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	if lb.routed() || strings.Contains(localTable(t), "127.0.213.0/24") {
		t.Errorf("route added for a loopback pool:\n%s", localTable(t))
	}
	if err := lb.release(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(localTable(t), "local 127.0.0.0/8") {
		t.Errorf("127.0.0.0/8 gone:\n%s", localTable(t))
	}
}

func TestLocalRangeRefusesOverlap(t *testing.T) {
	requireRoot(t)
	// 127.0.0.1/32 is a host address inside this range; a range containing the host's own
	// addresses must never become "all local".
	if r, err := claimLocalRange(netip.MustParsePrefix("127.0.0.0/7")); err == nil {
		r.release()
		t.Fatal("a range overlapping 127.0.0.0/8 was claimed")
	}
}
