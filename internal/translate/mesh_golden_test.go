package translate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/yaml"

	"github.com/false-systems/rauta/internal/provider/file"
)

// TestMeshGolden translates every testdata/mesh/NAME.in.yaml with
// TranslateMesh and compares the result with NAME.out.yaml (-update
// rewrites them; read the diff, the files are the specification).
func TestMeshGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/mesh/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 6 {
		t.Fatalf("found %d mesh golden cases, want at least 6", len(inputs))
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			res, _, err := file.Load(in)
			if err != nil {
				t.Fatalf("load %s: %v", in, err)
			}
			got := TranslateMesh(res)
			outPath := strings.TrimSuffix(in, ".in.yaml") + ".out.yaml"
			if *update {
				b, err := yaml.Marshal(got)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(outPath, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			raw, err := os.ReadFile(outPath)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			var want MeshResult
			if err := decodeStrict(raw, &want); err != nil {
				t.Fatalf("decode %s: %v", outPath, err)
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", outPath, diff)
			}
		})
	}
}

// TestMeshIgnoresGatewayParents: a route with only Gateway parents gets no
// mesh status, and the gateway translation writes no entry for a Service
// parent (each controller reports on its own parents).
func TestMeshIgnoresGatewayParents(t *testing.T) {
	res, _, err := file.Load("testdata/mesh/producer-and-gateway.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range TranslateMesh(res).Status.HTTPRoutes {
		for _, p := range r.Status.Parents {
			if !isServiceRef(p.ParentRef) || p.ControllerName != MeshControllerName {
				t.Errorf("mesh status of %s/%s has parent %+v (controller %s)", r.Namespace, r.Name, p.ParentRef, p.ControllerName)
			}
		}
	}
	for _, r := range Translate(res, Options{DefaultAddress: "127.0.0.1"}).Status.HTTPRoutes {
		for _, p := range r.Status.Parents {
			if isServiceRef(p.ParentRef) {
				t.Errorf("gateway status of %s/%s has the Service parent %+v", r.Namespace, r.Name, p.ParentRef)
			}
		}
	}
}
