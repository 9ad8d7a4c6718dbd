package observe

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCgroupPodKey: the pod key of a cgroup comes from the cgroup v2 line
// of its process's /proc/PID/cgroup (hybrid hierarchies list v1 lines
// too), is kept by cgroup id (a later process of the same cgroup is not
// read), and a process that is gone leaves the id unknown, to be read
// again from its next record's process.
func TestCgroupPodKey(t *testing.T) {
	proc := t.TempDir()
	write := func(pid, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "cgroup"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10", "4:memory:/kubepods/x\n0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0b5c8a1e_3f2d_4c6b_9a7e_1d2c3b4a5f60.slice/cri-containerd-1.scope\n")
	write("11", "0::/system.slice/sshd.service\n")
	write("12", "0::/rauta-devcluster-rdc0/pod-1a2b3c4d\n")
	src := &tlsSource{cgroupKeys: map[uint64]string{}, cgroupRoot: -1, proc: proc}
	for _, c := range []struct {
		id   uint64
		pid  uint32
		want string
	}{
		{100, 10, "0b5c8a1e-3f2d-4c6b-9a7e-1d2c3b4a5f60"},
		{101, 11, ""},
		{102, 12, "pod-1a2b3c4d"},
		{100, 11, "0b5c8a1e-3f2d-4c6b-9a7e-1d2c3b4a5f60"}, // kept by id: pid 11's file is not read
		{103, 99, ""}, // no such process
	} {
		if got := src.cgroupPodKey(c.id, c.pid); got != c.want {
			t.Errorf("cgroup %d of pid %d: %q, want %q", c.id, c.pid, got, c.want)
		}
	}
	if _, kept := src.cgroupKeys[103]; kept || src.cgroupMisses != 1 {
		t.Errorf("gone process: kept %v, misses %d; want not kept, 1 miss", kept, src.cgroupMisses)
	}
	write("99", "0::/rauta-devcluster-rdc0/pod-00000001\n")
	if got := src.cgroupPodKey(103, 99); got != "pod-00000001" {
		t.Errorf("cgroup 103 once its process is readable: %q", got)
	}
}

// TestCgroupPathByID (root, a cgroup2 mount): a cgroup's id (its
// directory's inode, what bpf_get_current_cgroup_id returns) opens the
// directory by handle, without any process in it, and names its path;
// a removed cgroup's id resolves to nothing.
func TestCgroupPathByID(t *testing.T) {
	rootFD, err := openCgroupRoot("")
	if err != nil {
		t.Skipf("SKIP: %v", err)
	}
	defer unix.Close(rootFD)
	root, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(rootFD))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "rauta-observe-test-"+strconv.Itoa(os.Getpid()), "kubepods", "pod0b5c8a1e-3f2d-4c6b-9a7e-1d2c3b4a5f60")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Skipf("SKIP: cannot create a cgroup (not root?): %v", err)
	}
	t.Cleanup(func() {
		for d := dir; d != root; d = filepath.Dir(d) {
			_ = unix.Rmdir(d)
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	path, err := cgroupPathOf(rootFD, st.Ino)
	if err != nil || path != dir {
		t.Fatalf("cgroup %d: %q %v, want %q", st.Ino, path, err, dir)
	}
	src := &tlsSource{cgroupKeys: map[uint64]string{}, cgroupRoot: rootFD, proc: t.TempDir()}
	if got := src.cgroupPodKey(st.Ino, 1<<31); got != "0b5c8a1e-3f2d-4c6b-9a7e-1d2c3b4a5f60" {
		t.Errorf("pod key of cgroup %d (no process, no /proc): %q", st.Ino, got)
	}
	if err := unix.Rmdir(dir); err != nil {
		t.Fatal(err)
	}
	if path, err := cgroupPathOf(rootFD, st.Ino); err == nil {
		t.Errorf("removed cgroup resolved to %q", path)
	}
}
