// Package chaos is the fault tier: RAUTA deployed as users deploy it (the
// OCI image, the Helm chart, a data plane per Gateway, on the local cluster
// of test/devcluster) under steady load through a Gateway's address, while
// the API server, the controller, a data-plane process and a backend are
// killed in turn. Each fault counts failed requests and the time to
// recover; docs/reliability.md holds the measured numbers.
package chaos_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/test/chartinstall"
	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/rautacluster"
)

// This test's cluster has its own bridge and ranges, so it runs beside the
// other cluster tests; its load clients dial from 127.0.216.0/24.
const (
	bridge      = "rchao0"
	podCIDR     = "10.244.215.0/24"
	serviceCIDR = "10.96.215.0/24"
	lbCIDR      = "127.0.215.0/24"
	releaseNS   = "rauta-system"
	appsNS      = "apps"
)

// rate is the steady load, in requests per second.
const rate = 200

// world is a backend with two replicas behind one Gateway with one route;
// the route's response header X-Chaos says which version of it a data
// plane serves.
const world = `
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: apps}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: echo
        image: registry.k8s.io/gateway-api/echo-basic:v1.6.3
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        readinessProbe: {httpGet: {path: /, port: 3000}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: apps}
spec:
  selector: {app: echo}
  ports: [{port: 8080, targetPort: 3000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: apps}
spec:
  gatewayClassName: rauta
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: route, namespace: apps}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: echo, port: 8080}]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: X-Chaos, value: v0}]}
`

type env struct {
	t       *testing.T
	ctx     context.Context
	rc      *rautacluster.Env
	cluster *devcluster.Cluster
	cs      kubernetes.Interface
	cl      client.Client
	url     string
	version int // of the route's X-Chaos header
}

// result is one row of docs/reliability.md.
type result struct {
	fault string
	outcome
	// propagation is from the moment the route could be changed again
	// (after the fault) until the Gateway served the change; 0 when the
	// fault does not involve the control plane.
	propagation time.Duration
}

func TestChaos(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("!!! SKIPPING THE CHAOS TEST: the local cluster's node agent needs root (network namespaces); run as root, as CI does")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	e := setup(ctx, t)
	defer e.rc.DumpOnFailure(t, releaseNS, appsNS)

	var results []result
	run := func(name string, f func(e *env) result) {
		t.Run(name, func(t *testing.T) {
			r := f(e.with(t))
			t.Logf("%s: %s; route change served %s after recovery", r.fault, r.outcome, r.propagation.Round(time.Millisecond))
			results = append(results, r)
		})
	}
	run("api server SIGKILLed and restarted", (*env).killAPIServer)
	run("controller SIGKILLed", (*env).killController)
	run("data plane SIGKILLed", (*env).killDataPlane)
	run("backend SIGKILLed", (*env).killBackend)

	var b strings.Builder
	fmt.Fprintf(&b, "| fault | requests | failed | first success after the fault | error rate 0 after | route change served after |\n|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s |\n", r.fault, r.requests, r.failed,
			r.firstOK.Round(time.Millisecond), r.clean.Round(time.Millisecond), r.propagation.Round(time.Millisecond))
	}
	t.Logf("results at %d requests/s:\n%s", rate, b.String())
}

func setup(ctx context.Context, t *testing.T) *env {
	start := time.Now()
	rc := rautacluster.Start(ctx, t, rautacluster.Options{Bridge: bridge, PodCIDR: podCIDR, ServiceCIDR: serviceCIDR, LoadBalancerCIDR: lbCIDR})
	img, cluster := rc.Image, rc.Cluster
	e := &env{t: t, ctx: ctx, rc: rc, cluster: cluster, cs: rc.CS, cl: rc.CL}
	if err := chartinstall.Install(ctx, cluster.Kubeconfig(), releaseNS, map[string]any{
		"image":      map[string]any{"tag": img.Version},
		"controller": map[string]any{"extraArgs": []any{"-hold-off=20ms", "-max-delay=200ms"}},
		"dataPlane":  map[string]any{"replicas": 2},
	}); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Apply(ctx, []byte(world)); err != nil {
		t.Fatalf("apply: %v", err)
	}
	e.url = "http://" + e.waitProgrammed() + "/"
	e.waitPodsReady(appsNS, "app=echo", 2)
	e.waitPodsReady(appsNS, dataPlaneSelector, 2)
	e.waitVersion(time.Minute)
	t.Logf("cluster, chart, backends and Gateway ready in %s; Gateway at %s", time.Since(start).Round(time.Millisecond), e.url)
	return e
}

