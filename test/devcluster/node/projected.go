package node

import (
	"context"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// volumeFile is one file of a volume, at a path relative to the volume.
type volumeFile struct {
	data []byte
	mode os.FileMode
}

// tokenProjection is a serviceAccountToken source of a projected volume; the token
// manager fills its file and keeps it fresh.
type tokenProjection struct {
	path              string
	audience          string
	expirationSeconds int64
	mode              os.FileMode
}

// volumeData is what a volume holds, computed once per pod the way the kubelet projects
// it: files of Secrets, ConfigMaps and downward API fields, token files, or an empty
// folder.
type volumeData struct {
	files    map[string]volumeFile
	tokens   []tokenProjection
	emptyDir bool
}

// Default modes of the kubelet (corev1.SecretVolumeSourceDefaultMode and friends).
const (
	defaultFileMode = os.FileMode(0o644)
	emptyDirMode    = os.FileMode(0o777)
)

// buildVolumes computes every volume of a pod. Supported: secret, configMap, downwardAPI,
// emptyDir and projected (serviceAccountToken, secret, configMap, downwardAPI sources);
// any other type is a podError naming the volume.
func buildVolumes(ctx context.Context, pod *corev1.Pod, podIP, hostIP string, refs refSource) (map[string]*volumeData, error) {
	out := make(map[string]*volumeData, len(pod.Spec.Volumes))
	for _, v := range pod.Spec.Volumes {
		vd := &volumeData{files: map[string]volumeFile{}}
		var err error
		switch {
		case v.Secret != nil:
			err = addSecret(ctx, vd, pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, modeOr(v.Secret.DefaultMode), refs)
		case v.ConfigMap != nil:
			err = addConfigMap(ctx, vd, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional, modeOr(v.ConfigMap.DefaultMode), refs)
		case v.DownwardAPI != nil:
			err = addDownwardAPI(vd, pod, v.DownwardAPI.Items, modeOr(v.DownwardAPI.DefaultMode), podIP, hostIP)
		case v.EmptyDir != nil:
			if v.EmptyDir.Medium != "" && v.EmptyDir.Medium != corev1.StorageMediumDefault {
				return nil, &podError{reason: "Unsupported", message: fmt.Sprintf("volume %q: emptyDir medium %q is not supported by the devcluster node", v.Name, v.EmptyDir.Medium)}
			}
			vd.emptyDir = true
		case v.Projected != nil:
			err = addProjected(ctx, vd, pod, v.Projected, podIP, hostIP, refs)
		default:
			return nil, &podError{reason: "Unsupported", message: fmt.Sprintf("volume %q: only secret, configMap, downwardAPI, emptyDir and projected volumes are supported by the devcluster node", v.Name)}
		}
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		out[v.Name] = vd
	}
	return out, nil
}

func addProjected(ctx context.Context, vd *volumeData, pod *corev1.Pod, p *corev1.ProjectedVolumeSource, podIP, hostIP string, refs refSource) error {
	mode := modeOr(p.DefaultMode)
	for i, src := range p.Sources {
		var err error
		switch {
		case src.ServiceAccountToken != nil:
			t := src.ServiceAccountToken
			if err := checkItemPath(t.Path); err != nil {
				return fmt.Errorf("sources[%d] serviceAccountToken: %w", i, err)
			}
			exp := int64(3600)
			if t.ExpirationSeconds != nil {
				exp = *t.ExpirationSeconds
			}
			vd.tokens = append(vd.tokens, tokenProjection{path: t.Path, audience: t.Audience, expirationSeconds: exp, mode: mode})
		case src.Secret != nil:
			err = addSecret(ctx, vd, pod.Namespace, src.Secret.Name, src.Secret.Items, src.Secret.Optional, mode, refs)
		case src.ConfigMap != nil:
			err = addConfigMap(ctx, vd, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, mode, refs)
		case src.DownwardAPI != nil:
			err = addDownwardAPI(vd, pod, src.DownwardAPI.Items, mode, podIP, hostIP)
		default:
			return &podError{reason: "Unsupported", message: fmt.Sprintf("projected source %d: only serviceAccountToken, secret, configMap and downwardAPI are supported by the devcluster node", i)}
		}
		if err != nil {
			return fmt.Errorf("sources[%d]: %w", i, err)
		}
	}
	return nil
}

func addSecret(ctx context.Context, vd *volumeData, ns, name string, items []corev1.KeyToPath, opt *bool, mode os.FileMode, refs refSource) error {
	data, err := refs.secret(ctx, ns, name)
	if err != nil {
		if optional(opt) {
			return nil
		}
		return fmt.Errorf("secret %q: %w", name, err)
	}
	return addKeys(vd, data, items, opt, mode)
}

func addConfigMap(ctx context.Context, vd *volumeData, ns, name string, items []corev1.KeyToPath, opt *bool, mode os.FileMode, refs refSource) error {
	cm, err := refs.configMap(ctx, ns, name)
	if err != nil {
		if optional(opt) {
			return nil
		}
		return fmt.Errorf("configMap %q: %w", name, err)
	}
	data := make(map[string][]byte, len(cm))
	for k, s := range cm {
		data[k] = []byte(s)
	}
	return addKeys(vd, data, items, opt, mode)
}

// addKeys adds every key as a file, or only the listed items at their paths and modes.
func addKeys(vd *volumeData, data map[string][]byte, items []corev1.KeyToPath, opt *bool, mode os.FileMode) error {
	if len(items) == 0 {
		for k, v := range data {
			vd.files[k] = volumeFile{data: v, mode: mode}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional(opt) {
				continue
			}
			return fmt.Errorf("key %q not found", it.Key)
		}
		if err := checkItemPath(it.Path); err != nil {
			return err
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode) & os.ModePerm
		}
		vd.files[it.Path] = volumeFile{data: v, mode: m}
	}
	return nil
}

