package conformance_test

// The chart's mesh DaemonSet, run as a process of the local cluster's node.
//
// The devcluster node agent cannot run that pod yet: it has no hostPath
// volumes (the DaemonSet mounts the host's cgroup tree and /sys/fs/bpf), and
// its image containers are chroot'ed without a mount namespace, so a hostPath
// would need a bind mount into the container's root that the agent also
// undoes. Its node address is 127.0.0.1, so status.hostIP (NODE_IP, where the
// chart puts the mesh proxy) is every pod's own loopback. And a pod's
// in-cluster config reads its token from a fixed path. So this runs what the
// DaemonSet would run, taken from the installed object rather than written
// again: the image's entrypoint binary (extracted from the OCI layout), the
// container's args and env (downward API fields resolved as the kubelet
// does), hostPath mounts mapped onto their host paths, a token of the
// DaemonSet's service account (so the chart's RBAC is what the agent has),
// the readiness probe's path and port, and SIGTERM then the grace period on
// stop.

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"

	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
	"github.com/false-systems/rauta/test/testimage"
)

// meshProcessLabel is the mesh DaemonSet's nodeSelector in the test: no node
// has it, so the DaemonSet makes no pod and its container runs as a process.
const meshProcessLabel = "rauta.io/mesh-as-process"

// meshDaemonSet is the chart's mesh DaemonSet of release "rauta".
const meshDaemonSet = "rauta-mesh"