const dataPlaneSelector = "app.kubernetes.io/component=dataplane,gateway.networking.k8s.io/gateway-name=gw"

// with is e for a subtest: its helpers fail t.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// underLoad runs the steady load around a fault: 2 s before it, kill
// (which sends the signal), recover (which waits until the system is
// whole again and returns what it measured), and 3 s after that.
func (e *env) underLoad(kill func() error, recover func() time.Duration) (outcome, time.Duration) {
	e.t.Helper()
	l := startLoad(e.ctx, e.url, rate)
	defer l.stop()
	time.Sleep(2 * time.Second)
	faultAt := l.since(time.Now())
	if err := kill(); err != nil {
		e.t.Fatal(err)
	}
	d := recover()
	time.Sleep(3 * time.Second)
	l.stop()
	return l.outcome(faultAt), d
}

// sigkill kills a process by pid; the processes are children of this
// test (the cluster's and the node's), so the pid cannot be reused while
// they are unreaped.
func sigkill(what string, pid int) func() error {
	return func() error {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill %s (pid %d): %w", what, pid, err)
		}
		return nil
	}
}

// killAPIServer SIGKILLs kube-apiserver, keeps it down for 5 s, starts it
// again and changes the route. The data planes keep their last config:
// no request may fail, and the change must be served once the API server
// is back.
func (e *env) killAPIServer() result {
	o, prop := e.underLoad(sigkill("kube-apiserver", e.apiServerPid()), func() time.Duration {
		time.Sleep(5 * time.Second) // traffic while the API server is gone
		e.eventually("kube-apiserver to start again", time.Minute, func() (bool, string) {
			err := e.cluster.StartAPIServer(e.ctx)
			return err == nil, fmt.Sprint(err) // "already running" until the killed one is reaped
		})
		return e.changeRoute(time.Now())
	})
	if o.failed > 0 {
		e.t.Errorf("with the API server killed: %s; want no failed request (the data planes keep their config)", o)
	}
	return result{fault: "kube-apiserver SIGKILLed, restarted after 5 s", outcome: o, propagation: prop}
}

// killController SIGKILLs the controller's process; the node agent
// restarts the container, as a kubelet would. No request may fail, and a
// route change must be served again.
func (e *env) killController() result {
	pod, pid, restarts := e.podProcess(releaseNS, "app.kubernetes.io/component=controller")
	o, prop := e.underLoad(sigkill("the controller", pid), func() time.Duration {
		e.waitRestarted(releaseNS, pod, restarts)
		return e.changeRoute(time.Now())
	})
	if o.failed > 0 {
		e.t.Errorf("with the controller killed: %s; want no failed request (the data planes keep their config)", o)
	}
	return result{fault: "controller SIGKILLed (container restarted by the node agent)", outcome: o, propagation: prop}
}

// Bounds for the faults that lose in-flight requests: a regression
// (a data plane or endpoint that stays in rotation after its process
// died, or no recovery at all) breaks them.
const (
	maxFailedShare = 0.02 // of the phase's requests
	maxClean       = 10 * time.Second
)

// killDataPlane SIGKILLs one of the Gateway's two data-plane processes.
// The Service routes new connections to the other replica; requests in
// flight on the killed one fail.
func (e *env) killDataPlane() result {
	return e.killPodProcess("one of 2 data-plane processes SIGKILLed", appsNS, dataPlaneSelector)
}

// killBackend SIGKILLs one of the route's two backend processes.
func (e *env) killBackend() result {
	return e.killPodProcess("one of 2 backend processes SIGKILLed", appsNS, "app=echo")
}

func (e *env) killPodProcess(fault, ns, selector string) result {
	pod, pid, restarts := e.podProcess(ns, selector)
	o, _ := e.underLoad(sigkill(ns+"/"+pod, pid), func() time.Duration {
		e.waitRestarted(ns, pod, restarts)
		return 0
	})
	if float64(o.failed) > maxFailedShare*float64(o.requests) || o.clean > maxClean {
		e.t.Errorf("%s: %s; want at most %.0f%% failed and an error rate of 0 within %s",
			fault, o, 100*maxFailedShare, maxClean)
	}
	return result{fault: fault, outcome: o}
}

// apiServerPid finds kube-apiserver among the cluster's processes.
func (e *env) apiServerPid() int {
	for _, pid := range e.cluster.Pids() {
		cmd, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err == nil && strings.Contains(string(cmd), "kube-apiserver") {
			return pid
		}
	}
	e.t.Fatalf("no kube-apiserver among the cluster's processes %v", e.cluster.Pids())
	return 0
}

