package meshconformance_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"sigs.k8s.io/gateway-api/conformance/utils/echo"

	"github.com/false-systems/rauta/internal/mesh"
	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
)

// The opt-out test's cluster ranges (10.244.222.0/24, 10.96.242.0/24);
// the mesh proxy on the bridge address.
const (
	optBridge    = "rmsh1"
	optPodCIDR   = "10.244.222.0/24"
	optSvcCIDR   = "10.96.242.0/24"
	optProxyAddr = "10.244.222.1:15001"
	// optProxyIP is where steered requests come from at the endpoint: the
	// proxy dials it from the bridge address.
	optProxyIP = "10.244.222.1"
)

// optOutManifests: an echo Service with a producer route that sets a
// request header (so a steered request shows it), and two client pods,
// one in a namespace that opted out.
const optOutManifests = `
apiVersion: v1
kind: Namespace
metadata: {name: meshopt-server}
---
apiVersion: v1
kind: Namespace
metadata:
  name: meshopt-out
  labels: {"rauta.io/mesh-opt-out": "true"}
---
apiVersion: v1
kind: Namespace
metadata: {name: meshopt-in}
---
apiVersion: v1
kind: Pod
metadata: {name: echo, namespace: meshopt-server, labels: {app: echo}}
spec:
  containers:
    - {name: echo, image: "registry.k8s.io/gateway-api/echo-advanced:v1.5.1", args: ["--port=8080"]}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: meshopt-server}
spec:
  selector: {app: echo}
  ports:
    - {name: http, port: 80, targetPort: 8080, appProtocol: http}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: meshopt-out}
spec:
  containers:
    - {name: echo, image: "registry.k8s.io/gateway-api/echo-advanced:v1.5.1", args: ["--port=8080"]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: meshopt-in}
spec:
  containers:
    - {name: echo, image: "registry.k8s.io/gateway-api/echo-advanced:v1.5.1", args: ["--port=8080"]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: meshopt-server}
spec:
  parentRefs:
    - {group: "", kind: Service, name: echo, port: 80}
  rules:
    - filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{name: X-Mesh, value: steered}]
      backendRefs:
        - {name: echo, port: 80}
`

