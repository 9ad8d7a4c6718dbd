package conformance_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1a2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gwv1a3 "sigs.k8s.io/gateway-api/apis/v1alpha3"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/gateway-api/conformance"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/tests"
	"sigs.k8s.io/gateway-api/conformance/utils/config"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/pkg/features"
	"sigs.k8s.io/yaml"

	"github.com/false-systems/rauta/internal/mesh"
	"github.com/false-systems/rauta/test/chartinstall"
	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
	"github.com/false-systems/rauta/test/testimage"

	"github.com/false-systems/rauta/internal/freeport"
)

// The mesh run's own cluster ranges; the mesh proxy listens on the bridge
// address (the pod CIDR's first), which every pod reaches and which is not
// their loopback.
const (
	meshBridge      = "rmsh0"
	meshPodCIDR     = "10.244.221.0/24"
	meshServiceCIDR = "10.96.241.0/24"
	meshProxyAddr   = "10.244.221.1:15001"
)

// TestMeshConformance runs the upstream MESH-HTTP profile (v1.6.3, core and
// every Mesh extended feature) against rauta mesh as the chart deploys it:
// the chart installed with mesh.enabled, and its mesh DaemonSet's container
// (the image's binary, args, env, service account) run as a process of the
// node (meshagent_test.go says why not as the DaemonSet's pod). The report
// goes to RAUTA_MESH_CONFORMANCE_REPORT, else a temporary file, and is
// checked: core and extended passed, nothing skipped or unsupported.
func TestMeshConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("!!! SKIPPING MESH CONFORMANCE: the local cluster's node agent and the mesh's eBPF programs need root; run as root, as CI does")
	}
	cgMount, err := mesh.Cgroup2Mount()
	if err != nil {
		t.Skipf("!!! SKIPPING MESH CONFORMANCE: no cgroup2 mount: %v", err)
	}
	// The suite's tests are parallel subtests: everything they need goes in t.Cleanup.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	t.Cleanup(cancel)

	img := testimage.Get(ctx, t)
	root, err := devcluster.FindRepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bins, err := devcluster.EnsureBinaries(ctx, root, true)
	if err != nil {
		t.Fatalf("devcluster binaries: %v", err)
	}
	dir := t.TempDir()
	echo, err := devcluster.BuildEchoAdvancedImage(ctx, root, dir)
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := devcluster.Start(ctx, devcluster.Options{
		RepoRoot:    root,
		Binaries:    &bins,
		ServiceCIDR: meshServiceCIDR,
		Node: &node.Config{
			Bridge: meshBridge, PodCIDR: meshPodCIDR, StateDir: filepath.Join(dir, "node"),
			Images: append(node.EchoAdvancedImages(echo),
				// RAUTA as users deploy it: the image built from this tree.
				node.ImageMapping{Repository: img.Repository, Layout: img.Layout}),
		},
	})
	stopAtEnd(t, cluster, err)

	metricsPort, adminPort := freePort(t), freePort(t)
	// The chart, installed as users install it, with the mesh agent on; the
	// values below are the ones this cluster needs (meshagent_test.go).
	if err := chartinstall.Install(ctx, cluster.Kubeconfig(), releaseNS, map[string]any{
		"image": map[string]any{"tag": img.Version},
		"mesh": map[string]any{
			"enabled": true,
			// The pods' cgroup: the node agent's, not the whole machine's.
			"hostCgroup":  filepath.Join(cgMount, "rauta-devcluster-"+meshBridge),
			"metricsPort": metricsPort,
			"adminPort":   adminPort,
			"logLevel":    "debug",
			// The node's address is 127.0.0.1 here, every pod's own loopback:
			// the proxy listens on the bridge address instead.
			"extraArgs": []any{"-proxy-addr=" + meshProxyAddr},
			// The DaemonSet makes no pod: its container runs as a process.
			"nodeSelector": map[string]any{meshProcessLabel: "true"},
		},
	}); err != nil {
		t.Fatal(err)
	}
	startChartMeshAgent(ctx, t, cluster, img, dir)

	scheme := runtime.NewScheme()
	for _, install := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gwv1.Install, gwv1b1.Install, gwv1a2.Install, gwv1a3.Install, apiextensionsv1.AddToScheme} {
		if err := install(scheme); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := client.New(cluster.RESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	supported := sets.New(features.SupportMesh, features.SupportHTTPRoute)
	for _, f := range features.MeshExtendedFeatures.UnsortedList() {
		supported.Insert(f.Name)
	}
	// The mesh tests also ask for HTTPRoute features (response headers,
	// parentRef port, 303/307/308 redirects): the mesh proxy is the
	// gateway's HTTP engine.
	for _, f := range features.HTTPRouteExtendedFeatures.UnsortedList() {
		supported.Insert(f.Name)
	}
	report := os.Getenv("RAUTA_MESH_CONFORMANCE_REPORT")
	if report == "" {
		report = filepath.Join(dir, "mesh-report.yaml")
	}
	passed := &passedTests{names: sets.New[string]()}
	// Registered before the suite's own cleanups, so it runs after the
	// parallel tests finished and the report was written.
	t.Cleanup(func() {
		checkMeshReport(t, report)
		passed.check(t)
	})
	conformance.RunConformanceWithOptions(t, suite.ConformanceOptions{
		ConfigurableOptions: suite.ConfigurableOptions{
			CleanupBaseResources: true,
			CleanupTestResources: true,
			SupportedFeatures:    supported.UnsortedList(),
			TimeoutConfig:        config.DefaultTimeoutConfig(),
			Mode:                 "default",
			ConformanceProfiles:  []suite.ConformanceProfileName{suite.MeshHTTPConformanceProfileName},
			ReportOutputPath:     report,
			Implementation:       implementation(img.Version),
		},
		Client:     cl,
		Clientset:  cs,
		RestConfig: cluster.RESTConfig(),
		Hook:       passed.record,
	})
}

// checkMeshReport fails unless the written report has MESH-HTTP with core and
// extended passed, tests run, every extended feature supported and none
// skipped or failed.
func checkMeshReport(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	var r confv1.ConformanceReport
	if err := yaml.UnmarshalStrict(b, &r); err != nil {
		t.Errorf("report %s: %v", path, err)
		return
	}
	for _, p := range r.ProfileReports {
		if p.Name != string(suite.MeshHTTPConformanceProfileName) {
			continue
		}
		t.Logf("MESH-HTTP: core %s %+v, extended %+v", p.Core.Result, p.Core.Statistics, p.Extended)
		if p.Core.Result != confv1.Success || p.Core.Passed == 0 || len(p.Core.SkippedTests) > 0 {
			t.Errorf("MESH-HTTP core: %s, %+v, skipped %v, failed %v", p.Core.Result, p.Core.Statistics, p.Core.SkippedTests, p.Core.FailedTests)
		}
		if e := p.Extended; e == nil || e.Result != confv1.Success || e.Passed == 0 || len(e.UnsupportedFeatures) > 0 || len(e.SkippedTests) > 0 {
			t.Errorf("MESH-HTTP extended: %+v", e)
		}
		return
	}
	t.Errorf("no MESH-HTTP profile in the report: %+v", r.ProfileReports)
}

// passedTests collects the suite's tests that ran and passed (the suite's
// Hook runs at the end of each). The profile's report counts only tests
// whose features all belong to the profile; the mesh tests that also need
// HTTPRoute features (MeshConsumerRoute, MeshPorts, MeshFrontend, the
// 303/307/308 redirects) are checked here.
type passedTests struct {
	mu    sync.Mutex
	names sets.Set[string]
}

func (p *passedTests) record(t *testing.T, test suite.ConformanceTest, _ *suite.ConformanceTestSuite) {
	if t.Skipped() || t.Failed() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.names.Insert(test.ShortName)
}

// check fails unless every mesh test of the suite passed, but the gRPC ones
// (MESH-GRPC, not claimed).
func (p *passedTests) check(t *testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, test := range tests.ConformanceTests {
		if slices.Contains(test.Features, features.SupportMesh) && !slices.Contains(test.Features, features.SupportGRPCRoute) && !p.names.Has(test.ShortName) {
			t.Errorf("mesh test %s did not run and pass", test.ShortName)
		}
	}
}

// freePort is a TCP port free on loopback now (the mesh agent's metrics and
// admin ports are on the host network).
func freePort(t *testing.T) int {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
