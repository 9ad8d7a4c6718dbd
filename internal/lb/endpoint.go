package lb

import (
	"sync"
	"sync/atomic"
)

// Endpoint is the live state of one backend address, shared by every route
// and every config generation: it outlives config reloads, so in-flight counts
// are not reset by a reload. Get one from a Registry.
type Endpoint struct {
	// Addr is the dial address, preformatted: "10.0.0.1:8080" or "[::1]:80".
	Addr string

	inflight atomic.Int64
	// ejectedUntil is the monotonic time (health.now) an ejection ends, 0
	// when the endpoint is in; lastEjectedUntil keeps the last one and
	// ejections its length in base periods, for the back-off.
	ejectedUntil     atomic.Int64
	lastEjectedUntil atomic.Int64
	ejections        atomic.Int64
	// Pad the struct to a cache line (64-byte objects are 64-byte aligned by
	// the allocator) so two endpoints updated from different cores do not
	// share one.
	_ [64 - 16 - 4*8]byte
}

// Acquire records that a request started using the endpoint.
func (e *Endpoint) Acquire() { e.inflight.Add(1) }

// Release records that a request using the endpoint ended. Call it exactly
// once per Acquire.
func (e *Endpoint) Release() { e.inflight.Add(-1) }

// Inflight is the number of requests currently using the endpoint.
func (e *Endpoint) Inflight() int64 { return e.inflight.Load() }

// Registry hands out one Endpoint per address. The zero value is not usable;
// call NewRegistry.
type Registry struct {
	mu     sync.Mutex
	eps    map[string]*Endpoint
	health *health
}

// NewRegistry returns an empty Registry with the default HealthOptions.
func NewRegistry() *Registry { return NewRegistryWith(HealthOptions{}) }

// NewRegistryWith returns an empty Registry whose balancers eject and
// retry as o says.
func NewRegistryWith(o HealthOptions) *Registry {
	return &Registry{eps: make(map[string]*Endpoint), health: newHealth(o)}
}

// Endpoint returns the Endpoint for addr, creating it on first use. It returns
// the same pointer for the same addr until Prune drops it.
func (r *Registry) Endpoint(addr string) *Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.eps[addr]
	if !ok {
		e = &Endpoint{Addr: addr}
		r.eps[addr] = e
	}
	return e
}

// Prune drops every entry for which keep returns false, typically the
// addresses no published config uses any more. Balancers that still hold a
// dropped Endpoint keep working with it; a later Endpoint call for that
// address creates a fresh one.
func (r *Registry) Prune(keep func(addr string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for addr := range r.eps {
		if !keep(addr) {
			delete(r.eps, addr)
		}
	}
}

// Len is the number of endpoints the Registry holds.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.eps)
}
