package node_test

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
)

// The image test's cluster has its own bridge and CIDRs, so it runs next to TestCluster
// and a cluster started with hack/devcluster.sh.
const (
	imgBridge      = "rimg0"
	imgPodCIDR     = "10.244.210.0/24"
	imgServiceCIDR = "10.96.210.0/24"
	imgNS          = "image-test"
	imgRepo        = "example.test/imageserver"
	rootRepo       = "example.test/root-image"
	imgAudience    = "rauta-image-test"
)

const imageManifests = `
apiVersion: v1
kind: Namespace
metadata: {name: image-test}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: image-test}
stringData: {password: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: img, namespace: image-test, labels: {app: img}}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: server
    image: example.test/imageserver:v1
    args: ["--greeting=$(GREETING)"]
    env:
    - {name: GREETING, value: hello}
    - {name: MODE, value: pod}
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
    volumeMounts:
    - {name: creds, mountPath: /etc/creds, readOnly: true}
    - {name: tok, mountPath: /var/run/tok, readOnly: true}
  volumes:
  - name: creds
    secret: {secretName: creds}
  - name: tok
    projected:
      sources:
      - serviceAccountToken: {audience: rauta-image-test, expirationSeconds: 600, path: token}
---
apiVersion: v1
kind: Pod
metadata: {name: noauto, namespace: image-test}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 5
  containers:
  - name: server
    image: example.test/imageserver:v1
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: rootpod, namespace: image-test}
spec:
  securityContext: {runAsNonRoot: true}
  containers:
  - name: server
    image: example.test/root-image:v1
`

// whoami is what the image server reports about its process.
type whoami struct {
	UID, GID int
	Groups   []int
	Args     []string
	Env      map[string]string
	Cwd      string
}

