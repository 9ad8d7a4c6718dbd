// Package deployed tests RAUTA as users deploy it: the OCI image built by
// internal/image, the Helm chart installed with helm's own install action,
// the controller and one data plane per Gateway running as pods from that
// image on the local cluster (test/devcluster), and traffic through the
// Gateways' load-balancer addresses.
package deployed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
// other cluster tests.
const (
	bridge      = "rdep0"
	podCIDR     = "10.244.213.0/24"
	serviceCIDR = "10.96.213.0/24"
	lbCIDR      = "127.0.213.0/24"
	releaseNS   = "rauta-system"
)

// backends are two echo servers, each with a Service, for the two Gateways.
var backends = `
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
` + echoBackend("echo-a") + "\n---\n" + echoBackend("echo-b")

// echoBackend is a one-replica echo server Deployment and its Service.
// Its readiness probe tolerates a slow answer or a few: under the tests'
// load on a busy 2-core CI machine, kubelet's default (1 s timeout, 3
// failures) can mark the only endpoint not ready for a few seconds, and
// the data plane then rightly answers 503 "no ready endpoints", which a
// rollout test would take for a request the rollout lost.
func echoBackend(name string) string {
	return strings.ReplaceAll(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: @NAME@, namespace: apps}
spec:
  replicas: 1
  selector: {matchLabels: {app: @NAME@}}
  template:
    metadata: {labels: {app: @NAME@}}
    spec:
      containers:
      - name: echo
        image: registry.k8s.io/gateway-api/echo-basic:v1.6.3
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        readinessProbe: {httpGet: {path: /, port: 3000}, periodSeconds: 1, timeoutSeconds: 5, failureThreshold: 10}
---
apiVersion: v1
kind: Service
metadata: {name: @NAME@, namespace: apps}
spec:
  selector: {app: @NAME@}
  ports: [{port: 8080, targetPort: 3000}]
`, "@NAME@", name)
}

// gateways puts two Gateways on port 80, each with its own route: with a
// data plane per Gateway both are served, on two addresses.
const gateways = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw-a, namespace: apps}
spec:
  gatewayClassName: rauta
  infrastructure:
    labels: {team: a}
    annotations: {owner: team-a}
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: route-a, namespace: apps}
spec:
  parentRefs: [{name: gw-a}]
  rules: [{backendRefs: [{name: echo-a, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw-b, namespace: apps}
spec:
  gatewayClassName: rauta
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: route-b, namespace: apps}
spec:
  parentRefs: [{name: gw-b}]
  rules: [{backendRefs: [{name: echo-b, port: 8080}]}]
`

type env struct {
	t       *testing.T
	ctx     context.Context
	rc      *rautacluster.Env
	cluster *devcluster.Cluster
	cs      kubernetes.Interface
	cl      client.Client
}

func TestDeployed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("!!! SKIPPING THE DEPLOYED-MODE TEST: the local cluster's node agent needs root (network namespaces); run as root, as CI does")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	rc := rautacluster.Start(ctx, t, rautacluster.Options{Bridge: bridge, PodCIDR: podCIDR, ServiceCIDR: serviceCIDR, LoadBalancerCIDR: lbCIDR})
	img := rc.Image
	e := &env{t: t, ctx: ctx, rc: rc, cluster: rc.Cluster, cs: rc.CS, cl: rc.CL}
	defer rc.DumpOnFailure(t, releaseNS, "apps")

	start := time.Now()
	if err := chartinstall.Install(ctx, rc.Cluster.Kubeconfig(), releaseNS, map[string]any{
		"image":      map[string]any{"tag": img.Version},
		"controller": map[string]any{"extraArgs": []any{"-hold-off=20ms", "-max-delay=200ms"}},
		"dataPlane":  map[string]any{"replicas": 2},
	}); err != nil {
		t.Fatal(err)
	}
	e.waitDeploymentReady(releaseNS, "rauta-controller", 1)
	t.Logf("chart installed, controller ready in %s", time.Since(start).Round(time.Millisecond))

	if err := rc.Cluster.Apply(ctx, []byte(backends)); err != nil {
		t.Fatalf("apply backends: %v", err)
	}
	start = time.Now()
	if err := rc.Cluster.Apply(ctx, []byte(gateways)); err != nil {
		t.Fatalf("apply gateways: %v", err)
	}
	addrA := e.waitProgrammed("gw-a")
	addrB := e.waitProgrammed("gw-b")
	t.Logf("both Gateways programmed in %s: gw-a %s, gw-b %s", time.Since(start).Round(time.Millisecond), addrA, addrB)
	if addrA == addrB {
		t.Fatalf("two Gateways on port 80 share the address %s", addrA)
	}
	if pod := e.echoPod("http://" + addrA + "/"); !strings.HasPrefix(pod, "echo-a-") {
		t.Errorf("gw-a answered from pod %q, want echo-a", pod)
	}
	if pod := e.echoPod("http://" + addrB + "/"); !strings.HasPrefix(pod, "echo-b-") {
		t.Errorf("gw-b answered from pod %q, want echo-b", pod)
	}

	t.Run("provisioned objects", func(t *testing.T) {
		d, err := rc.CS.AppsV1().Deployments("apps").Get(ctx, "rauta-gw-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if own := d.OwnerReferences; len(own) != 1 || own[0].Kind != "Gateway" || own[0].Name != "gw-a" {
			t.Errorf("Deployment owners %+v, want Gateway gw-a", own)
		}
		if d.Spec.Template.Labels["team"] != "a" || d.Spec.Template.Annotations["owner"] != "team-a" {
			t.Errorf("pod template lacks spec.infrastructure metadata: labels %v annotations %v", d.Spec.Template.Labels, d.Spec.Template.Annotations)
		}
		if *d.Spec.Replicas != 2 {
			t.Errorf("replicas %d, want 2 from the chart's GatewayParameters", *d.Spec.Replicas)
		}
	})

	t.Run("data planes keep serving while the controller is away", func(t *testing.T) {
		e := e.with(t)
		e.scale(releaseNS, "rauta-controller", 0)
		// Back even when this subtest fails, so the next ones test what
		// they say.
		defer func() {
			e.scale(releaseNS, "rauta-controller", 1)
			e.waitDeploymentReady(releaseNS, "rauta-controller", 1)
		}()
		e.waitNoPods(releaseNS, "app.kubernetes.io/component=controller")
		for i := range 20 {
			if pod := e.echoPod("http://" + addrA + "/"); !strings.HasPrefix(pod, "echo-a-") {
				t.Fatalf("request %d with the controller gone: pod %q", i, pod)
			}
		}
	})

	t.Run("rollout restart of a data plane under load loses nothing", func(t *testing.T) {
		e := e.with(t)
		res := e.underLoad("http://"+addrA+"/", func() { e.rolloutRestart("apps", "rauta-gw-a") })
		t.Logf("data-plane rollout: %d requests, %d failed, first failure: %v", res.ok+res.failed, res.failed, res.firstErr)
		if res.failed > 0 {
			t.Errorf("%d of %d requests failed during the data plane's rollout (first: %v)", res.failed, res.ok+res.failed, res.firstErr)
		}
	})

	t.Run("rollout restart of the controller under load loses nothing", func(t *testing.T) {
		e := e.with(t)
		res := e.underLoad("http://"+addrB+"/", func() { e.rolloutRestart(releaseNS, "rauta-controller") })
		t.Logf("controller rollout: %d requests, %d failed, first failure: %v", res.ok+res.failed, res.failed, res.firstErr)
		if res.failed > 0 {
			t.Errorf("%d of %d requests failed during the controller's rollout (first: %v)", res.failed, res.ok+res.failed, res.firstErr)
		}
	})

	t.Run("deleting a Gateway removes its data plane", func(t *testing.T) {
		e := e.with(t)
		if err := rc.CL.Delete(ctx, &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "gw-b"}}); err != nil {
			t.Fatal(err)
		}
		e.eventually("gw-b's Deployment and Service to be deleted", 2*time.Minute, func() (bool, string) {
			_, errD := rc.CS.AppsV1().Deployments("apps").Get(ctx, "rauta-gw-b", metav1.GetOptions{})
			_, errS := rc.CS.CoreV1().Services("apps").Get(ctx, "rauta-gw-b", metav1.GetOptions{})
			return apierrors.IsNotFound(errD) && apierrors.IsNotFound(errS), fmt.Sprintf("deployment: %v, service: %v", errD, errS)
		})
		if pod := e.echoPod("http://" + addrA + "/"); !strings.HasPrefix(pod, "echo-a-") {
			t.Errorf("gw-a after gw-b's deletion: pod %q", pod)
		}
	})
}

