package mesh

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultCgroup is the root of the cgroup v2 hierarchy on a unified host:
// attached there, the programs translate every process of the node.
const DefaultCgroup = "/sys/fs/cgroup"

// ResolveCgroup returns the cgroup v2 directory to attach to. A path on a
// cgroup2 file system is used as it is. The default on a hybrid host (v1
// controllers, /sys/fs/cgroup a tmpfs) is replaced by the host's cgroup2
// mount, usually /sys/fs/cgroup/unified; any other path must be cgroup2.
func ResolveCgroup(path string) (string, error) {
	ok, err := isCgroup2(path)
	if err != nil {
		return "", fmt.Errorf("cgroup %s: %w", path, err)
	}
	if ok {
		return path, nil
	}
	if filepath.Clean(path) == DefaultCgroup {
		if m, err := Cgroup2Mount(); err == nil {
			return m, nil
		}
	}
	return "", fmt.Errorf("cgroup %s is not on a cgroup v2 file system (a hybrid or v1-only host; give the cgroup2 mount, e.g. /sys/fs/cgroup/unified)", path)
}

func isCgroup2(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, err
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC, nil
}

// Cgroup2Mount is where the host's cgroup v2 hierarchy is mounted, from
// /proc/self/mountinfo.
func Cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		fields := strings.Fields(sc.Text())
		for i, x := range fields {
			if x == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				return fields[4], nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no cgroup2 file system is mounted")
}

// cgroupID is the kernel's id of a cgroup v2 directory (its inode), as
// link info reports it.
func cgroupID(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}
