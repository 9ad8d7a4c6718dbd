// Package integration tests `rauta controller`, run as a real process,
// against the project's local Kubernetes cluster (test/devcluster): status
// conditions, traffic to pods, scaling, route changes, invalid objects, an
// API server outage and two replicas (issue #3, point 3).
//
// One cluster is shared by the package (TestMain); every test runs its own
// controller process(es) with its own controllerName and GatewayClass, in
// its own namespace, so tests cannot see each other's objects.
package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/false-systems/rauta/test/devcluster"
	"github.com/false-systems/rauta/test/devcluster/node"
	"github.com/false-systems/rauta/test/integration/harness"
)

// env is the cluster and binary TestMain prepared; nil when they could not
// be (each test then skips with skipReason).
var (
	env        *environment
	skipReason string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		skipReason = "!!! SKIPPING INTEGRATION: the local cluster's node agent needs root (network namespaces, a bridge); run as root, as CI does"
		fmt.Fprintln(os.Stderr, skipReason)
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "rauta-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	wd, _ := os.Getwd()
	root, err := devcluster.FindRepoRoot(wd)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bin, err := harness.BuildRauta(ctx, root, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cluster, err := devcluster.Start(ctx, devcluster.Options{
		Node: &node.Config{Bridge: "rint0", PodCIDR: "10.244.204.0/24", StateDir: filepath.Join(dir, "node")},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "start local cluster: %v\n", err)
		return 1
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop local cluster: %v\n", err)
		}
	}()
	env, err = newEnvironment(cluster, bin, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// requireEnv skips the test, loudly, when there is no cluster.
func requireEnv(t *testing.T) *environment {
	t.Helper()
	if env == nil {
		t.Skip(skipReason)
	}
	return env
}
