package mesh

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/internal/mesh"
)

// subCgroup makes a cgroup under parent, removed at the end (before the
// parent: cleanups run last-in first-out), and opens it for
// CLONE_INTO_CGROUP. It returns the descriptor and the cgroup's id.
func subCgroup(t *testing.T, parent, name string) (*os.File, uint64) {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	removeCgroupAtEnd(t, dir, f)
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return f, st.Ino
}

// TestOptOutSkipsSteering: a process in an opted-out cgroup, or in a cgroup
// below it (a pod's container), connects to a steered frontend's endpoint
// instead of the mesh proxy, still sees the ClusterIP as its peer; a
// sibling cgroup is steered; emptying the set steers them all again.
func TestOptOutSkipsSteering(t *testing.T) {
	cgroup, _ := testCgroup(t)
	d, w := openDatapath(t, cgroup)
	ep := tcpServer(t, "tcp4", "endpoint")
	proxy, _ := proxyServer(t, d)
	vip := vipPrefix4 + "7:80"
	if err := w.Apply(mesh.State{frontend(vip, mesh.TCP): {Backends: []netip.AddrPort{ep}, Steer: true}}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetProxy(proxy, netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	pod, podID := subCgroup(t, cgroup, "pod-out")
	container, _ := subCgroup(t, filepath.Join(cgroup, "pod-out"), "container")
	other, _ := subCgroup(t, cgroup, "pod-in")
	steered := "proxy for " + vip

	expect := func(when string, cg *os.File, want string) {
		t.Helper()
		r := runChild(t, cg, "tcp", vip, 1)[0]
		if r.Name != want || r.Peer != vip {
			t.Errorf("%s: %+v, want %q with peer %s", when, r, want, vip)
		}
	}
	expect("before any opt-out, a pod", pod, steered)

	if err := d.SetOptOut([]uint64{podID}); err != nil {
		t.Fatal(err)
	}
	expect("opted-out pod cgroup", pod, "endpoint")
	expect("a cgroup below the opted-out one", container, "endpoint")
	expect("a sibling cgroup", other, steered)

	if err := d.SetOptOut(nil); err != nil {
		t.Fatal(err)
	}
	expect("after the opt-out was withdrawn, the pod", pod, steered)
	expect("after the opt-out was withdrawn, below the pod", container, steered)
}

// TestOptOutMapJoinsOlderPins: pins of an agent without mesh_optout (an
// older version, kept with -keep-attached) are taken over by this one,
// which pins its new map next to them; its opt-out set then works, and a
// clean exit removes every pin.
func TestOptOutMapJoinsOlderPins(t *testing.T) {
	cgroup, _ := testCgroup(t)
	pins := bpffs(t)
	old, err := mesh.Open(mesh.Options{Cgroup: cgroup, PinDir: pins})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Close(true); err != nil {
		t.Fatal(err)
	}
	// What an older agent leaves: everything but the new map.
	if err := os.Remove(filepath.Join(pins, "mesh_optout")); err != nil {
		t.Fatal(err)
	}
	d, err := mesh.Open(mesh.Options{Cgroup: cgroup, PinDir: pins})
	if err != nil {
		t.Fatalf("open on pins without mesh_optout: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = d.Close(false)
		}
	})
	if _, err := os.Stat(filepath.Join(pins, "mesh_optout")); err != nil {
		t.Errorf("mesh_optout not pinned next to the older pins: %v", err)
	}
	if err := d.SetOptOut([]uint64{1, 2}); err != nil {
		t.Errorf("opt-out set on the new map: %v", err)
	}
	closed = true
	if err := d.Close(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pins); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(pins)
		t.Errorf("pins left after a clean exit: %v (%v)", entries, err)
	}
}
