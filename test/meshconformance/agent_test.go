// Package meshconformance runs rauta mesh on the local cluster
// (test/devcluster) against what its pods do: the opt-out labels
// (OptOutLabel) with real pods, exec'd clients and the kernel's cgroup
// programs. The upstream MESH-HTTP conformance profile runs in
// conformance/ (TestMeshConformance), against the agent as the chart
// deploys it.
package meshconformance_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/mesh"
	"github.com/false-systems/rauta/test/devcluster"
)

// startMesh runs rauta mesh (mesh.Run, as the command runs it) until the test ends:
// attached to the pods' cgroup, nothing pinned, its log in dir.
func startMesh(t *testing.T, c *devcluster.Cluster, cgroup, proxyAddr, dir string) {
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
