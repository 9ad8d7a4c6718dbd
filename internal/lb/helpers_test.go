package lb

import (
	"fmt"
	"testing"
)

// podEndpoints returns n private endpoints with pod-like addresses.
func podEndpoints(n int) []*Endpoint {
	eps := make([]*Endpoint, n)
	for i := range eps {
		eps[i] = &Endpoint{Addr: fmt.Sprintf("10.244.%d.%d:8080", i/250, i%250+1)}
	}
	return eps
}

// clientKeys returns n Maglev keys hashed from distinct client addresses.
func clientKeys(n int) []uint64 {
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = Hash(fmt.Sprintf("192.168.%d.%d", i/256, i%256))
	}
	return keys
}

func mustMaglev(t testing.TB, eps []*Endpoint, weights []uint32, size uint64) *Maglev {
	t.Helper()
	m, err := NewMaglev(eps, weights, size)
	if err != nil {
		t.Fatalf("NewMaglev(%d endpoints, size %d): %v", len(eps), size, err)
	}
	return m
}

func without(eps []*Endpoint, i int) []*Endpoint {
	out := make([]*Endpoint, 0, len(eps)-1)
	out = append(out, eps[:i]...)
	return append(out, eps[i+1:]...)
}
