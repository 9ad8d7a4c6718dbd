// Package conformance runs the upstream Gateway API conformance suite
// (sigs.k8s.io/gateway-api/conformance v1.6.3, profile GATEWAY-HTTP) against
// RAUTA's controller on the project's own local cluster (test/devcluster).
package conformance_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1a2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gwv1a3 "sigs.k8s.io/gateway-api/apis/v1alpha3"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/gateway-api/conformance"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/utils/config"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"

	"github.com/false-systems/rauta/internal/controller"
	"github.com/false-systems/rauta/internal/gateway"
	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
)

// supported are the features RAUTA claims; the suite runs their tests and
// GatewayClass status lists exactly these.
var supported = controller.SupportedFeatures()

// knownFailures are conformance tests RAUTA does not pass yet, each with the
// reason. They are skipped so the rest of the suite gates CI; the report and
// README say which they are. Empty this list, don't grow it.
var knownFailures = map[string]string{}

func TestConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("!!! SKIPPING CONFORMANCE: the local cluster's node agent needs root (network namespaces); run as root, as CI does")
	}
	// The suite's tests are parallel subtests, which run after this function
	// returns: everything they need is torn down in t.Cleanup, never deferred.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	t.Cleanup(cancel)

	dir := t.TempDir()
	bins, err := devcluster.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := devcluster.Start(ctx, devcluster.Options{
		Node: &node.Config{
			Bridge: "rconf0", PodCIDR: "10.244.203.0/24", StateDir: filepath.Join(dir, "node"),
			// The base manifests run CoreDNS for the UDPRoute tests, which are
			// outside the GATEWAY-HTTP profile; the suite still waits for the
			// pod to be ready, so an echo server stands in for it.
			Images: []node.ImageMapping{{Repository: "registry.k8s.io/coredns/coredns", Binary: devcluster.BinariesIn(bins).EchoBasic}},
		},
	})
	if err != nil {
		t.Fatalf("start local cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := cluster.Stop(); err != nil {
			t.Errorf("stop local cluster: %v", err)
		}
	})

	// The controller runs with the ServiceAccount and RBAC of deploy/rbac.yaml,
	// so the suite also proves those permissions are enough.
	rbac, err := os.ReadFile("../deploy/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.Apply(ctx, rbac); err != nil {
		t.Fatalf("apply deploy/rbac.yaml: %v", err)
	}
	restricted, err := serviceAccountConfig(ctx, cluster.RESTConfig(), "rauta-system", "rauta")
	if err != nil {
		t.Fatalf("token for the rauta ServiceAccount: %v", err)
	}

	logPath := filepath.Join(dir, "controller.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	ctrlCtx, stopCtrl := context.WithCancel(ctx)
	ctrlDone := make(chan error, 1)
	go func() {
		ctrlDone <- controller.Run(ctrlCtx, controller.Config{
			Options:           gateway.Options{Address: "127.0.2.1", AdminAddr: "127.0.0.1:0", Version: "conformance"},
			REST:              restricted,
			AddressPool:       "127.0.2.0/24",
			LeaseNamespace:    "rauta-system",
			LeaseName:         "rauta-status-writer",
			Identity:          "conformance",
			SupportedFeatures: controller.StatusFeatures(supported),
			HoldOff:           20 * time.Millisecond,
			MaxDelay:          200 * time.Millisecond,
			Provisioner:       controller.ProvisionerInProcess,
		}, slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}()
	t.Cleanup(func() {
		stopCtrl()
		if err := <-ctrlDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("controller: %v", err)
		}
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("controller log (last 64 KiB):\n%s", tail(b, 64<<10))
			}
		}
	})

	if err := cluster.Apply(ctx, []byte(gatewayClass)); err != nil {
		t.Fatalf("create GatewayClass: %v", err)
	}

	cl, err := client.New(cluster.RESTConfig(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, install := range []func(*runtime.Scheme) error{gwv1.Install, gwv1b1.Install, gwv1a2.Install, gwv1a3.Install, apiextensionsv1.AddToScheme} {
		if err := install(cl.Scheme()); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	var skip []string
	for name := range knownFailures {
		skip = append(skip, name)
	}
	timeouts := config.DefaultTimeoutConfig()
	report := os.Getenv("RAUTA_CONFORMANCE_REPORT")
	if report == "" {
		report = filepath.Join(dir, "report.yaml")
	}
	conformance.RunConformanceWithOptions(t, suite.ConformanceOptions{
		ConfigurableOptions: suite.ConfigurableOptions{
			GatewayClassName:     "rauta",
			CleanupBaseResources: true,
			CleanupTestResources: true,
			SupportedFeatures:    supported,
			TimeoutConfig:        timeouts,
			SkipTests:            skip,
			Mode:                 "default",
			ConformanceProfiles:  []suite.ConformanceProfileName{suite.GatewayHTTPConformanceProfileName},
			ReportOutputPath:     report,
			Implementation: confv1.Implementation{
				Organization: "false-systems",
				Project:      "rauta",
				URL:          "https://github.com/false-systems/rauta",
				Version:      "dev",
				Contact:      []string{"@false-systems/rauta"},
			},
		},
		Client:     cl,
		Clientset:  cs,
		RestConfig: cluster.RESTConfig(),
	})
}

const gatewayClass = `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: rauta
spec:
  controllerName: rauta.io/gateway-controller
`

// serviceAccountConfig returns admin's connection with the credentials of a
// ServiceAccount (a short-lived token) instead of the admin certificate.
func serviceAccountConfig(ctx context.Context, admin *rest.Config, namespace, name string) (*rest.Config, error) {
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return nil, err
	}
	expiry := int64(2 * 60 * 60)
	tok, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	cfg := rest.AnonymousClientConfig(admin)
	cfg.BearerToken = tok.Status.Token
	return cfg, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.ToValidUTF8(string(b), "?")
}
