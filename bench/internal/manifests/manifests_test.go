package manifests

import (
	"os"
	"strings"
	"testing"

	"github.com/false-systems/rauta/internal/provider/file"
)

// TestLoopbackServiceLoads: the file provider reads the objects back as
// one Service with an endpoint per port.
func TestLoopbackServiceLoads(t *testing.T) {
	for _, ports := range [][]int{{18081}, {18081, 18082, 18083}} {
		out := LoopbackService("pool", ports...)
		if got := strings.Count(out, "kind: EndpointSlice"); got != len(ports) {
			t.Fatalf("%d EndpointSlices for %d ports:\n%s", got, len(ports), out)
		}
		checkLoads(t, out, len(ports))
	}
}

func checkLoads(t *testing.T, yaml string, ports int) {
	t.Helper()
	path := t.TempDir() + "/svc.yaml"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	res, warnings, err := file.Load(path)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("load: %v, warnings %v:\n%s", err, warnings, yaml)
	}
	if len(res.Services) != 1 || res.Services[0].Name != "pool" || len(res.EndpointSlices) != ports {
		t.Fatalf("%d services, %d slices; want 1 (pool), %d", len(res.Services), len(res.EndpointSlices), ports)
	}
	for _, s := range res.EndpointSlices {
		if s.Labels["kubernetes.io/service-name"] != "pool" || len(s.Endpoints) != 1 || s.Endpoints[0].Addresses[0] != "127.0.0.1" {
			t.Fatalf("slice %s: %+v", s.Name, s)
		}
	}
}
