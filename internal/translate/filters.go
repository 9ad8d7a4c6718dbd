package translate

import (
	"fmt"
	"net/textproto"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/router"
)

// httpFilters converts a filter list. An unsupported filter makes the rule
// invalid; a mirror whose backend does not resolve is dropped and reported as
// a reference problem, because the main request must not suffer for it.
func (t *translator) httpFilters(id routeID, field string, in []gwv1.HTTPRouteFilter) ([]ir.Filter, []refProblem, error) {
	var out []ir.Filter
	var problems []refProblem
	var redirect, rewrite bool
	for i := range in {
		f := &in[i]
		ffield := fmt.Sprintf("%s[%d]", field, i)
		switch f.Type {
		case gwv1.HTTPRouteFilterRequestHeaderModifier:
			if f.RequestHeaderModifier == nil {
				return nil, problems, unsupported("%s.requestHeaderModifier: missing", ffield)
			}
			out = append(out, ir.Filter{RequestHeaders: headerModifier(f.RequestHeaderModifier)})
		case gwv1.HTTPRouteFilterResponseHeaderModifier:
			if f.ResponseHeaderModifier == nil {
				return nil, problems, unsupported("%s.responseHeaderModifier: missing", ffield)
			}
			out = append(out, ir.Filter{ResponseHeaders: headerModifier(f.ResponseHeaderModifier)})
		case gwv1.HTTPRouteFilterRequestRedirect:
			rd, err := redirectFilter(ffield, f.RequestRedirect)
			if err != nil {
				return nil, problems, err
			}
			redirect = true
			out = append(out, ir.Filter{Redirect: rd})
		case gwv1.HTTPRouteFilterURLRewrite:
			if f.URLRewrite == nil {
				return nil, problems, unsupported("%s.urlRewrite: missing", ffield)
			}
			rw := &ir.Rewrite{}
			if f.URLRewrite.Hostname != nil {
				rw.Hostname = string(*f.URLRewrite.Hostname)
			}
			pm, err := pathModifier(ffield+".urlRewrite.path", f.URLRewrite.Path)
			if err != nil {
				return nil, problems, err
			}
			rw.Path = pm
			rewrite = true
			out = append(out, ir.Filter{Rewrite: rw})
		case gwv1.HTTPRouteFilterRequestMirror:
			m, p, err := t.mirrorFilter(id, ffield, f.RequestMirror)
			if err != nil {
				return nil, problems, err
			}
			if p != nil {
				problems = append(problems, *p)
			}
			if m == nil {
				continue
			}
			out = append(out, ir.Filter{Mirror: m})
		case gwv1.HTTPRouteFilterCORS:
			c, err := corsFilter(ffield, f.CORS)
			if err != nil {
				return nil, problems, err
			}
			out = append(out, ir.Filter{CORS: c})
		case gwv1.HTTPRouteFilterExtensionRef:
			ref := "(missing)"
			if f.ExtensionRef != nil {
				ref = fmt.Sprintf("%s/%s %s", f.ExtensionRef.Group, f.ExtensionRef.Kind, f.ExtensionRef.Name)
			}
			return nil, problems, &failClosedError{refProblem{reason: string(gwv1.RouteReasonInvalidKind),
				message: fmt.Sprintf("%s.extensionRef: %s: RAUTA implements no extension filters", ffield, ref)}}
		case gwv1.HTTPRouteFilterExternalAuth:
			return nil, problems, &failClosedError{refProblem{reason: string(gwv1.RouteReasonUnsupportedValue),
				message: ffield + ": filter ExternalAuth is not implemented by RAUTA yet"}}
		default:
			return nil, problems, unsupported("%s.type: filter %q is not supported by RAUTA", ffield, f.Type)
		}
	}
	if redirect && rewrite {
		return nil, problems, &ruleError{string(gwv1.RouteReasonIncompatibleFilters),
			field + ": RequestRedirect and URLRewrite cannot be used together"}
	}
	return out, problems, nil
}

func headerModifier(h *gwv1.HTTPHeaderFilter) *ir.HeaderModifier {
	m := &ir.HeaderModifier{}
	for _, s := range h.Set {
		m.Set = append(m.Set, ir.Header{Name: textproto.CanonicalMIMEHeaderKey(string(s.Name)), Value: s.Value})
	}
	for _, a := range h.Add {
		m.Add = append(m.Add, ir.Header{Name: textproto.CanonicalMIMEHeaderKey(string(a.Name)), Value: a.Value})
	}
	for _, r := range h.Remove {
		m.Remove = append(m.Remove, textproto.CanonicalMIMEHeaderKey(r))
	}
	return m
}

var redirectCodes = map[int]bool{301: true, 302: true, 303: true, 307: true, 308: true}

