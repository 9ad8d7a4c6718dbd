// Package rautacluster starts the local cluster (test/devcluster) with
// RAUTA's image and the echo backends mapped, for the tests that run RAUTA
// as users deploy it (test/deployed, test/chaos), and holds the waits and
// the failure dump they share.
package rautacluster

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
	"github.com/false-systems/rauta/test/testimage"
)

// Options are a test's own ranges, so cluster tests run side by side.
type Options struct {
	Bridge, PodCIDR, ServiceCIDR, LoadBalancerCIDR string
}

// Env is a running cluster and clients for it.
type Env struct {
	Cluster *devcluster.Cluster
	CS      kubernetes.Interface
	// CL knows the core, apps and Gateway API types.
	CL    client.Client
	Image testimage.Image
}

// Start starts the cluster (stopped when t ends) with RAUTA's image from
// test/testimage and the conformance echo images.
func Start(ctx context.Context, t *testing.T, opts Options) *Env {
	t.Helper()
	img := testimage.Get(ctx, t)
	bins, err := devcluster.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	images := append(node.EchoBasicImages(devcluster.BinariesIn(bins).EchoBasic),
		node.ImageMapping{Repository: img.Repository, Layout: img.Layout})
	cluster, err := devcluster.Start(ctx, devcluster.Options{
		ServiceCIDR:      opts.ServiceCIDR,
		LoadBalancerCIDR: opts.LoadBalancerCIDR,
		Node:             &node.Config{Bridge: opts.Bridge, PodCIDR: opts.PodCIDR, StateDir: filepath.Join(t.TempDir(), "node"), Images: images},
	})
	if err != nil {
		t.Fatalf("start the local cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := cluster.Stop(); err != nil {
			t.Errorf("stop the local cluster: %v", err)
		}
	})
	cs, err := cluster.Client()
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := gwv1.Install(scheme); err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(cluster.RESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Cluster: cluster, CS: cs, CL: cl, Image: img}
}

// Eventually polls cond every interval until it holds, failing t with
// cond's last explanation when timeout passes or ctx ends.
func Eventually(ctx context.Context, t testing.TB, what string, timeout, interval time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, why)
		}
		time.Sleep(interval)
	}
}

// DumpOnFailure logs, when t failed, the pods of namespaces with their
// container states and the last lines of every log but the echo backends',
// and every Gateway's status and Deployment's, so a CI failure can be read
// without the cluster.
func (e *Env) DumpOnFailure(t testing.TB, namespaces ...string) {
	if !t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ns := range namespaces {
		pods, err := e.CS.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, p := range pods.Items {
			st, _ := json.Marshal(p.Status.ContainerStatuses)
			t.Logf("pod %s/%s phase %s conditions %+v containers %s", ns, p.Name, p.Status.Phase, p.Status.Conditions, st)
			if strings.HasPrefix(p.Name, "echo-") {
				continue
			}
			tail := int64(80)
			b, err := e.CS.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &tail}).DoRaw(ctx)
			t.Logf("logs of %s/%s (%v):\n%s", ns, p.Name, err, b)
		}
	}
	var gws gwv1.GatewayList
	if err := e.CL.List(ctx, &gws); err == nil {
		for _, g := range gws.Items {
			b, _ := json.MarshalIndent(g.Status, "", "  ")
			t.Logf("Gateway %s/%s status: %s", g.Namespace, g.Name, b)
		}
	}
	var ds appsv1.DeploymentList
	if err := e.CL.List(ctx, &ds); err == nil {
		for _, d := range ds.Items {
			t.Logf("Deployment %s/%s status %+v", d.Namespace, d.Name, d.Status)
		}
	}
}
