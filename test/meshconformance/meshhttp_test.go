// Package meshconformance runs the upstream MESH-HTTP conformance profile (Gateway API
// v1.6.3) against rauta mesh on the local cluster: the agent in this process, attached to
// the node agent's cgroup of the pods, its mesh proxy on the bridge address, and the
// echo-advanced stand-in for the suite's echo pods. It checks the profile's report: core
// and every extended feature passed, nothing skipped. (The project's conformance run with
// a report in conformance/reports is the lead's conformance/ package.)
package meshconformance_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
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

	"github.com/false-systems/rauta/internal/mesh"
	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
)

// The cluster's own bridge and ranges; the mesh proxy listens on the bridge address
// (the pod CIDR's first), which every pod reaches and which is not its loopback.
const (
	bridge      = "rmsh0"
	podCIDR     = "10.244.221.0/24"
	serviceCIDR = "10.96.241.0/24"
	proxyAddr   = "10.244.221.1:15001"
)

func TestMeshHTTPProfile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("!!! skipping TestMeshHTTPProfile: the devcluster node agent and the mesh's eBPF programs need root; CI runs as root")
	}
	cgMount, err := mesh.Cgroup2Mount()
	if err != nil {
		t.Skipf("!!! skipping TestMeshHTTPProfile: no cgroup2 mount: %v", err)
	}
	// The suite's tests are parallel subtests: everything they need goes in t.Cleanup.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	t.Cleanup(cancel)
	root, err := devcluster.FindRepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bins, err := devcluster.EnsureBinaries(ctx, root, true)
	if err != nil {
		t.Skipf("!!! skipping TestMeshHTTPProfile: devcluster binaries are missing and could not be built: %v", err)
	}
	dir := t.TempDir()
	layout, err := devcluster.BuildEchoAdvancedImage(ctx, root, dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := devcluster.Start(ctx, devcluster.Options{
		RepoRoot:    root,
		Binaries:    &bins,
		ServiceCIDR: serviceCIDR,
		Node:        &node.Config{Bridge: bridge, PodCIDR: podCIDR, Images: node.EchoAdvancedImages(layout)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	startMesh(t, c, filepath.Join(cgMount, "rauta-devcluster-"+bridge), dir)

	// A scheme of its own: client-go's global one is in use by the agent in this process
	// (adding types to it while the agent decodes is a data race).
	scheme := runtime.NewScheme()
	for _, install := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gwv1.Install, gwv1b1.Install, gwv1a2.Install, gwv1a3.Install, apiextensionsv1.AddToScheme} {
		if err := install(scheme); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := client.New(c.RESTConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	passed := &passedTests{names: sets.New[string]()}
	supported := sets.New(features.SupportMesh, features.SupportHTTPRoute)
	for _, f := range features.MeshExtendedFeatures.UnsortedList() {
		supported.Insert(f.Name)
	}
	// The mesh tests also ask for HTTPRoute features (response headers, parentRef port,
	// 303/307/308 redirects): the mesh proxy is the gateway's HTTP engine.
	for _, f := range features.HTTPRouteExtendedFeatures.UnsortedList() {
		supported.Insert(f.Name)
	}
	s, err := suite.NewConformanceTestSuite(suite.ConformanceOptions{
		ConfigurableOptions: suite.ConfigurableOptions{
			CleanupBaseResources: true,
			CleanupTestResources: true,
			SupportedFeatures:    supported.UnsortedList(),
			TimeoutConfig:        config.DefaultTimeoutConfig(),
			ConformanceProfiles:  []suite.ConformanceProfileName{suite.MeshHTTPConformanceProfileName},
			Implementation: confv1.Implementation{
				Organization: "false-systems", Project: "rauta", URL: "https://github.com/false-systems/rauta",
				Version: "devcluster", Contact: []string{"@false-systems/rauta"},
			},
		},
		Client:     cl,
		Clientset:  cs,
		RestConfig: c.RESTConfig(),
		ManifestFS: []fs.FS{&conformance.Manifests},
		Hook:       passed.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The suite's tests run as parallel subtests of this one, so its report is read
	// once they are done: in a cleanup, registered before the suite registers its own.
	t.Cleanup(func() {
		checkReport(t, s)
		passed.check(t)
	})
	s.Setup(t, tests.ConformanceTests)
	if err := s.Run(t, tests.ConformanceTests); err != nil {
		t.Fatal(err)
	}
}

// checkReport fails unless MESH-HTTP passed core and extended with tests run, every
// extended feature supported and none skipped or failed.
func checkReport(t *testing.T, s *suite.ConformanceTestSuite) {
	r, err := s.Report()
	if err != nil {
		t.Errorf("report: %v", err)
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

// passedTests collects the suite's tests that ran and passed (the suite's Hook runs at the
// end of each). The profile's report counts only tests whose features all belong to the
// profile; the mesh tests that also need HTTPRoute features (MeshConsumerRoute, MeshPorts,
// MeshFrontend, the 303/307/308 redirects) are checked here.
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

// check fails unless every mesh test of the suite passed, but the gRPC ones (MESH-GRPC).
func (p *passedTests) check(t *testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, test := range tests.ConformanceTests {
		if slices.Contains(test.Features, features.SupportMesh) && !slices.Contains(test.Features, features.SupportGRPCRoute) && !p.names.Has(test.ShortName) {
			t.Errorf("mesh test %s did not run and pass", test.ShortName)
		}
	}
}

// startMesh runs rauta mesh (mesh.Run, as the command runs it) until the test ends:
// attached to the pods' cgroup, nothing pinned, its log in dir.
func startMesh(t *testing.T, c *devcluster.Cluster, cgroup, dir string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := l.Addr().String()
	l.Close()
	logf, err := os.Create(filepath.Join(dir, "mesh.log"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- mesh.Run(ctx, mesh.Config{
			Cgroup:      cgroup,
			AdminAddr:   admin,
			Kubeconfig:  c.Kubeconfig(),
			NodeName:    "rauta-devcluster-node",
			ProxyAddr:   proxyAddr,
			StatusLease: "kube-system/rauta-mesh-status",
			HoldOff:     20 * time.Millisecond,
			MaxDelay:    200 * time.Millisecond,
		}, slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("mesh: %v", err)
		}
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("mesh log (last 4 KiB):\n%s", tail(b, 4096))
			}
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		ready, err := readyz(ctx, admin)
		if ready {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("mesh exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mesh not ready after a minute: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func readyz(ctx context.Context, addr string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("readyz %d", resp.StatusCode)
	}
	return true, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
