// Package conformance runs the upstream Gateway API conformance suite
// (sigs.k8s.io/gateway-api/conformance v1.6.3, profiles GATEWAY-HTTP, -GRPC, -TLS, -TCP and -UDP) against
// RAUTA as users deploy it, on the project's own local cluster
// (test/devcluster): the OCI image, the Helm chart installed with helm's
// install action, and one data-plane Deployment and LoadBalancer Service per
// Gateway.
package conformance_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
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
	"github.com/false-systems/rauta/test/chartinstall"
	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
	"github.com/false-systems/rauta/test/testimage"
)

// supported are the features RAUTA claims; the suite runs their tests and
// GatewayClass status lists exactly these.
var supported = controller.SupportedFeatures(controller.ProvisionerKubernetes)

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

	img := testimage.Get(ctx, t)
	dir := t.TempDir()
	bins, err := devcluster.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	echo := devcluster.BinariesIn(bins).EchoBasic
	root, err := devcluster.FindRepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	// CoreDNS (the UDPRoute tests' DNS backend) is rauta-echo's whoami mode.
	rautaEcho, err := devcluster.BuildRautaEcho(ctx, root, dir)
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := devcluster.Start(ctx, devcluster.Options{
		LoadBalancerCIDR: lbCIDR,
		Node: &node.Config{
			Bridge: "rconf0", PodCIDR: "10.244.203.0/24", StateDir: filepath.Join(dir, "node"),
			// echo-basic serves the UDP echo backends too (UDP_ECHO_SERVER=1).
			Images: append(append(node.EchoBasicImages(echo),
				// RAUTA as users deploy it: the image built from this tree.
				node.ImageMapping{Repository: img.Repository, Layout: img.Layout}),
				node.CoreDNSImages(rautaEcho)...),
		},
	})
	stopAtEnd(t, cluster, err)

	// The chart, installed as users install it: the controller Deployment
	// with the chart's RBAC (so the suite proves those permissions are
	// enough), the GatewayClass "rauta" and its GatewayParameters, and one
	// data-plane Deployment and LoadBalancer Service per Gateway.
	if err := chartinstall.Install(ctx, cluster.Kubeconfig(), releaseNS, map[string]any{
		"image": map[string]any{"tag": img.Version},
		"controller": map[string]any{
			"extraArgs": []any{"-hold-off=20ms", "-max-delay=200ms"},
			"logLevel":  "debug",
		},
		// One pod per Gateway keeps the suite's dozens of Gateways cheap;
		// a short drain keeps its namespace deletions quick.
		"dataPlane": map[string]any{"replicas": 1, "drain": map[string]any{"drainPeriod": "1s", "shutdownTimeout": "5s"}},
	}); err != nil {
		t.Fatal(err)
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
	ipType := gwv1.IPAddressType
	conformance.RunConformanceWithOptions(t, suite.ConformanceOptions{
		ConfigurableOptions: suite.ConfigurableOptions{
			GatewayClassName:     "rauta",
			CleanupBaseResources: true,
			CleanupTestResources: true,
			SupportedFeatures:    supported,
			TimeoutConfig:        timeouts,
			SkipTests:            skip,
			Mode:                 "default",
			ConformanceProfiles:  []suite.ConformanceProfileName{suite.GatewayHTTPConformanceProfileName, suite.GatewayGRPCConformanceProfileName, suite.GatewayTLSConformanceProfileName, suite.GatewayTCPConformanceProfileName, suite.GatewayUDPConformanceProfileName},
			ReportOutputPath:     report,
			// An address of the local cluster's load-balancer pool, and one
			// outside it.
			UsableNetworkAddresses:   []gwv1.GatewaySpecAddress{{Type: &ipType, Value: usableAddress}},
			UnusableNetworkAddresses: []gwv1.GatewaySpecAddress{{Type: &ipType, Value: "192.0.2.1"}},
			Implementation:           implementation(img.Version),
		},
		Client:     cl,
		Clientset:  cs,
		RestConfig: cluster.RESTConfig(),
	})
}

// The chart's namespace, and the local cluster's load-balancer pool (the
// pod CIDR's third byte, as devcluster picks by default, written out).
const (
	releaseNS     = "rauta-system"
	lbCIDR        = "127.0.203.0/24"
	usableAddress = "127.0.203.250"
)

// implementation is RAUTA in the reports, at the image's version.
func implementation(version string) confv1.Implementation {
	return confv1.Implementation{
		Organization: "false-systems",
		Project:      "rauta",
		URL:          "https://github.com/false-systems/rauta",
		Version:      version,
		Contact:      []string{"@false-systems/rauta"},
	}
}

// stopAtEnd fails the test if the cluster did not start (err), else stops
// it when the test ends, after logging RAUTA's pods if the test failed.
func stopAtEnd(t *testing.T, cluster *devcluster.Cluster, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("start local cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpRAUTA(t, cluster)
		}
		if err := cluster.Stop(); err != nil {
			t.Errorf("stop local cluster: %v", err)
		}
	})
}

// dumpRAUTA logs the controller's and the data planes' last log lines.
func dumpRAUTA(t *testing.T, c *devcluster.Cluster) {
	cs, err := c.Client()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=rauta"})
	if err != nil {
		return
	}
	for _, p := range pods.Items {
		tailLines := int64(200)
		b, err := cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &tailLines}).DoRaw(ctx)
		t.Logf("logs of %s/%s (%v):\n%s", p.Namespace, p.Name, err, tail(b, 32<<10))
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.ToValidUTF8(string(b), "?")
}
