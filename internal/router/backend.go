package router

import (
	"fmt"
	"net/textproto"

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
	// Filters run after the route's filters for requests sent here.
	Filters []Filter

	balancer   lb.Balancer
	maglev     bool
	hashHeader string
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
	var key uint64
	if b.maglev {
		src := r.ClientIP
		if b.hashHeader != "" && r.Header != nil {
			if v, ok := r.Header.Lookup(b.hashHeader); ok {
				src = v
			}
		}
		key = lb.Hash(src)
	}
	return b.balancer.Pick(key)
}

// backendSet splits traffic between weighted backends with cumulative
// weights: backend i owns the draws in [cum[i-1], cum[i]).
type backendSet struct {
	backends []*Backend
	cum      []uint64
	total    uint64
}

func (s *backendSet) add(b *Backend, weight uint32) {
	s.total += uint64(weight)
	s.backends = append(s.backends, b)
	s.cum = append(s.cum, s.total)
}

// pick maps a uniformly random draw onto a backend; nil when every weight is
// zero or there are no backends.
func (s *backendSet) pick(draw uint64) *Backend {
	if s.total == 0 {
		return nil
	}
	if len(s.backends) == 1 {
		return s.backends[0]
	}
	x := draw % s.total
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
