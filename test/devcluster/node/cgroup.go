package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"

	"github.com/false-systems/rauta/internal/mesh"
)

// cgroupPrefix names the agent's parent cgroup: <cgroup2 mount>/rauta-devcluster-<bridge>.
// The bridge name is unique per running agent (its lock), so the parent is too.
const cgroupPrefix = "rauta-devcluster-"

// cgroupEmptyPoll is how often removePod checks whether a killed cgroup is empty.
const cgroupEmptyPoll = 10 * time.Millisecond

// cgroups owns the agent's cgroup v2 parent and one child per pod. Every process of a pod
// (containers, restarts, exec'd commands) starts inside the pod's child, through clone3's
// CLONE_INTO_CGROUP (SysProcAttr.UseCgroupFD), so it never runs a moment elsewhere and
// cgroup-attached programs (the mesh's socket hooks) see each pod as its own cgroup. No
// controller is enabled: resources and limits are still ignored.
type cgroups struct {
	parent string
	// killWait bounds how long removePod waits for a killed cgroup to empty.
	killWait time.Duration
}

// setupCgroups creates the parent under the host's cgroup2 mount (mount empty: found in
// /proc/self/mountinfo) and removes children a crashed agent of the same bridge left. It
// runs with the bridge lock held, so such children belong to no live agent.
func setupCgroups(mount, bridge string, killWait time.Duration) (*cgroups, error) {
	if mount == "" {
		m, err := mesh.Cgroup2Mount()
		if err != nil {
			return nil, fmt.Errorf("node agent needs cgroup v2 (a pod's processes get a cgroup of their own): %w", err)
		}
		mount = m
	}
	var st unix.Statfs_t
	if err := unix.Statfs(mount, &st); err != nil {
		return nil, fmt.Errorf("cgroup root %s: %w", mount, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Errorf("cgroup root %s is not a cgroup v2 file system", mount)
	}
	cg := &cgroups{parent: filepath.Join(mount, cgroupPrefix+bridge), killWait: killWait}
	if err := os.Mkdir(cg.parent, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create cgroup %s: %w", cg.parent, err)
	}
	if err := cg.removeChildren(); err != nil {
		return nil, err
	}
	return cg, nil
}

// podDir is the pod's child, named "pod<UID>" as the kubelet's cgroupfs driver names
// it: the mesh agent finds an opted-out pod's cgroup by that name (internal/mesh, podCgroups).
func (cg *cgroups) podDir(uid types.UID) string {
	return filepath.Join(cg.parent, "pod"+string(uid))
}

// addPod creates the pod's cgroup (an existing one is reused: a worker retrying prepare).
func (cg *cgroups) addPod(uid types.UID) (string, error) {
	dir := cg.podDir(uid)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("create pod cgroup %s: %w", dir, err)
	}
	return dir, nil
}

// removePod kills whatever still runs in the pod's cgroup (processes an exec left behind,
// children of containers) with cgroup.kill, waits until it is empty and removes it.
func (cg *cgroups) removePod(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("kill cgroup %s: %w", dir, err)
	}
	deadline := time.Now().Add(cg.killWait)
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(cgroupEmptyPoll)
	}
}

// removeChildren removes every pod cgroup under the parent.
func (cg *cgroups) removeChildren() error {
	entries, err := os.ReadDir(cg.parent)
	if err != nil {
		return fmt.Errorf("list cgroup %s: %w", cg.parent, err)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			errs = append(errs, cg.removePod(filepath.Join(cg.parent, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// close removes every pod cgroup and the parent.
func (cg *cgroups) close() error {
	err := cg.removeChildren()
	if rmErr := unix.Rmdir(cg.parent); rmErr != nil && !errors.Is(rmErr, unix.ENOENT) {
		err = errors.Join(err, fmt.Errorf("remove cgroup %s: %w", cg.parent, rmErr))
	}
	return err
}

// openCgroup opens a cgroup directory for SysProcAttr.CgroupFD; the caller closes it
// after the process started.
func openCgroup(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	return f, nil
}
