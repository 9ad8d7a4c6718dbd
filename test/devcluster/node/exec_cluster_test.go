package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/utils/exec"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/gateway-api/conformance"
	meshtests "sigs.k8s.io/gateway-api/conformance/tests/mesh"
	confconfig "sigs.k8s.io/gateway-api/conformance/utils/config"
	confecho "sigs.k8s.io/gateway-api/conformance/utils/echo"
	confsuite "sigs.k8s.io/gateway-api/conformance/utils/suite"

	"github.com/false-systems/rauta/internal/mesh"
	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
)

// The exec test's cluster has its own bridge and ranges (10.244.220.0/24, 10.96.240.0/24).
const (
	exeBridge      = "rexe0"
	exePodCIDR     = "10.244.220.0/24"
	exeServiceCIDR = "10.96.240.0/24"
	exeNS          = "exec-test"
)

// The echo Deployments are the mesh conformance suite's (conformance/mesh/manifests.yaml,
// v1.6.3): the same image and arguments. binpod runs a binary-mapped image (the host's
// file system), so it has a shell and /proc.
const execManifests = `
apiVersion: v1
kind: Namespace
metadata: {name: exec-test}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo-v1, namespace: exec-test}
spec:
  selector: {matchLabels: {app: echo, version: v1}}
  template:
    metadata: {labels: {app: echo, version: v1}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: echo
        image: registry.k8s.io/gateway-api/echo-advanced:v1.5.1
        args: [--tcp=9090, --port=8080, --grpc=7070, --port=8443, --tls=8443, --crt=/cert.crt, --key=/cert.key]
        readinessProbe:
          tcpSocket: {port: 8080}
          periodSeconds: 1
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo-v2, namespace: exec-test}
spec:
  selector: {matchLabels: {app: echo, version: v2}}
  template:
    metadata: {labels: {app: echo, version: v2}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: echo
        image: registry.k8s.io/gateway-api/echo-advanced:v1.5.1
        readinessProbe:
          tcpSocket: {port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: echo-v2, namespace: exec-test}
spec:
  selector: {app: echo, version: v2}
  ports:
  - {name: http, port: 80, appProtocol: http, targetPort: 8080}
---
apiVersion: v1
kind: Pod
metadata: {name: binpod, namespace: exec-test}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: echo
    image: registry.k8s.io/gateway-api/echo-basic:v1.6.3
    env:
    - {name: PATH, value: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    - {name: FROM_POD, value: "yes"}
    readinessProbe:
      tcpSocket: {port: 3000}
      periodSeconds: 1
`

// execCluster is the cluster of the exec test and benchmark: the suite's echo
// Deployments and binpod, all ready.
type execCluster struct {
	c           *devcluster.Cluster
	cs          kubernetes.Interface
	cgMount     string
	v1, v2, bin corev1.Pod
	stopped     bool
}

