package router_test

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/false-systems/rauta/bench/routegen"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
	"github.com/false-systems/rauta/internal/router"
	"github.com/false-systems/rauta/internal/translate"
)

// Scale benchmarks: the data plane built from 10, 1,000 and 10,000
// realistic HTTPRoutes (bench/routegen), through the real translator.
// bench/scale runs them and prints a table (docs/performance.md).

var scaleSizes = []int{10, 1000, 10000}

// scaleListener translates n generated HTTPRoutes into the one IR listener.
func scaleListener(b *testing.B, n int) *ir.Listener {
	b.Helper()
	out := translate.Translate(routegen.Resources(n), translate.Options{})
	if len(out.IR.Listeners) != 1 {
		b.Fatalf("routes=%d: %d listeners, want 1", n, len(out.IR.Listeners))
	}
	return &out.IR.Listeners[0]
}

func compileOrFail(b *testing.B, l *ir.Listener) *router.Table {
	b.Helper()
	tbl, err := router.Compile(l, lb.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	return tbl
}

// liveHeap is the live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkCompileRoutes times router.Compile (host index, rule buckets,
// regexes, one balancer per backend, endpoints in a fresh registry) and
// reports the data plane's memory: the live heap the compiled table and its
// registry hold, in MiB.
func BenchmarkCompileRoutes(b *testing.B) {
	for _, n := range scaleSizes {
		l := scaleListener(b, n)
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			before := liveHeap()
			tbl := compileOrFail(b, l)
			held := liveHeap() - min(before, liveHeap())
			runtime.KeepAlive(tbl)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				compileOrFail(b, l)
			}
			b.ReportMetric(float64(held)/(1<<20), "heap-MiB")
			b.ReportMetric(float64(len(tbl.Routes())), "ir-routes")
		})
	}
}

// scaleRequests returns the request mix for n routes, each checked to reach
// the HTTPRoute it was generated for.
func scaleRequests(b *testing.B, tbl *router.Table, n int) []router.Request {
	b.Helper()
	gen := routegen.Requests(n, 256)
	reqs := make([]router.Request, len(gen))
	for i, g := range gen {
		reqs[i] = router.Request{Host: g.Host, Path: g.Path, Method: g.Method, Header: router.HTTPHeader(g.Header), ClientIP: "192.0.2.10"}
		rt := tbl.Match(&reqs[i])
		if rt == nil || !strings.Contains(rt.Name, "/"+g.Route+"/") {
			got := "<nil>"
			if rt != nil {
				got = rt.Name
			}
			b.Fatalf("routes=%d: %s %s%s matched %s, want a rule of %s", n, g.Method, g.Host, g.Path, got, g.Route)
		}
	}
	return reqs
}

// BenchmarkLookupRoutes is the route lookup per request: host index, rule
// bucket, matchers, over a mix spread across the whole table.
func BenchmarkLookupRoutes(b *testing.B) {
	for _, n := range scaleSizes {
		tbl := compileOrFail(b, scaleListener(b, n))
		reqs := scaleRequests(b, tbl, n)
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if tbl.Match(&reqs[i%len(reqs)]) == nil {
					b.Fatal("no match")
				}
				i++
			}
		})
	}
}

// BenchmarkRequestPathRoutes is everything the router does for one request:
// lookup, weighted backend choice, endpoint choice, request header filters
// and the path rewrite; allocs/op is allocations per request.
func BenchmarkRequestPathRoutes(b *testing.B) {
	for _, n := range scaleSizes {
		tbl := compileOrFail(b, scaleListener(b, n))
		reqs := scaleRequests(b, tbl, n)
		hdr := http.Header{"User-Agent": {"bench"}, "Accept": {"*/*"}, "X-Internal-Debug": {"1"}}
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var draw uint64
			i := 0
			for b.Loop() {
				r := &reqs[i%len(reqs)]
				i++
				rt := tbl.Match(r)
				draw = draw*6364136223846793005 + 1442695040888963407
				be := rt.PickBackend(draw)
				if be == nil || be.Pick(r) == nil {
					b.Fatal("no endpoint")
				}
				path := r.Path
				for _, f := range rt.Filters {
					switch f.Kind {
					case router.FilterRequestHeaders:
						delete(hdr, "X-Route") // Add appends to an existing value
						f.Headers.Apply(hdr)
					case router.FilterRewrite:
						path, _ = f.Rewrite.Path(path)
					}
				}
				_ = path
			}
		})
	}
}