func TestImagePods(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("!!! skipping TestImagePods: the devcluster node agent needs root (chroot, setuid, network namespaces); CI runs as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	wd, _ := os.Getwd()
	root, err := devcluster.FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	bins, err := devcluster.EnsureBinaries(ctx, root, true)
	if err != nil {
		t.Skipf("!!! skipping TestImagePods: devcluster binaries are missing and could not be built: %v", err)
	}

	server := buildImageServer(ctx, t)
	layouts := t.TempDir()
	imgLayout, rootLayout := filepath.Join(layouts, "imageserver"), filepath.Join(layouts, "root")
	digest := node.BuildTestLayout(t, imgLayout, v1.Config{
		Entrypoint: []string{"/bin/echo-server"},
		User:       "65532:65532",
		Env:        []string{"PATH=/bin", "IMAGE_ENV=from-image", "MODE=image"},
		WorkingDir: "/home/nonroot",
	}, imageFiles(server))
	node.BuildTestLayout(t, rootLayout, v1.Config{Entrypoint: []string{"/bin/echo-server"}}, imageFiles(server))

	c, err := devcluster.Start(ctx, devcluster.Options{
		RepoRoot:       root,
		Binaries:       &bins,
		ServiceCIDR:    imgServiceCIDR,
		SkipGatewayAPI: true,
		Node: &node.Config{Bridge: imgBridge, PodCIDR: imgPodCIDR, Images: []node.ImageMapping{
			{Repository: imgRepo, Layout: imgLayout},
			{Repository: rootRepo, Layout: rootLayout},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			if err := c.Stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		}
	})
	cs, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(ctx, []byte(imageManifests)); err != nil {
		t.Fatal(err)
	}

	img := waitImagePod(ctx, t, cs, "img", podIsReady)
	pid := containerPid(t, img)
	ip := img.Status.PodIP

	t.Run("serves on its pod IP as the image user", func(t *testing.T) {
		var me whoami
		if err := json.Unmarshal([]byte(httpGet(ctx, t, ip, "/whoami")), &me); err != nil {
			t.Fatal(err)
		}
		if me.UID != 65532 || me.GID != 65532 || len(me.Groups) != 0 {
			t.Errorf("process runs as uid %d gid %d groups %v, want 65532:65532 and no supplementary groups", me.UID, me.GID, me.Groups)
		}
		if !slices.Equal(me.Args, []string{"/bin/echo-server", "--greeting=hello"}) {
			t.Errorf("argv %q: want the image Entrypoint and the expanded args", me.Args)
		}
		if me.Cwd != "/home/nonroot" {
			t.Errorf("working folder %q, want the image's /home/nonroot", me.Cwd)
		}
		for k, want := range map[string]string{"IMAGE_ENV": "from-image", "MODE": "pod", "PATH": "/bin", "GREETING": "hello", "HOSTNAME": "img"} {
			if me.Env[k] != want {
				t.Errorf("env %s=%q, want %q", k, me.Env[k], want)
			}
		}
	})

	t.Run("the host sees a chrooted, unprivileged process", func(t *testing.T) {
		status := procStatus(t, pid)
		// NET_BIND_SERVICE (bit 10) is the one capability added, as an ambient one.
		for k, want := range map[string]string{
			"Uid": "65532\t65532\t65532\t65532", "Gid": "65532\t65532\t65532\t65532", "Groups": "",
			"NoNewPrivs": "1", "CapEff": "0000000000000400", "CapAmb": "0000000000000400",
		} {
			if status[k] != want {
				t.Errorf("/proc/%d/status %s: %q, want %q", pid, k, status[k], want)
			}
		}
		rootDir, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(rootDir, c.Dir()) || filepath.Base(rootDir) != "rootfs" {
			t.Errorf("process root %q, want a container root under %s", rootDir, c.Dir())
		}
		if id := img.Status.ContainerStatuses[0].ImageID; id != imgRepo+"@"+digest {
			t.Errorf("imageID %q, want %s@%s", id, imgRepo, digest)
		}
		// The image was unpacked once, by digest, for both pods that run it.
		if _, err := os.Stat(filepath.Join(c.Dir(), "node", "images", strings.ReplaceAll(digest, ":", "-"), "rootfs", "bin", "echo-server")); err != nil {
			t.Errorf("unpacked image: %v", err)
		}
	})

	t.Run("secret and token volumes are files in the root", func(t *testing.T) {
		if got := httpGet(ctx, t, ip, "/file?path=/etc/creds/password"); got != "s3cret" {
			t.Errorf("secret volume: %q", got)
		}
		claims := jwtClaims(t, httpGet(ctx, t, ip, "/file?path=/var/run/tok/token"))
		if aud := fmt.Sprint(claims["aud"]); !strings.Contains(aud, imgAudience) {
			t.Errorf("projected token audience %v, want %s", claims["aud"], imgAudience)
		}
		if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 600 {
			t.Errorf("projected token lifetime %v s, want the 600 s asked for", exp-iat)
		}
		k8s, _ := claims["kubernetes.io"].(map[string]any)
		if pod, _ := k8s["pod"].(map[string]any); pod["name"] != "img" {
			t.Errorf("token not bound to the pod: %v", claims["kubernetes.io"])
		}
		// The standard kube-api-access volume.
		const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
		if got := httpGet(ctx, t, ip, "/file?path="+sa+"namespace"); got != imgNS {
			t.Errorf("kube-api-access namespace %q", got)
		}
		if got := httpGet(ctx, t, ip, "/file?path="+sa+"ca.crt"); !strings.Contains(got, "BEGIN CERTIFICATE") {
			t.Errorf("kube-api-access ca.crt %q", got)
		}
		if claims := jwtClaims(t, httpGet(ctx, t, ip, "/file?path="+sa+"token")); claims["sub"] != "system:serviceaccount:"+imgNS+":default" {
			t.Errorf("kube-api-access token subject %v", claims["sub"])
		}
	})

	t.Run("automountServiceAccountToken false gets no token", func(t *testing.T) {
		p := waitImagePod(ctx, t, cs, "noauto", podIsReady)
		code, body := httpGetCode(ctx, t, p.Status.PodIP, "/file?path=/var/run/secrets/kubernetes.io/serviceaccount/token")
		if code != http.StatusNotFound {
			t.Errorf("token of a pod without automount: status %d %q", code, body)
		}
		// Without capabilities.add a non-root container has none at all.
		status := procStatus(t, containerPid(t, p))
		if status["CapEff"] != "0000000000000000" || status["CapAmb"] != "0000000000000000" {
			t.Errorf("capabilities of a container that adds none: effective %s ambient %s", status["CapEff"], status["CapAmb"])
		}
	})

	t.Run("runAsNonRoot refuses a root image", func(t *testing.T) {
		p := waitImagePod(ctx, t, cs, "rootpod", func(p *corev1.Pod) bool {
			st := p.Status.ContainerStatuses
			return len(st) == 1 && st[0].State.Waiting != nil && st[0].State.Waiting.Reason == "CreateContainerConfigError"
		})
		st := p.Status.ContainerStatuses[0]
		if !strings.Contains(st.State.Waiting.Message, "image will run as root") || st.ContainerID != "" || p.Status.Phase != corev1.PodPending {
			t.Errorf("phase %s, container %+v", p.Status.Phase, st)
		}
	})

	t.Run("deletion removes processes, roots and namespaces", func(t *testing.T) {
		noauto := waitImagePod(ctx, t, cs, "noauto", podIsReady)
		pids := []int{pid, containerPid(t, noauto)}
		roots := processRoots(t, pids)
		for _, name := range []string{"img", "noauto", "rootpod"} {
			if err := cs.CoreV1().Pods(imgNS).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		pollImage(ctx, t, "pods deleted", func() error {
			list, err := cs.CoreV1().Pods(imgNS).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			if len(list.Items) > 0 {
				return fmt.Errorf("%d pods left", len(list.Items))
			}
			return nil
		})
		checkGone(t, pids, roots)
		if left := podFolders(t, c.Dir()); len(left) > 0 {
			t.Errorf("pod folders left after deletion: %v", left)
		}
	})

	t.Run("stop leaves nothing behind", func(t *testing.T) {
		last := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "last", Namespace: imgNS},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "server", Image: imgRepo + ":v1"}}},
		}
		if _, err := cs.CoreV1().Pods(imgNS).Create(ctx, last, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p := waitImagePod(ctx, t, cs, "last", func(p *corev1.Pod) bool { return podIsReady(p) && p.Status.PodIP != "" })
		pids := []int{containerPid(t, p)}
		roots := processRoots(t, pids)
		dir := c.Dir()
		stopped = true
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		checkGone(t, pids, roots)
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cluster folder %s left after Stop: %v", dir, err)
		}
		out, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), imgBridge) {
			t.Errorf("links left after Stop:\n%s", out)
		}
	})
}