func startExecCluster(ctx context.Context, t testing.TB, name string) *execCluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("!!! skipping %s: the devcluster node agent needs root (namespaces, cgroups); CI runs as root", name)
	}
	cgMount, err := mesh.Cgroup2Mount()
	if err != nil {
		t.Skipf("!!! skipping %s: no cgroup2 mount: %v", name, err)
	}
	wd, _ := os.Getwd()
	root, err := devcluster.FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	bins, err := devcluster.EnsureBinaries(ctx, root, true)
	if err != nil {
		t.Skipf("!!! skipping %s: devcluster binaries are missing and could not be built: %v", name, err)
	}
	layout, err := devcluster.BuildEchoAdvancedImage(ctx, root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := devcluster.Start(ctx, devcluster.Options{
		RepoRoot:       root,
		Binaries:       &bins,
		ServiceCIDR:    exeServiceCIDR,
		SkipGatewayAPI: true,
		Node:           &node.Config{Bridge: exeBridge, PodCIDR: exePodCIDR, Images: node.EchoAdvancedImages(layout)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ec := &execCluster{c: c, cgMount: cgMount}
	t.Cleanup(func() {
		if !ec.stopped {
			if err := c.Stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		}
	})
	if ec.cs, err = c.Client(); err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(ctx, []byte(execManifests)); err != nil {
		t.Fatal(err)
	}
	ec.v1 = waitReadyPod(ctx, t, ec.cs, "app=echo,version=v1")
	ec.v2 = waitReadyPod(ctx, t, ec.cs, "app=echo,version=v2")
	ec.bin = waitReadyPod(ctx, t, ec.cs, "")
	return ec
}

func TestExecAndPodCgroups(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ec := startExecCluster(ctx, t, "TestExecAndPodCgroups")
	c, cs, cgMount, v1, v2, bin := ec.c, ec.cs, ec.cgMount, ec.v1, ec.v2, ec.bin
	parent := filepath.Join(cgMount, "rauta-devcluster-"+exeBridge)
	rest := c.RESTConfig()

	t.Run("SPDY exec runs the echo client in the pod, as the mesh suite does", func(t *testing.T) {
		// Pod to pod over the pod network: the client runs in echo-v1's network namespace.
		out, errOut, err := execSPDY(ctx, cs, rest, v1, []string{"client", "http://" + v2.Status.PodIP + ":8080/exec-path", "--method=GET", "-H", "X-From:exec"})
		if err != nil {
			t.Fatalf("exec: %v (stderr %q)", err, errOut)
		}
		r := confecho.ParseResponse(out)
		if r.Code != "200" || r.Hostname != v2.Name || r.URL != "/exec-path" || r.RequestHeaders.Get("X-From") != "exec" || r.IP != v1.Status.PodIP {
			t.Fatalf("parsed %+v", r)
		}
		// Through the Service's ClusterIP, with the batch the weight tests use.
		svc, err := cs.CoreV1().Services(exeNS).Get(ctx, "echo-v2", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, err = execSPDY(ctx, cs, rest, v1, []string{"client", "http://" + svc.Spec.ClusterIP + "/", "--count=3"})
		if err != nil {
			t.Fatalf("exec: %v (stderr %q)", err, errOut)
		}
		if n := strings.Count(out, "[0] StatusCode=200") + strings.Count(out, "[1] StatusCode=200") + strings.Count(out, "[2] StatusCode=200"); n != 3 {
			t.Fatalf("3 responses wanted:\n%s", out)
		}
	})

	t.Run("the client finds Services by name through the cluster DNS", func(t *testing.T) {
		// "echo-v2" as the suite's URLs name Services: the search path of the pod's
		// namespace, then the full name.
		for _, host := range []string{"echo-v2", "echo-v2.exec-test.svc.cluster.local"} {
			out, errOut, err := execSPDY(ctx, cs, rest, v1, []string{"client", "http://" + host + "/by-name"})
			if err != nil {
				t.Fatalf("exec client http://%s/: %v (stderr %q)", host, err, errOut)
			}
			if r := confecho.ParseResponse(out); r.Code != "200" || r.Hostname != v2.Name || r.Host != host {
				t.Fatalf("http://%s/: parsed %+v", host, r)
			}
		}
		_, errOut, err := execSPDY(ctx, cs, rest, v1, []string{"client", "http://no-such-service/"})
		var ee utilexec.ExitError
		// Every name of the search path is NXDOMAIN; the bare name, outside the cluster
		// domain, is REFUSED (there is no upstream): Go reports "server misbehaving".
		if !errors.As(err, &ee) || !strings.Contains(errOut, "lookup no-such-service") {
			t.Fatalf("a missing Service: err %v, stderr %q; want a failed exec and a failed lookup", err, errOut)
		}
	})

	t.Run("the upstream MeshBasic test passes on the suite's own manifests", func(t *testing.T) {
		// conformance/mesh/manifests.yaml of v1.6.3, applied as the suite applies it, and
		// the suite's own test: exec of `client http://echo/` in echo-v1, parsed by
		// conformance/utils/echo. Services are the service proxy's (no mesh agent here).
		manifests, err := conformance.Manifests.ReadFile("mesh/manifests.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Apply(ctx, manifests); err != nil {
			t.Fatal(err)
		}
		for _, ns := range []string{confsuite.MeshNamespace, "gateway-conformance-mesh-consumer"} {
			waitPodsReady(ctx, t, cs, ns, "app=echo")
		}
		cl, err := ctrlclient.New(rest, ctrlclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		meshtests.MeshBasic.Test(t, &confsuite.ConformanceTestSuite{Client: cl, Clientset: cs, RestConfig: rest, TimeoutConfig: confconfig.DefaultTimeoutConfig()})
	})

	t.Run("WebSocket exec reports stderr and the exit code", func(t *testing.T) {
		exe, err := remotecommand.NewWebSocketExecutor(rest, "GET", execURL(cs, v1, []string{"client", "http://127.0.0.1:1/"}, false).URL().String())
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		err = exe.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
		var ee utilexec.ExitError
		if !errors.As(err, &ee) || ee.ExitStatus() != 1 {
			t.Fatalf("err %v (%T), want exit status 1", err, err)
		}
		if !strings.Contains(stderr.String(), "connection refused") {
			t.Fatalf("stderr %q", stderr.String())
		}
	})

	t.Run("kubectl exec with stdin, env, network namespace and cgroup of the pod", func(t *testing.T) {
		kubectl := func(stdin string, args ...string) string {
			t.Helper()
			cmd := exec.CommandContext(ctx, c.Binaries().Kubectl, append([]string{"--kubeconfig", c.Kubeconfig(), "-n", exeNS, "exec"}, args...)...)
			cmd.Stdin = strings.NewReader(stdin)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Run(); err != nil {
				t.Fatalf("kubectl exec %q: %v\n%s", args, err, errOut.String())
			}
			return out.String()
		}
		if got := kubectl("hello through stdin", "-i", bin.Name, "--", "cat"); got != "hello through stdin" {
			t.Errorf("cat echoed %q", got)
		}
		if got := kubectl("", bin.Name, "--", "sh", "-c", "echo $FROM_POD $HOSTNAME"); got != "yes binpod\n" {
			t.Errorf("env in the exec: %q", got)
		}
		pid := containerPid(t, bin)
		wantNet, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(kubectl("", bin.Name, "--", "readlink", "/proc/self/ns/net")); got != wantNet {
			t.Errorf("exec'd process in network namespace %s, the container in %s", got, wantNet)
		}
		hostNet, _ := os.Readlink("/proc/self/ns/net")
		if wantNet == hostNet {
			t.Errorf("the container runs in the host's network namespace %s", hostNet)
		}
		// The exec'd process and the container are in the pod's own cgroup.
		got := cgroupV2Line(t, kubectl("", bin.Name, "--", "cat", "/proc/self/cgroup"))
		// pod<UID>, as the kubelet's cgroupfs driver names it (the mesh agent
		// finds opted-out pods' cgroups by that name).
		want := "/rauta-devcluster-" + exeBridge + "/pod"
		if got != want+string(bin.UID) {
			t.Fatalf("exec'd process cgroup %q, want %s", got, want+string(bin.UID))
		}
		if cont := procCgroup(t, pid); cont != got {
			t.Errorf("container cgroup %q, exec'd process %q", cont, got)
		}
		imgPid := containerPid(t, v1)
		if cg := procCgroup(t, imgPid); !strings.HasPrefix(cg, want) || cg == got {
			t.Errorf("echo-v1's cgroup %q, want its own pod cgroup (binpod's is %q)", cg, got)
		}
	})

	t.Run("a pod's cgroup goes with the pod, also with processes an exec left", func(t *testing.T) {
		// A process that outlives its exec (the exec returns after its output closes).
		_, _, err := execSPDY(ctx, cs, rest, bin, []string{"sh", "-c", "sleep 600 >/dev/null 2>&1 &"})
		if err != nil {
			t.Fatal(err)
		}
		cg := filepath.Join(cgMount, procCgroup(t, containerPid(t, bin)))
		procs, err := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(strings.Fields(string(procs))); n != 2 {
			t.Fatalf("cgroup %s holds %d processes, want the container and the sleep", cg, n)
		}
		if err := cs.CoreV1().Pods(exeNS).Delete(ctx, bin.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		pollImage(ctx, t, "pod cgroup removed", func() error {
			_, err := os.Stat(cg)
			if err == nil {
				return fmt.Errorf("%s still there", cg)
			}
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		})
	})

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	ec.stopped = true
	if _, err := os.Stat(parent); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Stop the node's cgroup %s is still there (%v)", parent, err)
	}
}

// BenchmarkExec times one exec of the echo client in an echo pod (SPDY through the API
// server, as the mesh suite does), the client's request to the other pod included, and
// the same request from the host without exec, for the exec's own share.
func BenchmarkExec(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ec := startExecCluster(ctx, b, "BenchmarkExec")
	rest := ec.c.RESTConfig()
	url := "http://" + ec.v2.Status.PodIP + ":8080/"
	b.Run("exec client", func(b *testing.B) {
		for b.Loop() {
			if _, errOut, err := execSPDY(ctx, ec.cs, rest, ec.v1, []string{"client", url}); err != nil {
				b.Fatalf("%v %s", err, errOut)
			}
		}
	})
	b.Run("exec true", func(b *testing.B) {
		for b.Loop() {
			if _, errOut, err := execSPDY(ctx, ec.cs, rest, ec.bin, []string{"true"}); err != nil {
				b.Fatalf("%v %s", err, errOut)
			}
		}
	})
}

// waitPodsReady waits until every pod of the selector in ns is ready (at least one).
func waitPodsReady(ctx context.Context, t testing.TB, cs kubernetes.Interface, ns, selector string) {
	t.Helper()
	pollImage(ctx, t, "ready pods "+ns+"/"+selector, func() error {
		l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		if len(l.Items) == 0 {
			return errors.New("no pods yet")
		}
		for _, p := range l.Items {
			if !podIsReady(&p) {
				return fmt.Errorf("pod %s not ready: %+v", p.Name, p.Status)
			}
		}
		return nil
	})
}

// waitReadyPod waits for the one ready pod of the selector (empty: the pod binpod).
func waitReadyPod(ctx context.Context, t testing.TB, cs kubernetes.Interface, selector string) corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	pollImage(ctx, t, "ready pod "+selector, func() error {
		if selector == "" {
			p, err := cs.CoreV1().Pods(exeNS).Get(ctx, "binpod", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !podIsReady(p) {
				return fmt.Errorf("binpod not ready: %+v", p.Status)
			}
			pod = *p
			return nil
		}
		l, err := cs.CoreV1().Pods(exeNS).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		for _, p := range l.Items {
			if podIsReady(&p) {
				pod = p
				return nil
			}
		}
		return fmt.Errorf("no ready pod among %d", len(l.Items))
	})
	return pod
}

// execURL is the pods/exec request conformance/utils/echo builds.
func execURL(cs kubernetes.Interface, pod corev1.Pod, cmd []string, stdin bool) *rest.Request {
	return cs.CoreV1().RESTClient().Post().Resource("pods").Name(pod.Name).Namespace(pod.Namespace).
		SubResource("exec").Param("container", pod.Spec.Containers[0].Name).
		VersionedParams(&corev1.PodExecOptions{Container: pod.Spec.Containers[0].Name, Command: cmd, Stdin: stdin, Stdout: true, Stderr: true}, scheme.ParameterCodec)
}

// execSPDY runs cmd in the pod with the SPDY executor, as conformance/utils/echo does.
func execSPDY(ctx context.Context, cs kubernetes.Interface, cfg *rest.Config, pod corev1.Pod, cmd []string) (string, string, error) {
	exe, err := remotecommand.NewSPDYExecutor(cfg, "POST", execURL(cs, pod, cmd, false).URL())
	if err != nil {
		return "", "", err
	}
	var stdout, stderr bytes.Buffer
	err = exe.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	return stdout.String(), stderr.String(), err
}

// procCgroup is a process's cgroup v2 path, relative to the cgroup2 mount.
func procCgroup(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	return cgroupV2Line(t, string(data))
}

// cgroupV2Line is the path of the "0::PATH" line of a /proc/PID/cgroup (a hybrid host
// lists its v1 hierarchies too).
func cgroupV2Line(t *testing.T, data string) string {
	t.Helper()
	for l := range strings.SplitSeq(data, "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p
		}
	}
	t.Fatalf("no cgroup v2 line in %q", data)
	return ""
}
