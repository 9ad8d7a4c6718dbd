package router

import (
	"slices"

	"github.com/false-systems/rauta/internal/ir"
)

// The rules of an HTTPRoute, and often several HTTPRoutes, send traffic to
// the same Service port: at 10,000 routes (bench/routegen) 25,100 IR routes
// name 10,000 backends. Each compiled on its own was a Backend, a balancer
// and its endpoint list per rule (about 4 MiB at that size) and most of the
// compile time of a route. One Compile gives equal plain backends (no
// filters, no TLS: nothing that depends on the route or listener) one
// compiled Backend, so its balancer position, least-request counts and
// retry budget are shared by those routes, as a proxy's cluster's would be.
// Routes taken unchanged from the previous Table keep their Backends and
// share nothing new: offering those for sharing cost the reuse of a
// thousand routes a thousand map updates (BenchmarkRecompileOneChange
// reusing: 5,900 -> 6,900 allocations), for a change's few new routes. So
// a route compiled later than its siblings has its own Backend, as before.

// sharedBackends is one Compile's compiled plain backends by name.
type sharedBackends struct {
	byName map[string][]compiledBackend
}

// compiledBackend is a compiled plain backend and the IR it came from, with
// the backend set of the routes that have it as their one backend, at
// src's weight (made for the first such route; a route only reads its
// set): the rules of an HTTPRoute share one.
type compiledBackend struct {
	src *ir.Backend
	b   *Backend
	set *backendSet
}

// plainBackend reports whether b compiles the same for every route.
func plainBackend(b *ir.Backend) bool { return len(b.Filters) == 0 && b.TLS == nil }

// compile returns the Backend for b: the one compiled for an equal plain
// backend before, or a new one.
func (s *sharedBackends) compile(b *ir.Backend, ctx filterContext) (*Backend, error) {
	if !plainBackend(b) {
		return compileBackend(b, ctx.reg, ctx)
	}
	if cb := s.find(b); cb != nil {
		return cb, nil
	}
	cb, err := compileBackend(b, ctx.reg, ctx)
	if err != nil {
		return nil, err
	}
	s.add(b, cb)
	return cb, nil
}

func (s *sharedBackends) find(b *ir.Backend) *Backend {
	if c := s.entry(b); c != nil {
		return c.b
	}
	return nil
}

// entry is the compiled backend equal to b, nil for none.
func (s *sharedBackends) entry(b *ir.Backend) *compiledBackend {
	list := s.byName[b.Name]
	for i := range list {
		if samePlainBackend(list[i].src, b) {
			return &list[i]
		}
	}
	return nil
}

// single returns the backend set of a route whose one backend is b,
// compiled as cb.
func (s *sharedBackends) single(b *ir.Backend, cb *Backend) *backendSet {
	c := s.entry(b)
	if !plainBackend(b) || c == nil || c.b != cb || c.src.Weight != b.Weight {
		set := &backendSet{}
		set.add(cb, b.Weight)
		return set
	}
	if c.set == nil {
		c.set = &backendSet{}
		c.set.add(cb, b.Weight)
	}
	return c.set
}

func (s *sharedBackends) add(src *ir.Backend, b *Backend) {
	if s.byName == nil {
		s.byName = map[string][]compiledBackend{}
	}
	s.byName[src.Name] = append(s.byName[src.Name], compiledBackend{src: src, b: b})
}

// samePlainBackend compares what a plain backend compiles from; the weight
// is the route's (backendSet), not the Backend's.
func samePlainBackend(a, b *ir.Backend) bool {
	if a.Name != b.Name || a.Invalid != b.Invalid || a.Policy != b.Policy || a.HashHeader != b.HashHeader || a.AppProtocol != b.AppProtocol {
		return false
	}
	if len(a.Endpoints) != len(b.Endpoints) {
		return false
	}
	// The config stream's decoder gives equal lists one copy.
	return len(a.Endpoints) == 0 || &a.Endpoints[0] == &b.Endpoints[0] || slices.Equal(a.Endpoints, b.Endpoints)
}
