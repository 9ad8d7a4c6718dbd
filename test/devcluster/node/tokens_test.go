package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestTokenRefresh drives a pod worker's token manager with a fake TokenRequest API and
// a fake clock: tokens are renewed at 80% of their lifetime, written (by rename) into the
// host copy and into every image container root that mounts the volume, and a failed
// request keeps the old token and waits 10 s.
func TestTokenRefresh(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	calls := 0
	fail := false
	var audiences []string
	var issuedAt time.Time // the fake API server's clock
	req := func(_ context.Context, pod *corev1.Pod, audience string, exp int64) ([]byte, time.Time, error) {
		calls++
		audiences = append(audiences, audience)
		if fail {
			return nil, time.Time{}, errors.New("api server down")
		}
		return []byte(fmt.Sprintf("T%d-%s", calls, pod.Name)), issuedAt.Add(time.Duration(exp) * time.Second), nil
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	vols := map[string]*volumeData{"tok": {files: map[string]volumeFile{}, tokens: []tokenProjection{{path: "token", audience: "rauta", expirationSeconds: 600, mode: 0o644}}}}
	w := &podWorker{pod: pod, deps: &workerDeps{tokens: req}}
	issuedAt = t0
	tokens, err := w.fetchTokens(context.Background(), vols, t0)
	if err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	root := t.TempDir()
	w.volumes, w.tokens = vols, tokens
	w.hostVolumes = map[string]string{"tok": host}
	w.containers = []*container{{image: &unpackedImage{}, root: root, mounts: []imageMount{{volume: "tok", mountPath: "/var/run/secrets/tok"}}}}
	if string(vols["tok"].files["token"].data) != "T1-p" || audiences[0] != "rauta" {
		t.Fatalf("first token %q audiences %v", vols["tok"].files["token"].data, audiences)
	}
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return string(b)
	}

	w.refreshTokens(context.Background(), t0.Add(479*time.Second))
	if calls != 1 {
		t.Fatalf("renewed before 80%% of the lifetime: %d requests", calls)
	}
	issuedAt = t0.Add(480 * time.Second)
	w.refreshTokens(context.Background(), issuedAt)
	if calls != 2 {
		t.Fatalf("not renewed at 80%% of the lifetime: %d requests", calls)
	}
	for _, p := range []string{filepath.Join(host, "token"), filepath.Join(root, "var/run/secrets/tok/token")} {
		if got := read(p); got != "T2-p" {
			t.Errorf("%s: %q after renewal, want T2-p", p, got)
		}
	}

	// Due again at 480+480 s; the API fails: the old token stays, no retry for 10 s.
	fail = true
	at := issuedAt.Add(480 * time.Second)
	w.refreshTokens(context.Background(), at)
	w.refreshTokens(context.Background(), at.Add(9*time.Second))
	if calls != 3 {
		t.Fatalf("%d requests, want 3 (one failed try, no retry within 10 s)", calls)
	}
	if got := read(filepath.Join(root, "var/run/secrets/tok/token")); got != "T2-p" {
		t.Errorf("token after a failed renewal %q, want the old one", got)
	}
	fail = false
	issuedAt = at.Add(10 * time.Second)
	w.refreshTokens(context.Background(), issuedAt)
	if calls != 4 || read(filepath.Join(host, "token")) != "T4-p" {
		t.Errorf("retry after 10 s: %d requests, token %q", calls, read(filepath.Join(host, "token")))
	}
}
