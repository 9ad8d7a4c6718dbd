package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func i32(v int32) *int32 { return &v }

// kubeAPIAccess is the volume the ServiceAccount admission plugin adds to every pod.
func kubeAPIAccess() corev1.Volume {
	exp := int64(3607)
	return corev1.Volume{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: i32(0o644),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: &exp, Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		},
	}}}
}

func TestProjectedVolumes(t *testing.T) {
	yes := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid-1", Labels: map[string]string{"b": "2", "a": "x\"y"}, Annotations: map[string]string{"k": "v"}},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			kubeAPIAccess(),
			{Name: "mixed", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "rauta", Path: "dir/token"}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "tls"}, Items: []corev1.KeyToPath{{Key: "tls.key", Path: "key", Mode: i32(0o600)}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: &yes}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
					{Path: "uid", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}},
					{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
					{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}},
				}}},
			}}}},
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		}},
	}
	refs := fakeRefs{
		cms:     map[string]map[string]string{"kube-root-ca.crt": {"ca.crt": "CA"}},
		secrets: map[string]map[string][]byte{"tls": {"tls.key": []byte("KEY"), "tls.crt": []byte("CRT")}},
	}
	vols, err := buildVolumes(context.Background(), pod, "10.0.0.1", "127.0.0.1", refs)
	if err != nil {
		t.Fatal(err)
	}
	api := vols["kube-api-access-abcde"]
	if len(api.tokens) != 1 || api.tokens[0] != (tokenProjection{path: "token", expirationSeconds: 3607, mode: 0o644}) {
		t.Errorf("kube-api-access tokens %+v", api.tokens)
	}
	if string(api.files["ca.crt"].data) != "CA" || string(api.files["namespace"].data) != "ns" {
		t.Errorf("kube-api-access files %v", api.files)
	}
	mixed := vols["mixed"]
	if len(mixed.tokens) != 1 || mixed.tokens[0] != (tokenProjection{path: "dir/token", audience: "rauta", expirationSeconds: 3600, mode: 0o644}) {
		t.Errorf("mixed tokens %+v (expirationSeconds defaults to 3600)", mixed.tokens)
	}
	want := map[string]volumeFile{
		"key":         {data: []byte("KEY"), mode: 0o600},
		"labels":      {data: []byte("a=\"x\\\"y\"\nb=\"2\""), mode: 0o644},
		"uid":         {data: []byte("uid-1"), mode: 0o644},
		"name":        {data: []byte("p"), mode: 0o644},
		"annotations": {data: []byte(`k="v"`), mode: 0o644},
	}
	if len(mixed.files) != len(want) {
		t.Errorf("mixed files %v, want %d", mixed.files, len(want))
	}
	for name, w := range want {
		if got := mixed.files[name]; string(got.data) != string(w.data) || got.mode != w.mode {
			t.Errorf("file %s: %q %o, want %q %o", name, got.data, got.mode, w.data, w.mode)
		}
	}
	if !vols["scratch"].emptyDir {
		t.Error("emptyDir not marked")
	}

	// Written into a root at a mount path that goes through an absolute symlink, as
	// /var/run -> /run in many images.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "var"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/run", filepath.Join(dir, "var", "run")); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mixed.files["dir/token"] = volumeFile{data: []byte("TOKEN"), mode: 0o644}
	if err := writeVolumeIn(r, "/var/run/secrets/x", mixed, -1); err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]string{"run/secrets/x/key": "KEY", "run/secrets/x/dir/token": "TOKEN", "run/secrets/x/labels": "a=\"x\\\"y\"\nb=\"2\""} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != w {
			t.Errorf("%s: %q, %v; want %q", name, b, err, w)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "run/secrets/x/key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode: %v, %v", fi, err)
	}
	if err := writeVolumeIn(r, "/tmp", vols["scratch"], -1); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "tmp")); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("emptyDir: %v, %v", fi, err)
	}
}

func TestProjectedVolumeErrors(t *testing.T) {
	for name, v := range map[string]corev1.VolumeSource{
		"missing secret":     {Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}}}},
		"escaping path":      {Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "../token"}}}}},
		"resourceFieldRef":   {DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{{Path: "cpu", ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}}}},
		"clusterTrustBundle": {Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{Path: "b"}}}}},
	} {
		pod := &corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: v}}}}
		if _, err := buildVolumes(context.Background(), pod, "", "", fakeRefs{}); err == nil || !strings.Contains(err.Error(), `"v"`) {
			t.Errorf("%s: error %v, want one naming the volume", name, err)
		}
	}
}

func TestTokenRefreshAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := tokenRefreshAt(t0, t0.Add(time.Hour)); !got.Equal(t0.Add(48 * time.Minute)) {
		t.Errorf("1h token renewed at %v, want after 48m", got.Sub(t0))
	}
	// A token that lives a year (the API server extends kube-api-access tokens) is still
	// renewed daily.
	if got := tokenRefreshAt(t0, t0.Add(365*24*time.Hour)); !got.Equal(t0.Add(24 * time.Hour)) {
		t.Errorf("1y token renewed at %v, want after 24h", got.Sub(t0))
	}
}
