package node

import (
	"context"
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

// materializeVolumes writes the secret and configMap volumes of a pod into
// files under dir, one folder per volume, and returns the folders by volume
// name. Pods here are processes on the host's file system, not containers with
// their own mounts: instead of mounting, rewritePaths points every environment
// value and argument that names a path under a mountPath at these copies. The
// service-account token volume is skipped (nothing here reads it); any other
// volume type is an error naming it.
func materializeVolumes(ctx context.Context, pod *corev1.Pod, dir string, refs refSource) (map[string]string, error) {
	out := make(map[string]string)
	for _, v := range pod.Spec.Volumes {
		var data map[string][]byte
		var items []corev1.KeyToPath
		switch {
		case isServiceAccountVolume(v):
			continue
		case v.Secret != nil:
			s, err := refs.secret(ctx, pod.Namespace, v.Secret.SecretName)
			if err != nil {
				return nil, fmt.Errorf("volume %q: secret %q: %w", v.Name, v.Secret.SecretName, err)
			}
			data, items = s, v.Secret.Items
		case v.ConfigMap != nil:
			cm, err := refs.configMap(ctx, pod.Namespace, v.ConfigMap.Name)
			if err != nil {
				return nil, fmt.Errorf("volume %q: configMap %q: %w", v.Name, v.ConfigMap.Name, err)
			}
			data = make(map[string][]byte, len(cm))
			for k, s := range cm {
				data[k] = []byte(s)
			}
			items = v.ConfigMap.Items
		default:
			return nil, &podError{reason: "Unsupported", message: fmt.Sprintf("volume %q: only secret, configMap and service-account token volumes are supported by the devcluster node", v.Name)}
		}
		vdir := filepath.Join(dir, "volumes", v.Name)
		if err := writeVolume(vdir, data, items); err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		out[v.Name] = vdir
	}
	return out, nil
}

// writeVolume writes data as files: every key, or only the listed items at
// their paths, as the kubelet projects them.
func writeVolume(dir string, data map[string][]byte, items []corev1.KeyToPath) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	files := make(map[string][]byte)
	if len(items) == 0 {
		for k, v := range data {
			files[k] = v
		}
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("key %q not found", it.Key)
		}
		if filepath.IsAbs(it.Path) || strings.Contains(it.Path, "..") {
			return fmt.Errorf("item path %q: must be relative and must not contain \"..\"", it.Path)
		}
		files[it.Path] = v
	}
	for name, v := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, v, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// containerMounts lists a container's volume mounts that have files.
func containerMounts(c *corev1.Container, volumes map[string]string) ([]mount, error) {
	var out []mount
	for _, m := range c.VolumeMounts {
		dir, ok := volumes[m.Name]
		if !ok {
			continue // the service-account token
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
