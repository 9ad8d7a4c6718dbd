package router

import (
	"crypto/tls"
	"fmt"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/lb"
)

// FilterKind says which field of a Filter is set.
type FilterKind uint8

const (
	FilterRequestHeaders FilterKind = iota + 1
	FilterResponseHeaders
	FilterRedirect
	FilterRewrite
	FilterMirror
	FilterCORS
)

// Filter is a compiled ir.Filter: Kind says which one pointer is set.
type Filter struct {
	Kind     FilterKind
	Headers  *HeaderModifier // FilterRequestHeaders, FilterResponseHeaders
	Redirect *Redirect
	Rewrite  *Rewrite
	Mirror   *Mirror
	CORS     *CORS
}

// Mirror sends Numerator out of every Denominator requests to Backend too.
type Mirror struct {
	Backend     *Backend
	Numerator   uint32
	Denominator uint32
}

// Sample reports whether the request with the uniformly random draw is
// mirrored.
func (m *Mirror) Sample(draw uint64) bool {
	if m.Numerator >= m.Denominator {
		return true
	}
	return draw%uint64(m.Denominator) < uint64(m.Numerator)
}

// filterContext is what filters need to know about where they run.
type filterContext struct {
	// listenerPort is the Gateway listener's port, used by redirects that
	// set neither port nor scheme.
	listenerPort uint32
	// path is the route's path match; ReplacePrefixMatch replaces its prefix.
	path ir.PathMatch
	reg  *lb.Registry
	// clientCert is the listener's certificate for TLS backends (nil:
	// none); clientCertKey identifies it in backend TLS keys.
	clientCert    *tls.Certificate
	clientCertKey string
}

func compileFilter(f *ir.Filter, ctx filterContext) (Filter, error) {
	set := 0
	var out Filter
	if f.RequestHeaders != nil {
		set++
		out = Filter{Kind: FilterRequestHeaders, Headers: compileHeaderModifier(f.RequestHeaders)}
	}
	if f.ResponseHeaders != nil {
		set++
		out = Filter{Kind: FilterResponseHeaders, Headers: compileHeaderModifier(f.ResponseHeaders)}
	}
	if f.Redirect != nil {
		set++
		r, err := compileRedirect(f.Redirect, ctx)
		if err != nil {
			return Filter{}, fmt.Errorf("redirect: %w", err)
		}
		out = Filter{Kind: FilterRedirect, Redirect: r}
	}
	if f.Rewrite != nil {
		set++
		w, err := compileRewrite(f.Rewrite, ctx)
		if err != nil {
			return Filter{}, fmt.Errorf("rewrite: %w", err)
		}
		out = Filter{Kind: FilterRewrite, Rewrite: w}
	}
	if f.Mirror != nil {
		set++
		m, err := compileMirror(f.Mirror, ctx)
		if err != nil {
			return Filter{}, fmt.Errorf("mirror: %w", err)
		}
		out = Filter{Kind: FilterMirror, Mirror: m}
	}
	if f.CORS != nil {
		set++
		c, err := compileCORS(f.CORS)
		if err != nil {
			return Filter{}, err
		}
		out = Filter{Kind: FilterCORS, CORS: c}
	}
	if set != 1 {
		return Filter{}, fmt.Errorf("exactly one field must be set, got %d", set)
	}
	return out, nil
}

func compileMirror(m *ir.Mirror, ctx filterContext) (*Mirror, error) {
	if m.Denominator == 0 {
		return nil, fmt.Errorf("denominator is 0")
	}
	// A mirror backend's own filters would apply to traffic nobody sees;
	// they are ignored (and mirrors cannot nest).
	b, err := compileBackend(&ir.Backend{
		Name:        m.Backend.Name,
		Invalid:     m.Backend.Invalid,
		Endpoints:   m.Backend.Endpoints,
		Policy:      m.Backend.Policy,
		HashHeader:  m.Backend.HashHeader,
		AppProtocol: m.Backend.AppProtocol,
		// Never dropped: a mirror to a TLS backend must not go in plain text.
		TLS: m.Backend.TLS,
	}, ctx.reg, ctx)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", m.Backend.Name, err)
	}
	return &Mirror{Backend: b, Numerator: m.Numerator, Denominator: m.Denominator}, nil
}
