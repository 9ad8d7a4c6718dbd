package lb

import (
	"fmt"
	"testing"

	"github.com/false-systems/rauta/internal/ir"
)

func benchEndpoints(n int) []ir.Endpoint {
	eps := make([]ir.Endpoint, n)
	for i := range eps {
		eps[i] = ir.Endpoint{Address: fmt.Sprintf("10.244.%d.%d", i/250, i%250+1), Port: 8080}
	}
	return eps
}

var sink *Endpoint

func BenchmarkPick(b *testing.B) {
	for _, p := range []ir.LBPolicy{ir.LBRoundRobin, ir.LBLeastRequest, ir.LBMaglev} {
		bal, err := New(p, benchEndpoints(100), NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(p), func(b *testing.B) {
			b.ReportAllocs()
			var e *Endpoint
			key := uint64(0x9e3779b97f4a7c15)
			for b.Loop() {
				key = key*6364136223846793005 + 1442695040888963407
				e = bal.Pick(key)
			}
			sink = e
		})
		b.Run(string(p)+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var e *Endpoint
				key := uint64(1)
				for pb.Next() {
					key = key*6364136223846793005 + 1442695040888963407
					e = bal.Pick(key)
				}
				_ = e
			})
		})
	}
}

// Pick with the key hashed from a client IP, as the proxy does for Maglev.
func BenchmarkHashAndPickMaglev(b *testing.B) {
	bal, err := New(ir.LBMaglev, benchEndpoints(100), NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var e *Endpoint
	for b.Loop() {
		e = bal.Pick(Hash("203.0.113.57"))
	}
	sink = e
}

func BenchmarkMaglevBuild(b *testing.B) {
	for _, n := range []int{3, 100, 1000} {
		eps := podEndpoints(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NewMaglev(eps, nil, DefaultMaglevTableSize); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
