package observe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/internal/observe/enrich"
)

// The pod of a TLS exchange's process. Each TLS record carries the cgroup
// of the thread that made the library call (bpf_get_current_cgroup_id:
// the cgroup v2 directory's kernfs id). The first record of a cgroup
// resolves the id to the directory's path, and keeps the pod key the path
// names (enrich.PodKeyOfCgroup):
//
//   - by the id itself: open_by_handle_at on the cgroup2 mount with a
//     kernfs file handle (the id) opens the directory, whose path
//     /proc/self/fd gives; this works after the process exited (curl is
//     gone before its records are read), needs CAP_DAC_READ_SEARCH and the
//     host's cgroup2 mount (-tls-cgroup-root);
//   - else from /proc/PID/cgroup of the record's process, which was in the
//     cgroup a moment ago (gone processes stay unknown, counted).
//
// Cgroup v2 ids are never reused, so a key stays right for its id; a
// process that moves to another cgroup brings a new id. The enrichment's
// pods by UID turn the key into the pod and namespace when the exchange
// is reported, so a pod the API server reports late is still named.

// procInfo is what is kept of a process that made TLS calls.
type procInfo struct {
	comm   string
	cgroup uint64
	podKey string
}

// fileIDKernfs is the kernel's FILEID_KERNFS handle type: the handle is
// the node's 64-bit id, which for a cgroup is bpf_get_current_cgroup_id's.
const fileIDKernfs = 0xfe

// cgroupRoots are where a cgroup2 file system is looked for when
// -tls-cgroup-root is not given: unified hosts mount it at the first,
// hybrid ones (cgroup v1 controllers too) at the second.
var cgroupRoots = [...]string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}

// openCgroupRoot opens the cgroup2 mount ids are resolved on: root, or
// the first of cgroupRoots that is one. -1 and the error when none is.
func openCgroupRoot(root string) (int, error) {
	candidates := cgroupRoots[:]
	if root != "" {
		candidates = []string{root}
	}
	for _, r := range candidates {
		var st unix.Statfs_t
		if unix.Statfs(r, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
			continue
		}
		fd, err := unix.Open(r, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("open cgroup2 mount %s: %w", r, err)
		}
		return fd, nil
	}
	return -1, fmt.Errorf("no cgroup2 file system at %v", candidates)
}

var errNoCgroupRoot = errors.New("no cgroup2 mount open")

// cgroupPathOf returns the path of cgroup id, from the cgroup2 mount open
// at rootFD.
func cgroupPathOf(rootFD int, id uint64) (string, error) {
	var h [8]byte
	binary.NativeEndian.PutUint64(h[:], id)
	fd, err := unix.OpenByHandleAt(rootFD, unix.NewFileHandle(fileIDKernfs, h[:]), unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("open cgroup %d by handle: %w", id, err)
	}
	defer unix.Close(fd)
	return os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
}

// cgroupPodKey returns the pod key of cgroup id, resolving it on its first
// sight (by handle, else from pid's /proc/PID/cgroup). Both caches are
// bounded by commLimit (cleared when full: they refill from the next
// records).
func (t *tlsSource) cgroupPodKey(id uint64, pid uint32) string {
	if key, ok := t.cgroupKeys[id]; ok {
		return key
	}
	var key string
	path, err := "", errNoCgroupRoot
	if t.cgroupRoot >= 0 {
		path, err = cgroupPathOf(t.cgroupRoot, id)
	}
	if err == nil {
		key = enrich.PodKeyOfCgroup(path)
	} else if data, err := os.ReadFile(t.proc + "/" + strconv.FormatUint(uint64(pid), 10) + "/cgroup"); err == nil {
		key = podKeyOfProcCgroup(data)
	} else {
		// Neither: unknown, not "no pod"; the next record of the
		// cgroup tries again.
		t.cgroupMisses++
		return ""
	}
	if len(t.cgroupKeys) >= commLimit {
		clear(t.cgroupKeys)
	}
	t.cgroupKeys[id] = key
	return key
}

// podKeyOfProcCgroup reads /proc/PID/cgroup: on cgroup v2 one line,
// "0::<path>"; with v1 hierarchies mounted too, the v2 line is the one
// with hierarchy 0.
func podKeyOfProcCgroup(data []byte) string {
	for line := range bytes.Lines(data) {
		if path, ok := bytes.CutPrefix(bytes.TrimRight(line, "\n"), []byte("0::")); ok {
			return enrich.PodKeyOfCgroup(string(path))
		}
	}
	return ""
}

// processPod names the pod of a TLS exchange's process, when the
// enrichment knows pods by UID.
func (p *pipeline) processPod(pid uint32) enrich.Info {
	if p.tls == nil || pid == 0 || p.pods == nil {
		return enrich.Info{}
	}
	key := p.tls.procs[pid].podKey
	if key == "" {
		return enrich.Info{}
	}
	info, _ := p.pods.PodByKey(key)
	return info
}