// with is e for a subtest: its helpers fail t, not the parent test (which
// must not be failed from a subtest's goroutine).
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// waitProgrammed waits for a Gateway's Programmed=True and returns its
// first address with the port.
func (e *env) waitProgrammed(name string) string {
	var addr string
	e.eventually("Gateway "+name+" to be programmed with an address", 3*time.Minute, func() (bool, string) {
		var gw gwv1.Gateway
		if err := e.cl.Get(e.ctx, types.NamespacedName{Namespace: "apps", Name: name}, &gw); err != nil {
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

var httpClient = &http.Client{Timeout: 5 * time.Second}

// echoPod GETs url and returns the echo server's pod name.
func (e *env) echoPod(url string) string {
	e.t.Helper()
	var pod string
	e.eventually("a 200 from "+url, time.Minute, func() (bool, string) {
		p, err := get(url)
		pod = p
		return err == nil, fmt.Sprint(err)
	})
	return pod
}

func get(url string) (string, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	var echo struct {
		Pod string `json:"pod"`
	}
	if err := json.Unmarshal(body, &echo); err != nil {
		return "", fmt.Errorf("not echo JSON: %q", body)
	}
	return echo.Pod, nil
}

type loadResult struct {
	ok, failed int64
	firstErr   error
}

// underLoad runs bounded load against url (4 clients: two on new
// connections, two on keep-alive; at most 3 minutes) while during runs, and
// for 3 s after it returns. The data-plane pods' logs are followed
// meanwhile and shown when a request failed.
func (e *env) underLoad(url string, during func()) loadResult {
	var res loadResult
	var errOnce sync.Once
	var ok, failed atomic.Int64
	ctx, cancel := context.WithTimeout(e.ctx, 3*time.Minute)
	defer cancel()
	logs := followPodLogs(ctx, e.cs, "apps", "rauta-gw-")
	var wg sync.WaitGroup
	for i := range 4 {
		keepAlive := i%2 == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A source address of its own: the new-connection clients
			// leave thousands of sockets in TIME_WAIT, which must not use
			// up 127.0.0.1's ephemeral ports that other tests bind.
			dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 214, 1)}, Timeout: 5 * time.Second}
			tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1, DialContext: dialer.DialContext}
			c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			defer tr.CloseIdleConnections()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := c.Do(req)
				if err == nil {
					var body []byte
					body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d at %s: %q", resp.StatusCode, time.Now().UTC().Format(time.RFC3339Nano), body)
					}
				}
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { res.firstErr = err })
				} else {
					ok.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	during()
	time.Sleep(3 * time.Second)
	cancel()
	wg.Wait()
	res.ok, res.failed = ok.Load(), failed.Load()
	if res.failed > 0 {
		logs.report(e.t)
	}
	return res
}