// TestMeshOptOut checks the opt-out labels with real pods: a client in a
// namespace labelled rauta.io/mesh-opt-out=true reaches the Service's
// endpoint directly (from its own address, without the route's header),
// while a client elsewhere goes through the mesh proxy; the label on a pod
// takes it out too; removing the namespace's label steers its pod again.
func TestMeshOptOut(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("!!! skipping TestMeshOptOut: the devcluster node agent and the mesh's eBPF programs need root; CI runs as root")
	}
	cgMount, err := mesh.Cgroup2Mount()
	if err != nil {
		t.Skipf("!!! skipping TestMeshOptOut: no cgroup2 mount: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root, err := devcluster.FindRepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bins, err := devcluster.EnsureBinaries(ctx, root, true)
	if err != nil {
		t.Skipf("!!! skipping TestMeshOptOut: devcluster binaries are missing and could not be built: %v", err)
	}
	dir := t.TempDir()
	layout, err := devcluster.BuildEchoAdvancedImage(ctx, root, dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := devcluster.Start(ctx, devcluster.Options{
		RepoRoot:    root,
		Binaries:    &bins,
		ServiceCIDR: optSvcCIDR,
		Node:        &node.Config{Bridge: optBridge, PodCIDR: optPodCIDR, Images: node.EchoAdvancedImages(layout)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	startMesh(t, c, filepath.Join(cgMount, "rauta-devcluster-"+optBridge), optProxyAddr, dir)
	if err := c.Apply(ctx, []byte(optOutManifests)); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := cs.CoreV1().Services("meshopt-server").Get(ctx, "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + svc.Spec.ClusterIP + "/"
	out := podClient{cs: cs, c: c, ns: "meshopt-out", name: "client"}
	in := podClient{cs: cs, c: c, ns: "meshopt-in", name: "client"}
	for _, p := range []*podClient{&out, &in} {
		p.waitRunning(ctx, t)
	}

	// The route is in place once the client outside the opted-out
	// namespace is steered.
	in.eventually(ctx, t, url, true, "a client in a namespace without the label")
	out.eventually(ctx, t, url, false, "a client in a namespace labelled "+mesh.OptOutLabel+"=true")

	// The pod's own label takes it out of the mesh as well.
	label(ctx, t, cs, "pods", in.ns, in.name, `"true"`)
	in.eventually(ctx, t, url, false, "a client pod labelled "+mesh.OptOutLabel+"=true")

	// "false" on a pod opts it back in inside an opted-out namespace.
	label(ctx, t, cs, "pods", out.ns, out.name, `"false"`)
	out.eventually(ctx, t, url, true, "a client pod labelled "+mesh.OptOutLabel+"=false in an opted-out namespace")

	// Without the labels the pods are steered again.
	label(ctx, t, cs, "pods", out.ns, out.name, "null")
	label(ctx, t, cs, "namespaces", "", out.ns, "null")
	label(ctx, t, cs, "pods", in.ns, in.name, "null")
	out.eventually(ctx, t, url, true, "the client after its namespace's label was removed")
	in.eventually(ctx, t, url, true, "the client after its pod label was removed")
}

// label sets (value a JSON string) or removes (null) the opt-out label.
func label(ctx context.Context, t *testing.T, cs kubernetes.Interface, resource, ns, name, value string) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:%s}}}`, mesh.OptOutLabel, value))
	var err error
	switch resource {
	case "pods":
		_, err = cs.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	case "namespaces":
		_, err = cs.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	}
	if err != nil {
		t.Fatalf("label %s %s/%s: %v", resource, ns, name, err)
	}
}

// podClient runs the echo image's client inside a pod (kubectl exec).
type podClient struct {
	cs       kubernetes.Interface
	c        *devcluster.Cluster
	ns, name string
	ip       string
}

func (p *podClient) waitRunning(ctx context.Context, t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pod, err := p.cs.CoreV1().Pods(p.ns).Get(ctx, p.name, metav1.GetOptions{})
		if err == nil && pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "" {
			p.ip = pod.Status.PodIP
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s/%s not running: %v %+v", p.ns, p.name, err, pod.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// get sends one request from the pod and parses the echo's answer.
func (p *podClient) get(ctx context.Context, url string) (echo.Response, error) {
	req := p.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(p.ns).Name(p.name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "echo", Command: []string{"client", url}, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	exe, err := remotecommand.NewSPDYExecutor(p.c.RESTConfig(), "POST", req.URL())
	if err != nil {
		return echo.Response{}, err
	}
	var stdout, stderr bytes.Buffer
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := exe.StreamWithContext(rctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		return echo.Response{}, fmt.Errorf("exec client: %w (stderr %q)", err, stderr.String())
	}
	return echo.ParseResponse(stdout.String()), nil
}

// eventually waits (at most a minute, for the agent's sync) until a
// request from the pod is steered (the route's header, from the proxy's
// address) or direct (no header, from the pod's own address), and fails
// with the last answer otherwise. A request that is neither (the header
// without the proxy's address, or the reverse) fails at once.
func (p *podClient) eventually(ctx context.Context, t *testing.T, url string, steered bool, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last string
	for {
		r, err := p.get(ctx, url)
		if err == nil && r.Code == "200" {
			header := r.RequestHeaders.Get("X-Mesh") == "steered"
			switch {
			case header && r.IP == optProxyIP:
				if steered {
					return
				}
			case !header && r.IP == p.ip:
				if !steered {
					return
				}
			default:
				t.Fatalf("%s: answer neither steered nor direct: X-Mesh %q from %s (pod %s, proxy %s)", what, r.RequestHeaders.Get("X-Mesh"), r.IP, p.ip, optProxyIP)
			}
			last = fmt.Sprintf("X-Mesh %q from %s", r.RequestHeaders.Get("X-Mesh"), r.IP)
		} else {
			last = fmt.Sprintf("code %q, err %v", r.Code, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: want steered=%v within a minute, last answer: %s", what, steered, last)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