// buildImageServer compiles testdata/imageserver, statically (the image has no libc), in
// a module of its own.
func buildImageServer(ctx context.Context, t *testing.T) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "imageserver", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module imageserver\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", "server", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build image server: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "server"))
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// imageFiles is a distroless-like file system: the server, passwd and group with the
// nonroot user, its home, and /tmp.
func imageFiles(server []byte) []node.TestEntry {
	return []node.TestEntry{
		{Name: "bin/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "bin/echo-server", Body: server, Mode: 0o755},
		{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc/passwd", Body: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), Mode: 0o644},
		{Name: "etc/group", Body: []byte("root:x:0:\nnonroot:x:65532:\n"), Mode: 0o644},
		{Name: "home/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "home/nonroot/", Type: tar.TypeDir, Mode: 0o700, UID: 65532, GID: 65532},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
	}
}

func pollImage(ctx context.Context, t testing.TB, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var err error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if err = check(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

func waitImagePod(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, done func(*corev1.Pod) bool) corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	pollImage(ctx, t, "pod "+imgNS+"/"+name, func() error {
		p, err := cs.CoreV1().Pods(imgNS).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod = p
		if !done(p) {
			return fmt.Errorf("phase %s reason %q message %q containers %+v", p.Status.Phase, p.Status.Reason, p.Status.Message, p.Status.ContainerStatuses)
		}
		return nil
	})
	return *pod
}

func podIsReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func httpGet(ctx context.Context, t *testing.T, ip, path string) string {
	t.Helper()
	code, body := httpGetCode(ctx, t, ip, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s from %s: status %d %q", path, ip, code, body)
	}
	return body
}

// httpGetCode asks the pod from the host, through the bridge; it retries only failed
// connections, not answers.
func httpGetCode(ctx context.Context, t *testing.T, ip, path string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	var code int
	var body string
	pollImage(ctx, t, "GET http://"+ip+":8080"+path, func() error {
		r, err := client.Get("http://" + ip + ":8080" + path)
		if err != nil {
			return err
		}
		defer r.Body.Close()
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return err
		}
		code, body = r.StatusCode, string(b)
		return nil
	})
	return code, body
}

// jwtClaims decodes a JWT's payload; the API server signed it, the test only reads it.
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func containerPid(t *testing.T, p corev1.Pod) int {
	t.Helper()
	if len(p.Status.ContainerStatuses) != 1 {
		t.Fatalf("pod %s: container statuses %+v", p.Name, p.Status.ContainerStatuses)
	}
	s, ok := strings.CutPrefix(p.Status.ContainerStatuses[0].ContainerID, "rauta-devcluster://")
	if !ok {
		t.Fatalf("pod %s: container id %q", p.Name, p.Status.ContainerStatuses[0].ContainerID)
	}
	pid, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// procStatus reads /proc/<pid>/status into trimmed values by field name.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

func processRoots(t *testing.T, pids []int) []string {
	t.Helper()
	var roots []string
	for _, pid := range pids {
		r, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
		if err != nil || r == "/" {
			t.Fatalf("process %d root %q: %v", pid, r, err)
		}
		roots = append(roots, r)
	}
	return roots
}

// checkGone asserts the processes ended (a zombie counts as ended), their roots and
// their network namespaces are gone.
func checkGone(t *testing.T, pids []int, roots []string) {
	t.Helper()
	for _, pid := range pids {
		if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if f := strings.Fields(string(data)); len(f) > 2 && f[2] != "Z" {
				t.Errorf("container process %d still running", pid)
			}
		}
	}
	for _, r := range roots {
		if _, err := os.Stat(r); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("container root %s left: %v", r, err)
		}
	}
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), imgBridge+"-") {
			t.Errorf("network namespace %s left", e.Name())
		}
	}
}

func podFolders(t *testing.T, clusterDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(clusterDir, "node", "pods"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
