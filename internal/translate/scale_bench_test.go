package translate_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/translate"
)

// BenchmarkTranslateRoutes translates 10, 1,000 and 10,000 realistic
// HTTPRoutes (bench/routegen: own and shared hostnames, exact, prefix, regex,
// method and header matches, filters, one Service and EndpointSlice each)
// and reports the live heap one result (IR and status) holds.
func BenchmarkTranslateRoutes(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		res := routegen.Resources(n)
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			before := liveHeap()
			out := translate.Translate(res, translate.Options{})
			held := liveHeap() - min(before, liveHeap())
			if got := len(out.Status.HTTPRoutes); got != n {
				b.Fatalf("status for %d HTTPRoutes, want %d", got, n)
			}
			var rules int
			for _, vh := range out.IR.Listeners[0].VirtualHosts {
				rules += len(vh.Routes)
			}
			runtime.KeepAlive(out)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				translate.Translate(res, translate.Options{})
			}
			b.ReportMetric(float64(held)/(1<<20), "result-MiB")
			b.ReportMetric(float64(rules), "ir-routes")
		})
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
