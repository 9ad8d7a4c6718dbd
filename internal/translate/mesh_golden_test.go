package translate

import (
	"testing"

	"github.com/false-systems/rauta/internal/provider/file"
	"github.com/false-systems/rauta/internal/resources"
)

// TestMeshGolden translates every testdata/mesh/NAME.in.yaml with
// TranslateMesh and compares the result with NAME.out.yaml (-update
// rewrites them; read the diff, the files are the specification).
func TestMeshGolden(t *testing.T) {
	eachCase(t, "testdata/mesh/*.in.yaml", 6, func(t *testing.T, res *resources.Resources, outPath string) {
		checkGolden(t, outPath, TranslateMesh(res))
	})
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
