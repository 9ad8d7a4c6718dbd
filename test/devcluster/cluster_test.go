package devcluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
)

// The test cluster uses its own bridge and pod CIDR so it can run next to a cluster
// started with hack/devcluster.sh.
const (
	testBridge  = "rdct0"
	testPodCIDR = "10.244.201.0/24"
	testNS      = "devcluster-test"
)

const echoManifests = `
apiVersion: v1
kind: Namespace
metadata:
  name: devcluster-test
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
  namespace: devcluster-test
spec:
  replicas: 2
  selector:
    matchLabels: {app: echo}
  template:
    metadata:
      labels: {app: echo}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: echo
        image: registry.k8s.io/gateway-api/echo-basic:v1.5.1
        ports:
        - {name: http, containerPort: 3000}
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: NAMESPACE
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
        - name: SERVICE_NAME
          value: echo
        readinessProbe:
          httpGet: {path: /, port: http}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: devcluster-test
spec:
  selector: {app: echo}
  ports:
  - {port: 8080, targetPort: 3000}
`

const lonePod = `
apiVersion: v1
kind: Pod
metadata:
  name: lone
  namespace: NS
spec:
  containers:
  - name: echo
    image: gcr.io/k8s-staging-gateway-api/echo-basic:v20240412-v1.0.0-394-g40c666fd
`

const crashPods = `
apiVersion: v1
kind: Pod
metadata: {name: crash-never, namespace: NS}
spec:
  restartPolicy: Never
  containers:
  - name: echo
    image: registry.k8s.io/gateway-api/echo-basic:v1.5.1
    env: [{name: HTTP_PORT, value: not-a-port}]
---
apiVersion: v1
kind: Pod
metadata: {name: crash-always, namespace: NS}
spec:
  containers:
  - name: echo
    image: registry.k8s.io/gateway-api/echo-basic:v1.5.1
    env: [{name: HTTP_PORT, value: not-a-port}]
`

// echoResponse is the part of echo-basic's JSON the test checks.
type echoResponse struct {
	Path      string `json:"path"`
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	Pod       string `json:"pod"`
}