// podProcess picks the first running pod of selector and returns its
// name, its first container's process id (the devcluster node names a
// container by its pid: rauta-devcluster://PID) and restart count.
func (e *env) podProcess(ns, selector string) (string, int, int32) {
	e.t.Helper()
	pods, err := e.cs.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range pods.Items {
		if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Running == nil {
			continue
		}
		st := p.Status.ContainerStatuses[0]
		pid, err := strconv.Atoi(strings.TrimPrefix(st.ContainerID, "rauta-devcluster://"))
		if err != nil {
			e.t.Fatalf("pod %s/%s: container id %q names no process", ns, p.Name, st.ContainerID)
		}
		return p.Name, pid, st.RestartCount
	}
	e.t.Fatalf("no running pod %s in %s", selector, ns)
	return "", 0, 0
}

// waitRestarted waits until the pod's container restarted and the pod is
// ready again.
func (e *env) waitRestarted(ns, name string, restarts int32) {
	e.eventually("pod "+ns+"/"+name+" restarted and ready", time.Minute, func() (bool, string) {
		p, err := e.cs.CoreV1().Pods(ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if len(p.Status.ContainerStatuses) == 0 {
			return false, "no container status"
		}
		st := p.Status.ContainerStatuses[0]
		return st.RestartCount > restarts && st.Ready, fmt.Sprintf("restarts %d ready %v", st.RestartCount, st.Ready)
	})
}

func (e *env) waitPodsReady(ns, selector string, n int) {
	e.eventually(fmt.Sprintf("%d ready pods %s in %s", n, selector, ns), 3*time.Minute, func() (bool, string) {
		pods, err := e.cs.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready == n && len(pods.Items) == n, fmt.Sprintf("%d of %d ready", ready, len(pods.Items))
	})
}

// changeRoute sets the route's X-Chaos header to the next version and
// returns how long after from the Gateway served it. The API server may
// have just come back, so the write is retried.
func (e *env) changeRoute(from time.Time) time.Duration {
	e.version++
	patch := fmt.Sprintf(`{"spec":{"rules":[{"backendRefs":[{"name":"echo","port":8080}],"filters":[{"type":"ResponseHeaderModifier","responseHeaderModifier":{"set":[{"name":"X-Chaos","value":"v%d"}]}}]}]}}`, e.version)
	e.eventually("the route change to be written", time.Minute, func() (bool, string) {
		err := e.cl.Patch(e.ctx, &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: appsNS, Name: "route"}}, client.RawPatch(types.MergePatchType, []byte(patch)))
		return err == nil, fmt.Sprint(err)
	})
	e.waitVersion(2 * time.Minute)
	return time.Since(from)
}

// waitVersion waits until the Gateway answers with the current X-Chaos
// version, several times in a row (so both data-plane replicas have it).
func (e *env) waitVersion(timeout time.Duration) {
	want := "v" + strconv.Itoa(e.version)
	c := &http.Client{Timeout: requestTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	e.eventually("the Gateway to serve X-Chaos: "+want, timeout, func() (bool, string) {
		for range 8 {
			resp, err := c.Get(e.url)
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			if got := resp.Header.Get("X-Chaos"); resp.StatusCode != http.StatusOK || got != want {
				return false, fmt.Sprintf("status %d, X-Chaos %q", resp.StatusCode, got)
			}
		}
		return true, ""
	})
}

// waitProgrammed waits for the Gateway's Programmed=True and returns its
// address with the port.
func (e *env) waitProgrammed() string {
	var addr string
	e.eventually("Gateway gw to be programmed with an address", 3*time.Minute, func() (bool, string) {
		var gw gwv1.Gateway
		if err := e.cl.Get(e.ctx, types.NamespacedName{Namespace: appsNS, Name: "gw"}, &gw); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(gw.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != gw.Generation || len(gw.Status.Addresses) == 0 {
			return false, fmt.Sprintf("conditions %+v addresses %+v", gw.Status.Conditions, gw.Status.Addresses)
		}
		addr = gw.Status.Addresses[0].Value + ":80"
		return true, ""
	})
	return addr
}

// eventually polls cond every 100 ms until it holds or timeout passes.
func (e *env) eventually(what string, timeout time.Duration, cond func() (bool, string)) {
	e.t.Helper()
	rautacluster.Eventually(e.ctx, e.t, what, timeout, 100*time.Millisecond, cond)
}
