package main

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// kubernetesFacing are the module paths and RAUTA packages that hold or
// import the Kubernetes API types and client: the control plane's code, which
// this binary is built without (its pages were 27-29 MiB of a 10,000-route
// data plane's RSS, docs/performance.md round 8).
var kubernetesFacing = []string{
	"k8s.io/",
	"sigs.k8s.io/",
	"github.com/false-systems/rauta/internal/translate",
	"github.com/false-systems/rauta/internal/resources",
	"github.com/false-systems/rauta/internal/provision",
	"github.com/false-systems/rauta/internal/controller",
	"github.com/false-systems/rauta/internal/provider",
	// gRPC came in through the OTLP collector package's service; the
	// export request is encoded by hand instead (internal/proxy/spans.go,
	// round 10: 5.5 MB of binary).
	"google.golang.org/grpc",
	"github.com/grpc-ecosystem/",
}

// The data plane must not import Kubernetes code again through a shared
// package (as it did through internal/gateway, internal/cli and
// internal/dataplane importing internal/translate for a type and a few
// constants). go list reads the same import graph the build uses.
func TestNoKubernetesDependencies(t *testing.T) {
	var stderr bytes.Buffer
	list := exec.Command("go", "list", "-deps", ".")
	list.Stderr = &stderr
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.String())
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 || !slices.Contains(deps, "github.com/false-systems/rauta/internal/dataplane") {
		t.Fatalf("go list -deps gave %d packages without internal/dataplane: not this binary's graph", len(deps))
	}
	for _, d := range deps {
		for _, bad := range kubernetesFacing {
			if strings.HasPrefix(d, bad) {
				t.Errorf("rauta-dataplane depends on %s", d)
			}
		}
	}
}
