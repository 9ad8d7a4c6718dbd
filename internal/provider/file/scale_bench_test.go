package file

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/resources"
)

// routeManifests is routegen.Resources(n) written as manifests the way
// bench/proxybench hands them to `rauta run -f`: one YAML stream with
// TypeMeta filled in, objects in the same order.
func routeManifests(tb testing.TB, n int) []byte {
	tb.Helper()
	res := routegen.Resources(n)
	var b strings.Builder
	emit := func(apiVersion, kind string, obj any) {
		y, err := yaml.Marshal(obj)
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&b, "---\napiVersion: %s\nkind: %s\n%s", apiVersion, kind, y)
	}
	const gw = "gateway.networking.k8s.io/v1"
	for _, o := range res.GatewayClasses {
		emit(gw, "GatewayClass", o)
	}
	for _, o := range res.Gateways {
		emit(gw, "Gateway", o)
	}
	for _, o := range res.Namespaces {
		emit("v1", "Namespace", o)
	}
	for i := range res.HTTPRoutes {
		emit(gw, "HTTPRoute", res.HTTPRoutes[i])
		emit("v1", "Service", res.Services[i])
		emit("discovery.k8s.io/v1", "EndpointSlice", res.EndpointSlices[i])
	}
	return []byte(b.String())
}

func loadRoutes(tb testing.TB, data []byte) *resources.Resources {
	tb.Helper()
	res, warnings, err := parse([]source{{name: "routes.yaml", data: data}}, nil)
	if err != nil || len(warnings) > 0 {
		tb.Fatalf("load: %v %v", err, warnings)
	}
	return res
}

// BenchmarkLoadRoutes is `rauta run -f` reading the manifests of n
// generated HTTPRoutes (each with its Service and EndpointSlice): YAML,
// type check, strict decode, validation. It reports the input size and the
// live heap the decoded snapshot holds.
func BenchmarkLoadRoutes(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		data := routeManifests(b, n)
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			before := liveHeap()
			res := loadRoutes(b, data)
			held := liveHeap() - min(before, liveHeap())
			if len(res.HTTPRoutes) != n {
				b.Fatalf("%d HTTPRoutes, want %d", len(res.HTTPRoutes), n)
			}
			runtime.KeepAlive(res)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				loadRoutes(b, data)
			}
			b.ReportMetric(float64(held)/(1<<20), "snapshot-MiB")
		})
	}
}

// liveHeap is the live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
