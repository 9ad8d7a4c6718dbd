package router

import (
	"crypto/tls"
	"fmt"
	"net/textproto"
	"sync/atomic"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
)

// Backend is a compiled ir.Backend.
type Backend struct {
	Name string
	// Invalid backends answer 500 for their share of traffic.
	Invalid bool
	// H2C means the backend speaks HTTP/2 over clear text.
	H2C bool
	// H2 means the backend, reached over TLS, speaks HTTP/2 (ALPN h2):
	// gRPC backends and Service ports with appProtocol h2.
	H2 bool
	// TLS, when set, is the client configuration for a backend reached
	// over TLS (BackendTLSPolicy); such a backend never gets plain text.
	// TLSKey identifies it (equal keys: equal settings).
	TLS    *tls.Config
	TLSKey string
	// Filters run after the route's filters for requests sent here.
	Filters []Filter

	balancer   lb.Balancer
	maglev     bool
	hashHeader string
	// Telemetry is the proxy's (telemetry.go).
	Telemetry atomic.Pointer[Telemetry]
}

func compileBackend(b *ir.Backend, reg *lb.Registry, ctx filterContext) (*Backend, error) {
	out := &Backend{
		Name:    b.Name,
		Invalid: b.Invalid,
		H2C:     b.AppProtocol == "h2c",
	}
	if b.Invalid {
		return out, nil
	}
	if b.TLS != nil {
		// What asks for HTTP/2 in clear text asks for it over TLS here.
		out.H2 = b.AppProtocol == "h2c" || b.AppProtocol == "h2"
		cfg, key, ok := compileBackendTLS(b.TLS, out.H2)
		if !ok {
			// The translator checked the bundle; if it still does not
			// parse, fail closed (500) rather than send plain text.
			out.Invalid = true
			return out, nil
		}
		if ctx.clientCert != nil {
			cfg.Certificates = []tls.Certificate{*ctx.clientCert}
			key += "/" + ctx.clientCertKey
		}
		out.TLS, out.TLSKey = cfg, key
		out.H2C = false
	}
	bal, err := lb.New(b.Policy, b.Endpoints, reg)
	if err != nil {
		return nil, err
	}
	out.balancer = bal
	out.maglev = b.Policy == ir.LBMaglev
	if b.HashHeader != "" {
		out.hashHeader = textproto.CanonicalMIMEHeaderKey(b.HashHeader)
	}
	for i := range b.Filters {
		f, err := compileFilter(&b.Filters[i], ctx)
		if err != nil {
			return nil, fmt.Errorf("filters[%d]: %w", i, err)
		}
		out.Filters = append(out.Filters, f)
	}
	return out, nil
}

// Pick returns the endpoint for r, or nil when the backend has no endpoints
// (503) or is invalid. Maglev backends hash the configured header, else the
// client address, so one client keeps reaching one endpoint.
func (b *Backend) Pick(r *Request) *lb.Endpoint {
	if b.balancer == nil {
		return nil
	}
	return b.balancer.Pick(b.Key(r))
}

// Key is r's hash key for the backend's balancer: the hash of the
// configured header or client address for Maglev, 0 otherwise.
func (b *Backend) Key(r *Request) uint64 {
	if !b.maglev {
		return 0
	}
	src := r.ClientIP
	if b.hashHeader != "" && r.Header != nil {
		if v, ok := r.Header.Lookup(b.hashHeader); ok {
			src = v
		}
	}
	return lb.Hash(src)
}

// Retry returns an endpoint other than failed for another attempt of the
// request whose Key is key, nil when none is usable (lb.Balancer.Retry).
func (b *Backend) Retry(key uint64, failed *lb.Endpoint) *lb.Endpoint {
	if b.balancer == nil {
		return nil
	}
	return b.balancer.Retry(key, failed)
}

// Eject leaves an endpoint that failed out of the backend's balancing for
// a back-off period (lb.Balancer.Eject); it reports whether it did.
func (b *Backend) Eject(e *lb.Endpoint) bool {
	return b.balancer != nil && b.balancer.Eject(e)
}

// StartRetry takes a place in the backend's retry budget; call EndRetry
// after it returned true.
func (b *Backend) StartRetry() bool { return b.balancer != nil && b.balancer.StartRetry() }

// Endpoints lists the backend's endpoints (none for an invalid one); the
// slice is shared and read-only.
func (b *Backend) Endpoints() []*lb.Endpoint {
	if b.balancer == nil {
		return nil
	}
	return b.balancer.Endpoints()
}

// EndRetry gives back a place StartRetry took.
func (b *Backend) EndRetry() { b.balancer.EndRetry() }

// backendSet splits traffic between weighted backends with cumulative
// weights: backend i owns the draws in [cum[i-1], cum[i]); the last is the
// total.
type backendSet struct {
	backends []*Backend
	cum      []uint64
}

func (s *backendSet) add(b *Backend, weight uint32) {
	total := uint64(weight)
	if n := len(s.cum); n > 0 {
		total += s.cum[n-1]
	}
	s.backends = append(s.backends, b)
	s.cum = append(s.cum, total)
}

// pick maps a uniformly random draw onto a backend; nil when every weight is
// zero or there are no backends (s nil too).
func (s *backendSet) pick(draw uint64) *Backend {
	if s == nil {
		return nil
	}
	n := len(s.cum)
	if n == 0 || s.cum[n-1] == 0 {
		return nil
	}
	if n == 1 {
		return s.backends[0]
	}
	x := draw % s.cum[n-1]
	lo, hi := 0, len(s.cum)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s.cum[mid] > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return s.backends[lo]
}
