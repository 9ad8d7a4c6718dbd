package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// mount is a volume seen by one container: where the pod spec mounts it and
// where its files really are.
type mount struct {
	mountPath string
	hostDir   string
}

// writeHostVolumes writes the volumes of a pod with binary containers into files under
// dir, one folder per volume, and returns the folders by volume name. Those containers are
// processes on the host's file system, not containers with their own root: instead of
// mounting, rewritePaths points every environment value and argument that names a path
// under a mountPath at these copies. (Image containers get the volumes inside their root
// instead, see buildRoot.)
func writeHostVolumes(vols map[string]*volumeData, dir string) (map[string]string, error) {
	out := make(map[string]string, len(vols))
	for _, name := range sortedKeys(vols) {
		vdir := filepath.Join(dir, "volumes", name)
		if err := os.MkdirAll(vdir, 0o700); err != nil {
			return nil, err
		}
		r, err := os.OpenRoot(vdir)
		if err != nil {
			return nil, err
		}
		err = writeVolumeIn(r, ".", vols[name], -1)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", name, err)
		}
		out[name] = vdir
	}
	return out, nil
}

// containerMounts lists a container's volume mounts that have files.
func containerMounts(c *corev1.Container, volumes map[string]string) ([]mount, error) {
	var out []mount
	for _, m := range c.VolumeMounts {
		dir, ok := volumes[m.Name]
		if !ok {
			return nil, &podError{reason: "CreateContainerConfigError", message: fmt.Sprintf("container %q volumeMount %q: no volume of that name", c.Name, m.Name)}
		}
		if m.SubPath != "" || m.SubPathExpr != "" {
			return nil, &podError{reason: "Unsupported", message: fmt.Sprintf("container %q volumeMount %q: subPath is not supported by the devcluster node", c.Name, m.Name)}
		}
		out = append(out, mount{mountPath: filepath.Clean(m.MountPath), hostDir: dir})
	}
	return out, nil
}

// rewritePaths points a value that names a file under a mount at the copy.
func rewritePaths(s string, mounts []mount) string {
	for _, m := range mounts {
		if s == m.mountPath {
			return m.hostDir
		}
		if rest, ok := strings.CutPrefix(s, m.mountPath+"/"); ok {
			return filepath.Join(m.hostDir, rest)
		}
	}
	return s
}
