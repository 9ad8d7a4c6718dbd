package ebpf

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/internal/observe"
)

// TestHelperObserverProcess is the child that TestClsactRestartAfterSIGKILL
// kills with SIGKILL: a whole observer process configured from the
// environment, as the DaemonSet runs it. Alone it does nothing.
func TestHelperObserverProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "observer" {
		return
	}
	cfg := observe.Defaults()
	fs := flag.NewFlagSet("observe", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := observe.Run(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
		t.Fatal(err)
	}
}

// startObserverProcess runs the helper observer in clsact mode on the
// router's interfaces and waits until its metrics answer.
func startObserverProcess(t *testing.T, tp *topology) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperObserverProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=observer",
		"RAUTA_INTERFACE="+tp.rClient+","+tp.rServer, "RAUTA_NETNS="+tp.netnsPath(tp.router),
		"RAUTA_OBSERVE_MODE=clsact", "RAUTA_KUBE=off", "RAUTA_METRICS_ADDR="+addr, "RAUTA_RING_BYTES=1048576", "RAUTA_RING_WAKEUP_BYTES=262144")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("observer process output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if res, err := http.Get("http://" + addr + "/metrics"); err == nil {
			res.Body.Close()
			return cmd, exited
		}
		select {
		case <-exited:
			t.Fatalf("observer process exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("observer process did not come up within 20s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// routerFilters lists the bpf filters on both clsact parents of dev in the
// router namespace: "name@prio" for each.
func routerFilters(t *testing.T, tp *topology, dev string) []string {
	t.Helper()
	var out []string
	err := withRouterNetlink(tp, func(h *netlink.Handle) error {
		l, err := h.LinkByName(dev)
		if err != nil {
			return err
		}
		for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
			fs, err := h.FilterList(l, parent)
			if err != nil {
				return err
			}
			for _, f := range fs {
				if bf, ok := f.(*netlink.BpfFilter); ok {
					out = append(out, fmt.Sprintf("%s@%d", bf.Name, bf.Priority))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func withRouterNetlink(tp *topology, fn func(h *netlink.Handle) error) error {
	ns, err := netns.GetFromName(tp.router)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(h)
}

func countPrefix(names []string, prefix string) int {
	n := 0
	for _, s := range names {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func hasClsact(t *testing.T, tp *topology, dev string) bool {
	t.Helper()
	q, _ := exec.Command("ip", "netns", "exec", tp.router, "tc", "qdisc", "show", "dev", dev).CombinedOutput()
	return strings.Contains(string(q), "clsact")
}

// sendAndCount sends n requests with a tag and returns how many of them
// the observer reported.
func sendAndCount(t *testing.T, tp *topology, obs *runningObserver, addr, tag string, n int) int {
	t.Helper()
	c := httpClient(tp, true)
	for i := range n {
		do(t, c, "GET", fmt.Sprintf("http://%s/ok?%s=%d", addr, tag, i), "")
	}
	count := func(r []record) int {
		k := 0
		for _, e := range exchanges(r) {
			if strings.Contains(e.Target, "?"+tag+"=") {
				k++
			}
		}
		return k
	}
	return count(obs.waitRecords(t, func(r []record) bool { return count(r) >= n }))
}

// TestClsactRestartAfterSIGKILL (issue 16 point 6): an observer process
// killed with SIGKILL leaves its clsact filters behind; the next start on
// the same interfaces must work (it failed with "file exists", a restart
// loop on kernels before 6.6), see traffic, and leave no filter behind
// when it stops.
func TestClsactRestartAfterSIGKILL(t *testing.T) {
	tp := newTopology(t)
	addr := startServer(t, tp, 8080)
	cmd, exited := startObserverProcess(t, tp)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if n := countPrefix(routerFilters(t, tp, tp.rServer), "rauta_observe_"); n != 2 {
		t.Fatalf("after SIGKILL the killed observer's filters should still be there (2), found %d: %v", n, routerFilters(t, tp, tp.rServer))
	}

	obs := startObserver(t, tp, "clsact", nil)
	if got := sendAndCount(t, tp, obs, addr, "after-kill", 10); got != 10 {
		t.Errorf("restarted observer saw %d of 10 requests", got)
	}
	for _, dev := range []string{tp.rClient, tp.rServer} {
		if n := countPrefix(routerFilters(t, tp, dev), "rauta_observe_"); n != 2 {
			t.Errorf("%s: %d observer filters while one observer runs, want 2 (the dead one's removed): %v", dev, n, routerFilters(t, tp, dev))
		}
	}
	obs.stop(t)
	for _, dev := range []string{tp.rClient, tp.rServer} {
		if fs := routerFilters(t, tp, dev); len(fs) != 0 {
			t.Errorf("%s: filters left after stop: %v", dev, fs)
		}
	}
}

// TestClsactTwoObservers (issue 16 point 6): a second observer on the same
// interfaces used to fail with "file exists"; both must see the traffic,
// and stopping one must leave the other's filters and the qdisc.
func TestClsactTwoObservers(t *testing.T) {
	tp := newTopology(t)
	addr := startServer(t, tp, 8080)
	a := startObserver(t, tp, "clsact", nil)
	b := startObserver(t, tp, "clsact", nil)
	const n = 10
	c := httpClient(tp, true)
	for i := range n {
		do(t, c, "GET", fmt.Sprintf("http://%s/ok?both=%d", addr, i), "")
	}
	for name, o := range map[string]*runningObserver{"first": a, "second": b} {
		recs := o.waitRecords(t, func(r []record) bool { return len(exchanges(r)) >= n })
		if got := len(exchanges(recs)); got != n {
			t.Errorf("%s observer saw %d of %d requests", name, got, n)
		}
	}
	a.stop(t)
	if n := countPrefix(routerFilters(t, tp, tp.rServer), "rauta_observe_"); n != 2 {
		t.Errorf("after the first observer stopped, %d observer filters remain, want the second's 2", n)
	}
	if got := sendAndCount(t, tp, b, addr, "second-only", 5); got != 5 {
		t.Errorf("second observer saw %d of 5 requests after the first stopped", got)
	}
	b.stop(t)
	assertDetached(t, tp, "clsact")
}

// foreignProgram is another agent's TC program: it passes everything.
func foreignProgram(t *testing.T) *ebpf.Program {
	t.Helper()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SchedCLS,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, -1), // TC_ACT_UNSPEC
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatalf("load foreign program: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestClsactForeignFilterSurvivesTeardown (issue 16 point 6): another
// agent adds its filter to the clsact qdisc the observer created; the
// observer's teardown used to delete the qdisc and with it that filter.
func TestClsactForeignFilterSurvivesTeardown(t *testing.T) {
	tp := newTopology(t)
	obs := startObserver(t, tp, "clsact", nil)
	prog := foreignProgram(t)
	err := withRouterNetlink(tp, func(h *netlink.Handle) error {
		l, err := h.LinkByName(tp.rServer)
		if err != nil {
			return err
		}
		return h.FilterAdd(&netlink.BpfFilter{
			FilterAttrs: netlink.FilterAttrs{LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_MIN_INGRESS,
				Handle: netlink.MakeHandle(0, 1), Protocol: unix.ETH_P_ALL, Priority: 1},
			Fd: prog.FD(), Name: "other_agent", DirectAction: true,
		})
	})
	if err != nil {
		t.Fatalf("add foreign filter: %v", err)
	}
	obs.stop(t)
	fs := routerFilters(t, tp, tp.rServer)
	if countPrefix(fs, "other_agent") != 1 {
		t.Errorf("foreign filter gone after the observer's teardown: %v", fs)
	}
	if countPrefix(fs, "rauta_observe_") != 0 {
		t.Errorf("observer filters left: %v", fs)
	}
	if !hasClsact(t, tp, tp.rServer) {
		t.Error("clsact qdisc holding a foreign filter was deleted")
	}
	// The interface without foreign filters is cleaned up entirely.
	if hasClsact(t, tp, tp.rClient) {
		t.Errorf("%s: clsact qdisc the observer created and nobody else uses was left", tp.rClient)
	}
}
