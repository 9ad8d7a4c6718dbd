package ebpf

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/observe"
)

// recreateServerLink deletes the router-server veth pair and builds it
// again with the same names and addresses: the router side gets a new
// ifindex, as a pod's veth does when the pod is recreated.
func (tp *topology) recreateServerLink(t *testing.T) {
	t.Helper()
	p := tp.prefix
	net2 := tp.serverIP[:strings.LastIndexByte(tp.serverIP, '.')]
	run(t, "ip", "-n", tp.router, "link", "del", tp.rServer)
	run(t, "ip", "link", "add", p+"ss", "netns", tp.server, "type", "veth", "peer", "name", tp.rServer, "netns", tp.router)
	run(t, "ip", "-n", tp.server, "addr", "add", net2+".2/24", "dev", p+"ss")
	run(t, "ip", "-n", tp.server, "link", "set", p+"ss", "up")
	run(t, "ip", "-n", tp.server, "route", "add", "default", "via", net2+".1")
	run(t, "ip", "-n", tp.router, "addr", "add", net2+".1/24", "dev", tp.rServer)
	run(t, "ip", "-n", tp.router, "link", "set", tp.rServer, "up")
}

// TestReattachAfterInterfaceRecreated (issue 16 point 8): a deleted and
// recreated interface was not attached again, so the observer went blind
// on it for good. Observed only on the server-side interface, so that
// nothing is seen unless that interface is hooked.
func TestReattachAfterInterfaceRecreated(t *testing.T) {
	for _, mode := range []string{"tcx", "clsact"} {
		t.Run(mode, func(t *testing.T) {
			tp := newTopology(t)
			addr := startServer(t, tp, 8080)
			obs := startObserverOn(t, tp, mode, []string{tp.rServer}, nil)
			if got := sendAndCount(t, tp, obs, addr, "before", 5); got != 5 {
				t.Fatalf("saw %d of 5 requests before the interface was recreated", got)
			}
			tp.recreateServerLink(t)
			// Re-attachment follows the netlink notification; give it a
			// generous 10 s (the resync alone would do it within 10 s),
			// then judge by the traffic itself.
			deadline := time.Now().Add(10 * time.Second)
			for obs.metric(t, "rauta_observer_reattachments_total", "") < 1 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if got := sendAndCount(t, tp, obs, addr, "after", 5); got != 5 {
				t.Errorf("saw %d of 5 requests after the interface was recreated", got)
			}
			obs.stop(t)
			assertDetachedFrom(t, tp, mode, []string{tp.rServer})
		})
	}
}

// TestXDPOnPodSideInterfaceRefused (issue 16 point 8): -mode xdp on one
// interface started and turned every exchange into a timeout; Run now
// refuses it and says why.
func TestXDPOnPodSideInterfaceRefused(t *testing.T) {
	tp := newTopology(t)
	cfg := observe.Defaults()
	cfg.Interfaces = []string{tp.rServer}
	cfg.Netns = tp.netnsPath(tp.router)
	cfg.Mode = "xdp"
	cfg.Kube = "off"
	cfg.MetricsAddr = "off"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := observe.Run(ctx, cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err == nil || !strings.Contains(err.Error(), "XDP sees only packets entering") {
		t.Fatalf("Run with xdp on one interface: %v, want a refusal that explains", err)
	}
}
