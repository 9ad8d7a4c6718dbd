package chart_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/test/chartinstall"
	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
	"github.com/false-systems/rauta/test/testimage"
)

// The install test's own cluster network, apart from every other test's.
const (
	installBridge      = "rchrt0"
	installPodCIDR     = "10.244.212.0/24"
	installServiceCIDR = "10.96.212.0/24"
)

// TestInstall builds RAUTA's image, starts a local cluster whose node runs
// that image for the chart's image reference, installs the chart with
// helm's action.Install into a namespace that enforces the "restricted" Pod
// Security level, and waits until the controller pod is Ready and has
// accepted the chart's GatewayClass. Then docs/install.md's first Gateway
// must answer through its provisioned data plane (firstGateway), and the
// chart uninstalls cleanly.
func TestInstall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("!!! skipping TestInstall: the local cluster's node agent needs root (network namespaces, a bridge); CI runs as root")
	}
	if testing.Short() {
		t.Skip("!!! skipping TestInstall with -short: builds the image and starts a cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	wd, _ := os.Getwd()
	root, err := devcluster.FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	bins, err := devcluster.EnsureBinaries(ctx, root, true)
	if err != nil {
		t.Skipf("!!! skipping TestInstall: devcluster binaries are missing and could not be built: %v", err)
	}
	img := testimage.Get(ctx, t)

	c, err := devcluster.Start(ctx, devcluster.Options{
		RepoRoot: root, Binaries: &bins, ServiceCIDR: installServiceCIDR,
		Node: &node.Config{Bridge: installBridge, PodCIDR: installPodCIDR, Images: []node.ImageMapping{
			{Repository: img.Repository, Layout: img.Layout},
		}},
	})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	cs, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	// The namespace enforces "restricted": the API server itself refuses
	// any pod of the chart that does not meet it.
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   releaseNamespace,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := chartinstall.Configuration(c.Kubeconfig(), releaseNamespace)
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(cfg)
	install.ReleaseName = releaseName
	install.Namespace = releaseNamespace
	install.WaitStrategy = kube.HookOnlyStrategy // readiness is checked below, with reasons
	install.Timeout = 2 * time.Minute
	// The image the chart names, with the tag this test built.
	vals := map[string]any{"image": map[string]any{"tag": img.Version}}
	if _, err := install.RunWithContext(ctx, loadChart(t), vals); err != nil {
		t.Fatalf("helm install: %v", err)
	}

	if err := waitControllerReady(ctx, cs, 3*time.Minute); err != nil {
		t.Error(err)
		dumpPods(ctx, t, cs)
	}
	if err := waitClassAccepted(ctx, c, 2*time.Minute); err != nil {
		t.Error(err)
		dumpPods(ctx, t, cs)
	}

	if !t.Failed() {
		firstGateway(ctx, t, c, cs)
	}

	uninstall := action.NewUninstall(cfg)
	uninstall.WaitStrategy = kube.HookOnlyStrategy
	uninstall.Timeout = time.Minute
	if _, err := uninstall.Run(releaseName); err != nil {
		t.Errorf("helm uninstall: %v", err)
	}
	if _, err := cs.AppsV1().Deployments(releaseNamespace).Get(ctx, "rauta-controller", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("controller Deployment after uninstall: %v, want not found", err)
	}
}

// waitControllerReady polls (bounded) until the controller Deployment has a
// Ready pod.
func waitControllerReady(ctx context.Context, cs kubernetes.Interface, limit time.Duration) error {
	var last string
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(time.Second) {
		pods, err := cs.CoreV1().Pods(releaseNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=controller"})
		if err != nil {
			last = err.Error()
			continue
		}
		last = fmt.Sprintf("%d controller pods", len(pods.Items))
		for _, p := range pods.Items {
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					return nil
				}
			}
			last = fmt.Sprintf("pod %s: phase %s, %s", p.Name, p.Status.Phase, containerStates(p))
		}
	}
	return fmt.Errorf("controller pod not Ready within %v: %s", limit, last)
}

// waitClassAccepted polls (bounded) until the GatewayClass rauta is
// Accepted=True: the controller reads the API and writes status.
func waitClassAccepted(ctx context.Context, c *devcluster.Cluster, limit time.Duration) error {
	cl, err := client.New(c.RESTConfig(), client.Options{Scheme: gatewayScheme()})
	if err != nil {
		return err
	}
	var last string
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(time.Second) {
		var gc gatewayv1.GatewayClass
		if err := cl.Get(ctx, client.ObjectKey{Name: "rauta"}, &gc); err != nil {
			last = err.Error()
			continue
		}
		for _, cond := range gc.Status.Conditions {
			if cond.Type == string(gatewayv1.GatewayClassConditionStatusAccepted) {
				if cond.Status == metav1.ConditionTrue {
					return nil
				}
				last = fmt.Sprintf("Accepted=%s %s: %s", cond.Status, cond.Reason, cond.Message)
			}
		}
	}
	return fmt.Errorf("GatewayClass rauta not Accepted within %v: %s", limit, last)
}

func containerStates(p corev1.Pod) string {
	var out []string
	for _, s := range p.Status.ContainerStatuses {
		switch {
		case s.State.Waiting != nil:
			out = append(out, fmt.Sprintf("%s waiting %s %s", s.Name, s.State.Waiting.Reason, s.State.Waiting.Message))
		case s.State.Terminated != nil:
			out = append(out, fmt.Sprintf("%s terminated %d %s", s.Name, s.State.Terminated.ExitCode, s.State.Terminated.Reason))
		default:
			out = append(out, fmt.Sprintf("%s running, ready %v, restarts %d", s.Name, s.Ready, s.RestartCount))
		}
	}
	return strings.Join(out, "; ")
}

// dumpPods logs the release namespace's pods, their logs and events.
func dumpPods(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	dumpPodsIn(ctx, t, cs, releaseNamespace)
}

// dumpPodsIn logs a namespace's pods, their logs and events.
func dumpPodsIn(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("list pods: %v", err)
		return
	}
	for _, p := range pods.Items {
		t.Logf("pod %s: %s %s", p.Name, p.Status.Phase, containerStates(p))
		tail := int64(40)
		logs, err := cs.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &tail}).DoRaw(ctx)
		t.Logf("logs of %s (%v):\n%s", p.Name, err, logs)
	}
	events, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, e := range events.Items {
			t.Logf("event %s %s: %s %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
}