// rolloutRestart does what kubectl rollout restart does and waits until
// the rollout completed.
func (e *env) rolloutRestart(ns, name string) {
	e.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
	d, err := e.cs.AppsV1().Deployments(ns).Patch(e.ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "kubectl-rollout"})
	if err != nil {
		e.t.Fatalf("restart %s/%s: %v", ns, name, err)
	}
	e.eventually("rollout of "+ns+"/"+name, 3*time.Minute, func() (bool, string) {
		cur, err := e.cs.AppsV1().Deployments(ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st := cur.Status
		done := st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == *cur.Spec.Replicas &&
			st.Replicas == *cur.Spec.Replicas && st.AvailableReplicas == *cur.Spec.Replicas
		return done, fmt.Sprintf("%+v", st)
	})
	// The old pods are gone only when their processes have drained.
	e.eventually("old pods of "+ns+"/"+name+" to exit", 2*time.Minute, func() (bool, string) {
		pods, err := e.cs.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(d.Spec.Selector)})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == int(*d.Spec.Replicas), fmt.Sprintf("%d pods", len(pods.Items))
	})
}

func (e *env) scale(ns, name string, replicas int32) {
	e.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	if _, err := e.cs.AppsV1().Deployments(ns).Patch(e.ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		e.t.Fatalf("scale %s/%s: %v", ns, name, err)
	}
}

func (e *env) waitNoPods(ns, selector string) {
	e.eventually("no pods "+selector+" in "+ns, 2*time.Minute, func() (bool, string) {
		pods, err := e.cs.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprintf("%d pods", len(pods.Items))
	})
}

func (e *env) waitDeploymentReady(ns, name string, want int32) {
	e.eventually("Deployment "+ns+"/"+name+" ready", 3*time.Minute, func() (bool, string) {
		d, err := e.cs.AppsV1().Deployments(ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return d.Status.ReadyReplicas >= want && d.Status.ObservedGeneration >= d.Generation, fmt.Sprintf("%+v", d.Status)
	})
}

// eventually polls cond every 200 ms until it holds or timeout passes.
func (e *env) eventually(what string, timeout time.Duration, cond func() (bool, string)) {
	e.t.Helper()
	rautacluster.Eventually(e.ctx, e.t, what, timeout, 200*time.Millisecond, cond)
}
