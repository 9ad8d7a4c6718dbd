package lb

import (
	"sync"
	"testing"
)

func TestEndpointInflight(t *testing.T) {
	e := &Endpoint{Addr: "10.0.0.1:80"}
	e.Acquire()
	e.Acquire()
	e.Release()
	if got := e.Inflight(); got != 1 {
		t.Fatalf("Inflight = %d, want 1", got)
	}
}

func TestRegistrySamePointer(t *testing.T) {
	r := NewRegistry()
	a := r.Endpoint("10.0.0.1:80")
	if b := r.Endpoint("10.0.0.1:80"); a != b {
		t.Fatal("Endpoint returned two pointers for one address")
	}
	if c := r.Endpoint("10.0.0.2:80"); c == a || c.Addr != "10.0.0.2:80" {
		t.Fatalf("second address got %p %q", c, c.Addr)
	}
}

func TestRegistryConcurrentFirstUse(t *testing.T) {
	r := NewRegistry()
	const g = 8
	got := make([]*Endpoint, g)
	var wg sync.WaitGroup
	for i := range g {
		wg.Go(func() { got[i] = r.Endpoint("[::1]:8080") })
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("goroutine %d got a different Endpoint", i)
		}
	}
}

func TestRegistryPrune(t *testing.T) {
	r := NewRegistry()
	keep := r.Endpoint("10.0.0.1:80")
	drop := r.Endpoint("10.0.0.2:80")
	drop.Acquire()
	r.Prune(func(addr string) bool { return addr == "10.0.0.1:80" })
	if r.Len() != 1 {
		t.Fatalf("Len after Prune = %d, want 1", r.Len())
	}
	if r.Endpoint("10.0.0.1:80") != keep {
		t.Fatal("kept endpoint was replaced")
	}
	fresh := r.Endpoint("10.0.0.2:80")
	if fresh == drop || fresh.Inflight() != 0 {
		t.Fatalf("pruned address did not get a fresh endpoint (same=%v inflight=%d)", fresh == drop, fresh.Inflight())
	}
	// A balancer holding the dropped endpoint still sees its own count.
	if drop.Inflight() != 1 {
		t.Fatalf("dropped endpoint lost its count: %d", drop.Inflight())
	}
}
