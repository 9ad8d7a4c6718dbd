package integration

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/poll"
	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/integration/harness"
)

// A cluster without the Gateway API CRDs: the controller says what is
// missing, stays up and retries; once the CRDs are installed it takes over
// without a restart.
func TestMissingCRDsThenInstalled(t *testing.T) {
	e := requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	cluster, err := devcluster.Start(ctx, devcluster.Options{SkipGatewayAPI: true})
	if err != nil {
		t.Fatalf("start a cluster without CRDs: %v", err)
	}
	t.Cleanup(func() {
		if err := cluster.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	ctrl, err := harness.StartController(ctx, harness.ControllerConfig{
		Binary:         e.bin,
		Kubeconfig:     cluster.Kubeconfig(),
		AddressPool:    "127.0.7.0/24",
		ControllerName: "rauta.io/crd-test",
		LeaseName:      "rauta-crd-test",
		Identity:       "crd-test",
		LogPath:        filepath.Join(t.TempDir(), "controller.log"),
	})
	if err != nil {
		t.Fatalf("start controller: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("controller log:\n%s", ctrl.LogTail(60))
		}
		_ = ctrl.Stop(5 * time.Second)
	})

	poll.NoError(t, 30*time.Second, "the controller to say the CRDs are missing", func() error {
		if !ctrl.LogContains("are the Gateway API CRDs installed?") {
			return errors.New("not logged yet")
		}
		return nil
	})
	if ctrl.Exited() {
		t.Fatal("controller exited without the CRDs")
	}

	dir, err := devcluster.GatewayAPIDir(ctx, mustRepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	crds, err := devcluster.LoadGatewayAPIManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	applier, err := devcluster.NewApplier(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := applier.Apply(ctx, crds); err != nil {
		t.Fatalf("install CRDs: %v", err)
	}
	cl, err := client.New(cluster.RESTConfig(), client.Options{Scheme: e.cl.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	gc := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "crd-test"},
		Spec: gwv1.GatewayClassSpec{ControllerName: "rauta.io/crd-test"}}
	poll.NoError(t, 60*time.Second, "the GatewayClass to be created once the CRD is established", func() error {
		return cl.Create(ctx, gc.DeepCopy())
	})
	// The controller's retry backoff grows to at most 30s.
	poll.NoError(t, 90*time.Second, "the controller to accept the GatewayClass", func() error {
		var got gwv1.GatewayClass
		if err := cl.Get(ctx, client.ObjectKey{Name: "crd-test"}, &got); err != nil {
			return err
		}
		return hasConditions(got.Status.Conditions, got.Generation, want{"Accepted", metav1.ConditionTrue, "Accepted"})
	})
	if ctrl.Exited() {
		t.Fatal("controller exited")
	}
}

func mustRepoRoot(t *testing.T) string {
	t.Helper()
	root, err := devcluster.FindRepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}
