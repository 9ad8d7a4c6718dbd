package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/poll"
	"github.com/false-systems/rauta/internal/provider/kube"
	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/integration/harness"
)

type environment struct {
	cluster *devcluster.Cluster
	bin     string
	dir     string
	cs      kubernetes.Interface
	cl      client.Client
}

func newEnvironment(cluster *devcluster.Cluster, bin, dir string) (*environment, error) {
	cs, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		return nil, err
	}
	scheme, err := kube.NewScheme()
	if err != nil {
		return nil, err
	}
	cl, err := client.New(cluster.RESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	return &environment{cluster: cluster, bin: bin, dir: dir, cs: cs, cl: cl}, nil
}

// replica describes one controller process of a test.
type replica struct {
	controllerName, lease, identity, pool string
}

// startController runs a controller process until the test ends (SIGTERM,
// reaped) and prints its log if the test failed.
func (e *environment) startController(ctx context.Context, t *testing.T, r replica) *harness.Controller {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), r.identity+".log")
	c, err := harness.StartController(ctx, harness.ControllerConfig{
		Binary:         e.bin,
		Kubeconfig:     e.cluster.Kubeconfig(),
		AddressPool:    r.pool,
		ControllerName: r.controllerName,
		LeaseName:      r.lease,
		Identity:       r.identity,
		HoldOff:        20 * time.Millisecond,
		MaxDelay:       200 * time.Millisecond,
		LogPath:        logPath,
	})
	if err != nil {
		t.Fatalf("start controller %s: %v", r.identity, err)
	}
	t.Cleanup(func() {
		if err := c.Stop(10 * time.Second); err != nil && !strings.Contains(err.Error(), "signal: killed") {
			t.Errorf("controller %s: %v", r.identity, err)
		}
		if t.Failed() {
			t.Logf("controller %s log (tail):\n%s", r.identity, c.LogTail(48<<10))
		}
	})
	return c
}

// apply server-side applies a manifest after replacing each key of vars.
func (e *environment) apply(ctx context.Context, t *testing.T, manifest string, vars ...string) {
	t.Helper()
	if err := e.cluster.Apply(ctx, []byte(strings.NewReplacer(vars...).Replace(manifest))); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// namespace creates ns and deletes it when the test ends (without waiting:
// the next test uses its own namespace and GatewayClass).
func (e *environment) namespace(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	e.apply(ctx, t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: @NS@}\n", "@NS@", ns)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
			t.Logf("delete namespace %s: %v", ns, err)
		}
	})
}

// readyPods waits until exactly n pods labelled app=app are ready and
// returns their names.
func (e *environment) readyPods(ctx context.Context, t *testing.T, ns, app string, n int) []string {
	t.Helper()
	var names []string
	poll.NoError(t, 90*time.Second, fmt.Sprintf("%d ready pods of %s/%s", n, ns, app), func() error {
		list, err := e.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return err
		}
		names = names[:0]
		var states []string
		for _, p := range list.Items {
			ready := false
			for _, c := range p.Status.Conditions {
				ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
			}
			if ready && p.DeletionTimestamp == nil {
				names = append(names, p.Name)
			}
			states = append(states, fmt.Sprintf("%s:%s/%s", p.Name, p.Status.Phase, p.Status.Reason))
		}
		if len(names) != n || len(list.Items) != n {
			return fmt.Errorf("%d of %d ready, want %d: %v", len(names), len(list.Items), n, states)
		}
		return nil
	})
	return names
}

// scale sets a Deployment's replicas.
func (e *environment) scale(ctx context.Context, t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	s, err := e.cs.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale of %s/%s: %v", ns, name, err)
	}
	s.Spec.Replicas = replicas
	if _, err := e.cs.AppsV1().Deployments(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("scale %s/%s to %d: %v", ns, name, replicas, err)
	}
}

func (e *environment) gateway(ctx context.Context, ns, name string) (*gwv1.Gateway, error) {
	gw := &gwv1.Gateway{}
	return gw, e.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, gw)
}

func (e *environment) route(ctx context.Context, ns, name string) (*gwv1.HTTPRoute, error) {
	r := &gwv1.HTTPRoute{}
	return r, e.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, r)
}
