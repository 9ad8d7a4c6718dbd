package mesh

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/internal/mesh"
)

// bpffs mounts a BPF file system of the test's own, unmounted at the end.
func bpffs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		t.Skipf("SKIP: cannot mount a BPF file system for the pinning test: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return filepath.Join(dir, "rauta-mesh")
}

func attachedPrograms(t *testing.T, cgroup string, at ebpf.AttachType) int {
	t.Helper()
	f, err := os.Open(cgroup)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: at})
	if err != nil {
		t.Fatalf("query %v programs: %v", at, err)
	}
	return len(res.Programs)
}

// TestRestartKeepsServiceRouting: an agent that exits keeping its pins
// leaves the programs attached and the maps filled; the next agent takes
// the maps as they are (its writer knows their content, so an unchanged
// state writes nothing), swaps its programs into the same links (one
// program per hook, not two), and a connection made before the restart
// still carries data and still shows the ClusterIP. A clean exit then
// detaches everything and removes the pins.
func TestRestartKeepsServiceRouting(t *testing.T) {
	cgroup, cg := testCgroup(t)
	pins := bpffs(t)
	a, b := tcpServer(t, "tcp4", "a"), tcpServer(t, "tcp4", "b")
	vip := vipPrefix4 + "6:80"
	udpVIP := vipPrefix4 + "6:53"
	ua := udpServer(t, "udp4", "ua")
	state := mesh.State{
		frontend(vip, mesh.TCP):    {Backends: []netip.AddrPort{a, b}},
		frontend(udpVIP, mesh.UDP): {Backends: []netip.AddrPort{ua}},
	}

	d1, err := mesh.Open(mesh.Options{Cgroup: cgroup, PinDir: pins})
	if err != nil {
		t.Fatal(err)
	}
	w1, err := d1.Writer()
	if err != nil {
		t.Fatal(err)
	}
	if err := w1.Apply(state); err != nil {
		t.Fatal(err)
	}

	// A connection held across the restart.
	hold := childCmd(t, cg, "hold", vip, 1)
	stdin, err := hold.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := hold.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Wait() }()
	defer stdin.Close()
	lines := bufio.NewReader(stdout)
	readResult := func() result {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("held connection: %v", err)
		}
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	before := readResult()
	if before.Name != "a" && before.Name != "b" {
		t.Fatalf("held connection: %+v", before)
	}

	if err := d1.Close(true); err != nil {
		t.Fatalf("close keeping pins: %v", err)
	}
	// Between the agents: still translated by the pinned programs.
	if r := runChild(t, cg, "tcp", vip, 1)[0]; r.Name != "a" && r.Name != "b" {
		t.Fatalf("with no agent running: %+v", r)
	}

	d2, err := mesh.Open(mesh.Options{Cgroup: cgroup, PinDir: pins})
	if err != nil {
		t.Fatalf("second agent: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = d2.Close(false)
		}
	})
	if n := attachedPrograms(t, cgroup, ebpf.AttachCGroupInet4Connect); n != 1 {
		t.Fatalf("after the restart %d connect4 programs are attached, want 1 (the link updated, not a second one)", n)
	}
	w2, err := d2.Writer()
	if err != nil {
		t.Fatal(err)
	}
	if w2.Frontends() != 2 || w2.Slots() != 3 {
		t.Fatalf("the second agent's writer found %d frontends and %d slots in the pinned maps, want 2 and 3", w2.Frontends(), w2.Slots())
	}
	for i, r := range runChild(t, cg, "tcp", vip, 10) {
		if r.Name != "a" && r.Name != "b" || r.Peer != vip {
			t.Fatalf("dial %d after the restart: %+v", i, r)
		}
	}
	if r := runChild(t, cg, "udp", udpVIP, 1)[0]; r.Name != "ua" || r.Peer != udpVIP {
		t.Fatalf("datagram after the restart: %+v", r)
	}
	// The original destination of the connection made before the restart
	// is in the re-used map.
	if orig, err := d2.OriginalDestination(before.Cookie); err != nil || orig.Frontend.String() != vip {
		t.Fatalf("original destination of the held connection: %+v, %v", orig, err)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	after := readResult()
	if after.Err != "" || after.Name != before.Name+":ping" || after.Peer != vip {
		t.Fatalf("held connection after the restart: %+v, want %s:ping with peer %s", after, before.Name, vip)
	}

	// A clean exit: detached, pins gone, the cgroup's sockets untouched.
	closed = true
	if err := d2.Close(false); err != nil {
		t.Fatal(err)
	}
	for _, at := range []ebpf.AttachType{ebpf.AttachCGroupInet4Connect, ebpf.AttachCGroupUDP4Recvmsg, ebpf.AttachCgroupInet6GetPeername} {
		if n := attachedPrograms(t, cgroup, at); n != 0 {
			t.Errorf("after a clean exit %d %v programs are attached", n, at)
		}
	}
	if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) {
		entries, _ := os.ReadDir(pins)
		t.Errorf("pin directory left after a clean exit: %v %v", err, entries)
	}
	if r := runChild(t, cg, "udp-connect-only", udpVIP, 1)[0]; strings.HasPrefix(r.Local, "127.") {
		t.Fatalf("after a clean exit a connect is still translated: %+v", r)
	}
}

// TestPinnedLinksFollowTheCgroup: an agent started for another cgroup
// with the same pins does not leave the old cgroup translated: the pinned
// links of the old cgroup are removed and new ones made.
func TestPinnedLinksFollowTheCgroup(t *testing.T) {
	oldCgroup, _ := testCgroup(t)
	newCgroup, _ := testCgroup(t)
	pins := bpffs(t)
	d1, err := mesh.Open(mesh.Options{Cgroup: oldCgroup, PinDir: pins})
	if err != nil {
		t.Fatal(err)
	}
	if err := d1.Close(true); err != nil {
		t.Fatal(err)
	}
	if n := attachedPrograms(t, oldCgroup, ebpf.AttachCGroupInet4Connect); n != 1 {
		t.Fatalf("kept: %d connect4 programs on the first cgroup, want 1", n)
	}
	d2, err := mesh.Open(mesh.Options{Cgroup: newCgroup, PinDir: pins})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d2.Close(false); err != nil {
			t.Error(err)
		}
	}()
	if n := attachedPrograms(t, oldCgroup, ebpf.AttachCGroupInet4Connect); n != 0 {
		t.Errorf("%d connect4 programs left on the old cgroup", n)
	}
	if n := attachedPrograms(t, newCgroup, ebpf.AttachCGroupInet4Connect); n != 1 {
		t.Errorf("%d connect4 programs on the new cgroup, want 1", n)
	}
}