func TestCluster(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the devcluster node agent needs root (network namespaces, veth pairs, a bridge); CI runs as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	wd, _ := os.Getwd()
	root, err := devcluster.FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	bins, err := devcluster.EnsureBinaries(ctx, root, true)
	if err != nil {
		t.Skipf("skipping: devcluster binaries are missing and could not be built: %v", err)
	}

	c, err := devcluster.Start(ctx, devcluster.Options{
		RepoRoot: root,
		Binaries: &bins,
		Node:     &node.Config{Bridge: testBridge, PodCIDR: testPodCIDR},
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

	t.Run("node registered and ready", func(t *testing.T) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes.Items) != 1 {
			t.Fatalf("%d nodes, want 1", len(nodes.Items))
		}
		n := nodes.Items[0]
		if n.Spec.PodCIDR != testPodCIDR || !nodeReady(&n) {
			t.Errorf("node %s: podCIDR %q ready %v", n.Name, n.Spec.PodCIDR, nodeReady(&n))
		}
	})

	t.Run("kubectl works with the kubeconfig", func(t *testing.T) {
		out, err := kubectl(ctx, c, "get", "nodes", "-o", "name")
		if err != nil || !strings.HasPrefix(out, "node/") {
			t.Fatalf("kubectl get nodes: %v\n%s", err, out)
		}
	})

	t.Run("gateway api crds established", func(t *testing.T) {
		dyn, err := dynamic.NewForConfig(c.RESTConfig())
		if err != nil {
			t.Fatal(err)
		}
		gvr := schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gatewayclasses"}
		gc := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "gateway.networking.k8s.io/v1",
			"kind":       "GatewayClass",
			"metadata":   map[string]any{"name": "rauta"},
			"spec":       map[string]any{"controllerName": "rauta.io/gateway-controller"},
		}}
		if _, err := dyn.Resource(gvr).Create(ctx, gc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := dyn.Resource(gvr).Get(ctx, "rauta", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if name, _, _ := unstructured.NestedString(got.Object, "spec", "controllerName"); name != "rauta.io/gateway-controller" {
			t.Errorf("controllerName read back %q", name)
		}
		// The experimental channel is installed, not only the standard one.
		x := schema.GroupVersionResource{Group: "gateway.networking.x-k8s.io", Version: "v1alpha1", Resource: "xbackendtrafficpolicies"}
		if _, err := dyn.Resource(x).Namespace("default").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("experimental XBackendTrafficPolicy not served: %v", err)
		}
	})

	if err := c.Apply(ctx, []byte(echoManifests)); err != nil {
		t.Fatal(err)
	}

	var pods []corev1.Pod
	t.Run("pods ready with addresses and answer from the host", func(t *testing.T) {
		pods = waitReadyPods(ctx, t, cs, 2)
		for _, p := range pods {
			resp := getEcho(ctx, t, p.Status.PodIP)
			if resp.Pod != p.Name || resp.Namespace != testNS || resp.Service != "echo" {
				t.Errorf("pod %s at %s answered %+v", p.Name, p.Status.PodIP, resp)
			}
		}
	})

	t.Run("endpointslice lists both pods", func(t *testing.T) {
		waitEndpoints(ctx, t, cs, podIPs(pods))
	})

	t.Run("kubectl logs reaches the node", func(t *testing.T) {
		if len(pods) == 0 {
			t.Skip("no pods")
		}
		// echo-basic logs each request; the requests above guarantee a line.
		out, err := kubectl(ctx, c, "logs", "-n", testNS, pods[0].Name, "--tail=50")
		if err != nil {
			t.Fatalf("kubectl logs: %v\n%s", err, out)
		}
		if !strings.Contains(out, "Echoing back request") && !strings.Contains(out, "Starting server") {
			t.Errorf("kubectl logs output does not look like echo-basic:\n%s", out)
		}
	})

	t.Run("scale to three", func(t *testing.T) {
		if _, err := kubectl(ctx, c, "scale", "-n", testNS, "deployment/echo", "--replicas=3"); err != nil {
			t.Fatal(err)
		}
		pods = waitReadyPods(ctx, t, cs, 3)
		waitEndpoints(ctx, t, cs, podIPs(pods))
	})

	t.Run("unknown image fails with a clear reason", func(t *testing.T) {
		bad := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "unknown-image", Namespace: testNS},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "c", Image: "docker.io/library/nginx:1.27"}},
			},
		}
		if _, err := cs.CoreV1().Pods(testNS).Create(ctx, bad, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p := waitPod(ctx, t, cs, "unknown-image", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if p.Status.Reason != "ErrImageNotMapped" || !strings.Contains(p.Status.Message, "docker.io/library/nginx:1.27") {
			t.Errorf("reason %q message %q", p.Status.Reason, p.Status.Message)
		}
		if err := cs.CoreV1().Pods(testNS).Delete(ctx, "unknown-image", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("crashing containers restart or fail by restart policy", func(t *testing.T) {
		// echo-basic panics (exit code 2) when its port does not parse.
		if err := c.Apply(ctx, []byte(strings.ReplaceAll(crashPods, "NS", testNS))); err != nil {
			t.Fatal(err)
		}
		never := waitPod(ctx, t, cs, "crash-never", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if st := never.Status.ContainerStatuses; len(st) != 1 || st[0].State.Terminated == nil || st[0].State.Terminated.ExitCode != 2 {
			t.Errorf("restartPolicy Never: container statuses %+v, want terminated with exit code 2", st)
		}
		always := waitPod(ctx, t, cs, "crash-always", func(p *corev1.Pod) bool {
			return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 2
		})
		st := always.Status.ContainerStatuses[0]
		// Between crashes the container runs for a moment, so readiness is not checked here.
		if always.Status.Phase != corev1.PodRunning || st.LastTerminationState.Terminated == nil || st.LastTerminationState.Terminated.ExitCode != 2 {
			t.Errorf("restartPolicy Always: phase %s status %+v", always.Status.Phase, st)
		}
		for _, name := range []string{"crash-never", "crash-always"} {
			if err := cs.CoreV1().Pods(testNS).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("kubectl logs follows new output", func(t *testing.T) {
		if len(pods) == 0 {
			t.Skip("no pods")
		}
		fctx, fcancel := context.WithTimeout(ctx, 4*time.Second)
		defer fcancel()
		cmd := exec.CommandContext(fctx, c.Binaries().Kubectl, "logs", "-f", "-n", testNS, pods[0].Name, "--tail=0")
		cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig())
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // let the stream open before the request it must show
		getEchoPath(ctx, t, pods[0].Status.PodIP, "/followed-request")
		cmd.Wait() // ends when fctx expires
		if !strings.Contains(out.String(), "/followed-request") {
			t.Errorf("kubectl logs -f did not stream the new request; got:\n%s", out.String())
		}
	})

	t.Run("api server restart", func(t *testing.T) {
		if err := c.RestartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		// A container that crashes while the API server is down is restarted at once, and
		// its status reaches the API server once it is back.
		victim := pods[0]
		pid := containerPids(t, []corev1.Pod{victim})[0]
		if err := c.StopAPIServer(); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // the agent restarts the container and fails to report it
		if err := c.StartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		p := waitPod(ctx, t, cs, victim.Name, func(p *corev1.Pod) bool {
			return podReady(p) && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount == 1
		})
		if lt := p.Status.ContainerStatuses[0].LastTerminationState.Terminated; lt == nil || lt.ExitCode != 137 || lt.Signal != 9 {
			t.Errorf("last termination %+v, want SIGKILL (exit code 137)", lt)
		}
		if _, err := cs.CoreV1().Namespaces().Get(ctx, testNS, metav1.GetOptions{}); err != nil {
			t.Fatalf("after restart: %v", err)
		}
		// The node keeps serving: its pods still answer and a new pod still starts.
		if _, err := kubectl(ctx, c, "scale", "-n", testNS, "deployment/echo", "--replicas=4"); err != nil {
			t.Fatal(err)
		}
		pods = waitReadyPods(ctx, t, cs, 4)
	})

	t.Run("delete removes processes and namespaces", func(t *testing.T) {
		pids := containerPids(t, pods)
		if len(pids) != len(pods) {
			t.Fatalf("container pids %v for %d pods", pids, len(pods))
		}
		if got := netnsWithPrefix(t, testBridge+"-"); len(got) != len(pods) {
			t.Fatalf("namespaces before delete %v, want %d", got, len(pods))
		}
		if err := cs.AppsV1().Deployments(testNS).Delete(ctx, "echo", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(ctx, t, "pods deleted", func() error {
			list, err := cs.CoreV1().Pods(testNS).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			if len(list.Items) > 0 {
				return fmt.Errorf("%d pods left", len(list.Items))
			}
			return nil
		})
		for _, pid := range pids {
			if processAlive(pid) {
				t.Errorf("container process %d still running after its pod was deleted", pid)
			}
		}
		if got := netnsWithPrefix(t, testBridge+"-"); len(got) > 0 {
			t.Errorf("namespaces left after delete: %v", got)
		}
	})

	t.Run("namespace deletion finishes", func(t *testing.T) {
		// The namespace controller deletes what is left (the Service, its EndpointSlice, the
		// ServiceAccount) and the namespace goes away.
		if err := cs.CoreV1().Namespaces().Delete(ctx, testNS, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(ctx, t, "namespace "+testNS+" deleted", func() error {
			ns, err := cs.CoreV1().Namespaces().Get(ctx, testNS, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("namespace phase %s", ns.Status.Phase)
		})
	})

	t.Run("stop leaves nothing behind", func(t *testing.T) {
		pids := c.Pids()
		if len(pids) != 3 {
			t.Errorf("control plane pids %v, want 3", pids)
		}
		// A pod still running at Stop: the node agent must kill it and remove its namespace.
		if err := c.Apply(ctx, []byte(strings.ReplaceAll(lonePod, "NS", metav1.NamespaceDefault))); err != nil {
			t.Fatal(err)
		}
		lone := waitPodIn(ctx, t, cs, metav1.NamespaceDefault, "lone", podReady)
		pids = append(pids, containerPids(t, []corev1.Pod{*lone})...)
		if got := netnsWithPrefix(t, testBridge+"-"); len(got) != 1 {
			t.Errorf("namespaces with one pod running: %v", got)
		}
		dir := c.Dir()
		stopped = true
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			if processAlive(pid) {
				t.Errorf("process %d still running after Stop", pid)
			}
		}
		if got := netnsWithPrefix(t, testBridge+"-"); len(got) > 0 {
			t.Errorf("namespaces left after Stop: %v", got)
		}
		out, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), testBridge) {
			t.Errorf("links left after Stop:\n%s", out)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cluster folder %s left after Stop: %v", dir, err)
		}
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func kubectl(ctx context.Context, c *devcluster.Cluster, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.Binaries().Kubectl, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// poll retries check every 250ms for at most two minutes.
func poll(ctx context.Context, t *testing.T, what string, check func() error) {
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

func waitReadyPods(ctx context.Context, t *testing.T, cs kubernetes.Interface, n int) []corev1.Pod {
	t.Helper()
	var ready []corev1.Pod
	poll(ctx, t, fmt.Sprintf("%d ready echo pods", n), func() error {
		list, err := cs.CoreV1().Pods(testNS).List(ctx, metav1.ListOptions{LabelSelector: "app=echo"})
		if err != nil {
			return err
		}
		ready = ready[:0]
		var states []string
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && podReady(&p) && p.Status.PodIP != "" {
				ready = append(ready, p)
			}
			states = append(states, fmt.Sprintf("%s:%s/%s", p.Name, p.Status.Phase, p.Status.Reason))
		}
		if len(ready) != n || len(list.Items) != n {
			return fmt.Errorf("%d of %d pods ready: %v", len(ready), len(list.Items), states)
		}
		return nil
	})
	return ready
}

func waitPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, done func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	return waitPodIn(ctx, t, cs, testNS, name, done)
}

func waitPodIn(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string, done func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	poll(ctx, t, "pod "+ns+"/"+name, func() error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod = p
		if !done(p) {
			return fmt.Errorf("phase %s reason %q", p.Status.Phase, p.Status.Reason)
		}
		return nil
	})
	return pod
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podIPs(pods []corev1.Pod) []string {
	var ips []string
	for _, p := range pods {
		ips = append(ips, p.Status.PodIP)
	}
	sort.Strings(ips)
	return ips
}

func waitEndpoints(ctx context.Context, t *testing.T, cs kubernetes.Interface, want []string) {
	t.Helper()
	poll(ctx, t, "endpointslice of echo", func() error {
		slices_, err := cs.DiscoveryV1().EndpointSlices(testNS).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=echo"})
		if err != nil {
			return err
		}
		var ready []string
		for _, s := range slices_.Items {
			for _, ep := range s.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					ready = append(ready, ep.Addresses...)
				}
			}
		}
		sort.Strings(ready)
		if !slices.Equal(ready, want) {
			return fmt.Errorf("ready endpoints %v, want %v", ready, want)
		}
		return nil
	})
}

// getEcho asks a pod's echo-basic for its JSON, from the host through the bridge.
func getEcho(ctx context.Context, t *testing.T, ip string) echoResponse {
	t.Helper()
	return getEchoPath(ctx, t, ip, "/hello")
}

func getEchoPath(ctx context.Context, t *testing.T, ip, path string) echoResponse {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	var resp echoResponse
	poll(ctx, t, "GET http://"+ip+":3000/", func() error {
		r, err := client.Get("http://" + ip + ":3000" + path)
		if err != nil {
			return err
		}
		defer r.Body.Close()
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return err
		}
		if r.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %s", r.StatusCode, body)
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			return fmt.Errorf("decode %q: %w", body, err)
		}
		if resp.Path != path {
			return fmt.Errorf("echoed path %q", resp.Path)
		}
		return nil
	})
	return resp
}

// containerPids reads the pid the node agent puts into each container id.
func containerPids(t *testing.T, pods []corev1.Pod) []int {
	t.Helper()
	var pids []int
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			s, ok := strings.CutPrefix(cs.ContainerID, "rauta-devcluster://")
			if !ok {
				t.Fatalf("pod %s container id %q", p.Name, cs.ContainerID)
			}
			pid, err := strconv.Atoi(s)
			if err != nil {
				t.Fatal(err)
			}
			if !processAlive(pid) {
				t.Fatalf("pod %s: process %d not running", p.Name, pid)
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

// processAlive treats a zombie as gone: it has exited, only its parent has not reaped it.
func processAlive(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] != "Z"
}

func netnsWithPrefix(t *testing.T, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names
}