func redirectFilter(field string, r *gwv1.HTTPRequestRedirectFilter) (*ir.Redirect, error) {
	if r == nil {
		return nil, unsupported("%s.requestRedirect: missing", field)
	}
	out := &ir.Redirect{StatusCode: 302}
	if r.StatusCode != nil {
		if !redirectCodes[*r.StatusCode] {
			return nil, unsupported("%s.requestRedirect.statusCode: %d is not one of 301, 302, 303, 307, 308", field, *r.StatusCode)
		}
		out.StatusCode = *r.StatusCode
	}
	if r.Scheme != nil {
		if *r.Scheme != "http" && *r.Scheme != "https" {
			return nil, unsupported("%s.requestRedirect.scheme: %q is not http or https", field, *r.Scheme)
		}
		out.Scheme = *r.Scheme
	}
	if r.Hostname != nil {
		out.Hostname = string(*r.Hostname)
	}
	if r.Port != nil {
		out.Port = uint32(*r.Port)
	}
	pm, err := pathModifier(field+".requestRedirect.path", r.Path)
	if err != nil {
		return nil, err
	}
	out.Path = pm
	return out, nil
}

func pathModifier(field string, p *gwv1.HTTPPathModifier) (*ir.PathModifier, error) {
	if p == nil {
		return nil, nil
	}
	switch p.Type {
	case gwv1.FullPathHTTPPathModifier:
		if p.ReplaceFullPath == nil {
			return nil, unsupported("%s.replaceFullPath: required for type ReplaceFullPath", field)
		}
		return &ir.PathModifier{Type: ir.ReplaceFullPath, Value: *p.ReplaceFullPath}, nil
	case gwv1.PrefixMatchHTTPPathModifier:
		if p.ReplacePrefixMatch == nil {
			return nil, unsupported("%s.replacePrefixMatch: required for type ReplacePrefixMatch", field)
		}
		return &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: *p.ReplacePrefixMatch}, nil
	default:
		return nil, unsupported("%s.type: %q is not one of ReplaceFullPath, ReplacePrefixMatch", field, p.Type)
	}
}

func (t *translator) mirrorFilter(id routeID, field string, m *gwv1.HTTPRequestMirrorFilter) (*ir.Mirror, *refProblem, error) {
	if m == nil {
		return nil, nil, unsupported("%s.requestMirror: missing", field)
	}
	out := &ir.Mirror{Numerator: 1, Denominator: 1}
	switch {
	case m.Percent != nil:
		if *m.Percent < 0 || *m.Percent > 100 {
			return nil, nil, unsupported("%s.requestMirror.percent: %d is not within 0-100", field, *m.Percent)
		}
		out.Numerator, out.Denominator = uint32(*m.Percent), 100
	case m.Fraction != nil:
		den := int32(100)
		if m.Fraction.Denominator != nil {
			den = *m.Fraction.Denominator
		}
		if den <= 0 || m.Fraction.Numerator < 0 || m.Fraction.Numerator > den {
			return nil, nil, unsupported("%s.requestMirror.fraction: %d/%d is not a fraction within 0-1", field, m.Fraction.Numerator, den)
		}
		out.Numerator, out.Denominator = uint32(m.Fraction.Numerator), uint32(den)
	}
	b, p := t.backend(id.kind, id.namespace, field+".requestMirror.backendRef", m.BackendRef, 1)
	if b.Invalid {
		return nil, p, nil
	}
	// A valid backend can still come with a policy-only note (the
	// BackendTLSPolicies it uses, for their status).
	out.Backend = b
	return out, p, nil
}

// corsFilter converts a CORS filter. Origins are checked here as the data
// plane compiles them (router.compileCORS), so a bad one drops the rule
// with its reason instead of failing the whole listener in the data plane.
func corsFilter(field string, c *gwv1.HTTPCORSFilter) (*ir.CORS, error) {
	if c == nil {
		return nil, unsupported("%s.cors: missing", field)
	}
	out := &ir.CORS{MaxAge: c.MaxAge, AllowCredentials: c.AllowCredentials != nil && *c.AllowCredentials}
	for i, o := range c.AllowOrigins {
		if err := router.ValidCORSOrigin(string(o)); err != nil {
			return nil, unsupported("%s.cors.allowOrigins[%d]: %v", field, i, err)
		}
		out.AllowOrigins = append(out.AllowOrigins, string(o))
	}
	for i, m := range c.AllowMethods {
		if m != "*" && !methods[string(m)] {
			return nil, unsupported("%s.cors.allowMethods[%d]: %q is not an HTTP method or *", field, i, m)
		}
		out.AllowMethods = append(out.AllowMethods, string(m))
	}
	for _, h := range c.AllowHeaders {
		out.AllowHeaders = append(out.AllowHeaders, string(h))
	}
	for _, h := range c.ExposeHeaders {
		out.ExposeHeaders = append(out.ExposeHeaders, string(h))
	}
	if out.MaxAge < 0 {
		return nil, unsupported("%s.cors.maxAge: %d is negative", field, out.MaxAge)
	}
	return out, nil
}