// startChartMeshAgent runs the installed mesh DaemonSet's container as a
// process until the test ends and waits for its readiness probe.
func startChartMeshAgent(ctx context.Context, t *testing.T, c *devcluster.Cluster, img testimage.Image, dir string) {
	t.Helper()
	cs, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	ds, err := cs.AppsV1().DaemonSets(releaseNS).Get(ctx, meshDaemonSet, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the chart's mesh DaemonSet: %v", err)
	}
	spec := ds.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("mesh DaemonSet: %d containers, want 1", len(spec.Containers))
	}
	ctr := spec.Containers[0]
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatalf("nodes: %d, %v", len(nodes.Items), err)
	}
	nodeObj := nodes.Items[0]

	if want := img.Repository + ":" + img.Version; ctr.Image != want {
		t.Fatalf("mesh DaemonSet image %s, want %s (the layout under test)", ctr.Image, want)
	}
	bin := extractEntrypoint(t, img.Layout, dir)
	// hostPath volumes: mountPath -> host path. /sys/fs/bpf is a BPF file
	// system of this test's own (the machine may have none mounted, and
	// pins must never meet another agent's), unmounted at the end.
	bpfDir := filepath.Join(dir, "bpffs")
	if err := os.Mkdir(bpfDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", bpfDir, "bpf", 0, ""); err != nil {
		t.Fatalf("mount a BPF file system: %v", err)
	}
	mounts := map[string]string{}
	for _, m := range ctr.VolumeMounts {
		var hp *corev1.HostPathVolumeSource
		for _, v := range spec.Volumes {
			if v.Name == m.Name {
				hp = v.HostPath
			}
		}
		if hp == nil {
			t.Fatalf("mesh DaemonSet: volume %q is not a hostPath", m.Name)
		}
		host := hp.Path
		if host == "/sys/fs/bpf" {
			host = bpfDir
		}
		mounts[path.Clean(m.MountPath)] = host
	}
	args := make([]string, 0, len(ctr.Args))
	for _, a := range ctr.Args {
		args = append(args, mapMounts(a, mounts))
	}
	env := []string{"PATH=/usr/bin:/bin"}
	for _, e := range ctr.Env {
		v := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				t.Fatalf("mesh DaemonSet env %s: only fieldRef is resolved here", e.Name)
			}
			switch e.ValueFrom.FieldRef.FieldPath {
			case "spec.nodeName":
				v = nodeObj.Name
			case "status.hostIP":
				v = nodeAddress(nodeObj)
			case "metadata.namespace":
				v = releaseNS
			default:
				t.Fatalf("mesh DaemonSet env %s: field %s is not resolved here", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		}
		env = append(env, e.Name+"="+v)
	}
	env = append(env, "KUBECONFIG="+serviceAccountKubeconfig(ctx, t, c, spec.ServiceAccountName, dir))

	probeURL := readinessURL(t, ctr)
	logf, err := os.Create(filepath.Join(dir, "mesh.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	t.Logf("mesh agent: %s %s", bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	grace := 30 * time.Second
	if s := spec.TerminationGracePeriodSeconds; s != nil {
		grace = time.Duration(*s) * time.Second
	}
	t.Cleanup(func() {
		// The kubelet's stop: SIGTERM, the grace period, SIGKILL.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("mesh agent exit: %v", err)
			}
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("mesh agent did not exit within the grace period %s", grace)
		}
		logf.Close()
		// -keep-attached leaves the links and maps pinned for the next agent;
		// there is none: dropping the pins (the file system) detaches the
		// programs.
		if err := unix.Unmount(bpfDir, 0); err != nil {
			t.Errorf("unmount %s: %v", bpfDir, err)
		}
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("mesh agent log (last 8 KiB):\n%s", tail(b, 8<<10))
			}
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		err := probe(ctx, probeURL)
		if err == nil {
			return
		}
		select {
		case err := <-done:
			done <- err
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("mesh agent exited: %v\n%s", err, tail(b, 8<<10))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mesh agent not ready after a minute: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// mapMounts rewrites a flag value under a mount path to the host path.
func mapMounts(arg string, mounts map[string]string) string {
	name, value, ok := strings.Cut(arg, "=")
	if !ok {
		return arg
	}
	for mp, host := range mounts {
		if value == mp || strings.HasPrefix(value, mp+"/") {
			return name + "=" + host + strings.TrimPrefix(value, mp)
		}
	}
	return arg
}

func nodeAddress(n corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// readinessURL is the container's HTTP readiness probe on the host network.
func readinessURL(t *testing.T, c corev1.Container) string {
	p := c.ReadinessProbe
	if p == nil || p.HTTPGet == nil {
		t.Fatal("mesh DaemonSet: no HTTP readiness probe")
	}
	port := p.HTTPGet.Port.IntValue()
	if port == 0 {
		for _, cp := range c.Ports {
			if cp.Name == p.HTTPGet.Port.String() {
				port = int(cp.ContainerPort)
			}
		}
	}
	if port == 0 {
		t.Fatalf("mesh DaemonSet: readiness probe port %s not found", p.HTTPGet.Port.String())
	}
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + p.HTTPGet.Path
}

func probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d", url, resp.StatusCode)
	}
	return nil
}

// serviceAccountKubeconfig writes a kubeconfig for the API server's own
// address (what the docs ask of a mesh agent without kube-proxy) with a
// token of the service account, the identity the DaemonSet's pod has.
func serviceAccountKubeconfig(ctx context.Context, t *testing.T, c *devcluster.Cluster, sa, dir string) string {
	cs, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	exp := int64(3600)
	tok, err := cs.CoreV1().ServiceAccounts(releaseNS).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of service account %s: %v", sa, err)
	}
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	kctx := cfg.Contexts[cfg.CurrentContext]
	if kctx == nil {
		t.Fatalf("kubeconfig %s: no current context", c.Kubeconfig())
	}
	cfg.AuthInfos = map[string]*clientcmdapi.AuthInfo{"mesh": {Token: tok.Status.Token}}
	kctx.AuthInfo = "mesh"
	file := filepath.Join(dir, "mesh.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, file); err != nil {
		t.Fatal(err)
	}
	return file
}

// extractEntrypoint writes the entrypoint binary of the layout's image for
// this platform into dir.
func extractEntrypoint(t *testing.T, layoutDir, dir string) string {
	t.Helper()
	img, err := node.LayoutImage(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.Config.Entrypoint) == 0 {
		t.Fatalf("image in %s has no entrypoint", layoutDir)
	}
	want := strings.TrimPrefix(path.Clean(cf.Config.Entrypoint[0]), "/")
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("image in %s: entrypoint %s not found", layoutDir, want)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(path.Clean(h.Name), "/") != want || h.Typeflag != tar.TypeReg {
			continue
		}
		out := filepath.Join(dir, "rauta-mesh-bin")
		f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return out
	}
}