func addDownwardAPI(vd *volumeData, pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, mode os.FileMode, podIP, hostIP string) error {
	for _, it := range items {
		if err := checkItemPath(it.Path); err != nil {
			return err
		}
		if it.FieldRef == nil {
			return fmt.Errorf("downwardAPI item %q: only fieldRef is supported by the devcluster node", it.Path)
		}
		v, err := downwardValue(pod, it.FieldRef.FieldPath, podIP, hostIP)
		if err != nil {
			return fmt.Errorf("downwardAPI item %q: %w", it.Path, err)
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode) & os.ModePerm
		}
		vd.files[it.Path] = volumeFile{data: []byte(v), mode: m}
	}
	return nil
}

// downwardValue is a downward API volume file: whole label and annotation maps are
// written as sorted key="value" lines, as the kubelet's fieldpath.FormatMap does.
func downwardValue(pod *corev1.Pod, fieldPath, podIP, hostIP string) (string, error) {
	switch fieldPath {
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	}
	return podField(pod, fieldPath, podIP, hostIP)
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// checkItemPath accepts the relative paths the API server accepts for volume items.
func checkItemPath(p string) error {
	if p == "" || path.IsAbs(p) {
		return fmt.Errorf("item path %q: must be relative and not empty", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return fmt.Errorf("item path %q: must not contain \"..\"", p)
		}
	}
	return nil
}

func modeOr(m *int32) os.FileMode {
	if m == nil {
		return defaultFileMode
	}
	return os.FileMode(*m) & os.ModePerm
}

// writeVolumeIn writes a volume into dir inside root: its files (tokens included, once the
// token manager has fetched them) with their modes, or an empty folder any user may write
// for emptyDir. gid >= 0 (the pod's fsGroup) becomes the group of every file.
func writeVolumeIn(r *os.Root, dir string, vd *volumeData, gid int) error {
	rel, err := mkdirIn(r, dir)
	if err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if vd.emptyDir {
		if err := r.Chmod(rel, emptyDirMode); err != nil {
			return err
		}
		if gid >= 0 {
			return r.Lchown(rel, -1, gid)
		}
		return nil
	}
	for _, name := range sortedKeys(vd.files) {
		f := vd.files[name]
		if err := writeFileIn(r, path.Join(rel, name), f.data, f.mode, gid); err != nil {
			return err
		}
	}
	return nil
}
