package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type fakeRefs struct {
	cms     map[string]map[string]string
	secrets map[string]map[string][]byte
}

func (f fakeRefs) configMap(_ context.Context, _, name string) (map[string]string, error) {
	if cm, ok := f.cms[name]; ok {
		return cm, nil
	}
	return nil, os.ErrNotExist
}

func (f fakeRefs) secret(_ context.Context, _, name string) (map[string][]byte, error) {
	if s, ok := f.secrets[name]; ok {
		return s, nil
	}
	return nil, os.ErrNotExist
}

func TestVolumesAreMaterialisedAndPathsRewritten(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "certs", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: "tls", Items: []corev1.KeyToPath{{Key: "tls.crt", Path: "crt"}}}}},
			{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
			{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}},
		}},
	}
	refs := fakeRefs{
		cms:     map[string]map[string]string{"cfg": {"Corefile": ".:53 {}"}},
		secrets: map[string]map[string][]byte{"tls": {"tls.crt": []byte("CERT"), "tls.key": []byte("KEY")}},
	}
	dir := t.TempDir()
	data, err := buildVolumes(context.Background(), pod, "10.244.0.9", "127.0.0.1", refs)
	if err != nil {
		t.Fatal(err)
	}
	vols, err := writeHostVolumes(data, dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(vols["certs"], "crt")); err != nil || string(b) != "CERT" {
		t.Fatalf("secret item: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(vols["certs"], "tls.key")); !os.IsNotExist(err) {
		t.Fatalf("a key not listed in items was written: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(vols["conf"], "Corefile")); err != nil || string(b) != ".:53 {}" {
		t.Fatalf("configMap key: %q, %v", b, err)
	}
	c := &corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{
		{Name: "certs", MountPath: "/etc/secret-volume/"}, {Name: "conf", MountPath: "/root"}, {Name: "kube-api-access-x", MountPath: "/var/run/secrets"}}}
	mounts, err := containerMounts(c, vols)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"/etc/secret-volume/crt": filepath.Join(vols["certs"], "crt"),
		"/root/Corefile":         filepath.Join(vols["conf"], "Corefile"),
		"/root":                  vols["conf"],
		"/rootless/x":            "/rootless/x", // a prefix of the path, not of a path segment
		"plain":                  "plain",
	} {
		if got := rewritePaths(in, mounts); got != want {
			t.Errorf("rewritePaths(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnsupportedVolumeIsNamed(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{
		{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}}}
	_, err := buildVolumes(context.Background(), pod, "", "", fakeRefs{})
	if err == nil || !strings.Contains(err.Error(), `volume "data"`) {
		t.Fatalf("want an error naming the volume, got %v", err)
	}
}
