package main

import (
	"strings"
	"testing"
)

const benchOut = `goos: linux
pkg: github.com/false-systems/rauta/internal/router
BenchmarkCompileRoutes/routes=10-2         	     100	    425975 ns/op	         0.02283 heap-MiB	        25.00 ir-routes	   32816 B/op	     532 allocs/op
BenchmarkCompileRoutes/routes=10-2         	     100	    400000 ns/op	         0.02283 heap-MiB	        25.00 ir-routes	   32816 B/op	     532 allocs/op
BenchmarkCompileRoutes/routes=10-2         	     100	    500000 ns/op	         0.02283 heap-MiB	        25.00 ir-routes	   32816 B/op	     532 allocs/op
BenchmarkHeaderFilter-16                   	1000000	        21.5 ns/op	       0 B/op	       0 allocs/op
PASS
`

func TestParse(t *testing.T) {
	r := results{}
	if err := r.parse("router", benchOut); err != nil {
		t.Fatal(err)
	}
	if v, ok := r.get("router.BenchmarkCompileRoutes/routes=10", "ns/op"); !ok || v != 425975 {
		t.Errorf("median ns/op = %v, %v; want 425975 (the median of three runs)", v, ok)
	}
	if v, ok := r.get("router.BenchmarkHeaderFilter", "allocs/op"); !ok || v != 0 {
		t.Errorf("HeaderFilter allocs/op = %v, %v; want 0 with the -16 suffix dropped", v, ok)
	}
	if _, ok := r.get("router.BenchmarkHeaderFilter", "heap-MiB"); ok {
		t.Error("a unit the benchmark did not report was found")
	}
	tbl := r.tables()
	if !strings.Contains(tbl, "router.BenchmarkHeaderFilter") || !strings.Contains(tbl, "0.43") {
		t.Errorf("tables miss the hot path or the compile time:\n%s", tbl)
	}
	if err := r.parse("x", "PASS\n"); err == nil {
		t.Error("output without benchmarks was accepted")
	}
	if err := r.parse("x", "BenchmarkX-2 10 abc ns/op\n"); err == nil {
		t.Error("a non-numeric value was accepted")
	}
}
