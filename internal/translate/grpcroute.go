package translate

import (
	"fmt"
	"regexp"
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/ir"
)

const kindGRPCRoute = "GRPCRoute"

// A GRPCRoute is served by the same engine as an HTTPRoute: gRPC is HTTP/2
// POSTs to /service/method. Each rule is rewritten as the HTTPRoute rule
// that matches the same requests (the method match as a path match, the
// same headers, filters and backends) and translated by httpRule, so
// ReferenceGrants, backend resolution and filters behave exactly alike.
// What differs is kept apart: precedence follows the GRPCRoute rules
// (characters of service, then of method), rule names say grpcroute, and
// backends always get HTTP/2 (h2c unless the Service says otherwise).

// grpcRoutes translates every GRPCRoute, attaches it to its parents and
// records its status.
func (t *translator) grpcRoutes(routes []*gwv1.GRPCRoute) {
	for _, r := range routes {
		tr := t.opts.Cache.route(r.UID, r.Generation, func() translatedRoute { return t.grpcRoute(r) })
		if parents := t.attachRoute(r, kindGRPCRoute, r.Spec.Hostnames, r.Spec.ParentRefs, tr, tr.grpc, -1); len(parents) > 0 {
			st := gwv1.GRPCRouteStatus{}
			st.Parents = parents
			t.status.GRPCRoutes = append(t.status.GRPCRoutes, GRPCRouteStatus{Namespace: r.Namespace, Name: r.Name, Status: st})
		}
	}
}

// grpcRoute translates the rules of one GRPCRoute; tr.grpc holds each
// match's precedence key, indexed by rule and then match.
func (t *translator) grpcRoute(r *gwv1.GRPCRoute) translatedRoute {
	rules := r.Spec.Rules
	if len(rules) == 0 {
		rules = []gwv1.GRPCRouteRule{{}}
	}
	id := routeID{kindGRPCRoute, r.Namespace, r.Name}
	out := translatedRoute{totalRules: len(rules), grpc: make([][]grpcRank, len(rules))}
	for i := range rules {
		hr, ranks, err := grpcAsHTTPRule(&rules[i])
		if err == nil {
			var rule translatedRule
			var problems []refProblem
			rule, problems, err = t.httpRule(id, i, &hr)
			out.refProblems = append(out.refProblems, problems...)
			if err == nil {
				http2Backends(rule.routes)
				out.rules = append(out.rules, rule)
				out.grpc[i] = ranks
				continue
			}
		}
		out.ruleErrors = append(out.ruleErrors, fmt.Errorf("%s: %w", ruleField(i, &gwv1.HTTPRouteRule{Name: rules[i].Name}), err))
	}
	return out
}

// http2Backends makes every backend of the routes speak HTTP/2: gRPC needs
// it whatever the Service's appProtocol says (h2c, as the spec requires of
// GRPCRoute backends without TLS).
func http2Backends(routes []ir.Route) {
	for ri := range routes {
		for bi := range routes[ri].Backends {
			routes[ri].Backends[bi].AppProtocol = "h2c"
		}
		for _, f := range routes[ri].Filters {
			if f.Mirror != nil {
				f.Mirror.Backend.AppProtocol = "h2c"
			}
		}
	}
}

// grpcAsHTTPRule is the HTTPRoute rule that matches, filters and forwards
// what rule does, with each match's precedence key.
func grpcAsHTTPRule(rule *gwv1.GRPCRouteRule) (gwv1.HTTPRouteRule, []grpcRank, error) {
	out := gwv1.HTTPRouteRule{Name: rule.Name, SessionPersistence: rule.SessionPersistence}
	matches := rule.Matches
	if len(matches) == 0 {
		matches = []gwv1.GRPCRouteMatch{{}}
	}
	ranks := make([]grpcRank, len(matches))
	for i := range matches {
		m, rank, err := grpcMatch(&matches[i])
		if err != nil {
			return out, nil, fmt.Errorf("matches[%d]: %w", i, err)
		}
		out.Matches = append(out.Matches, m)
		ranks[i] = rank
	}
	out.Filters = grpcFilters(rule.Filters)
	for _, b := range rule.BackendRefs {
		out.BackendRefs = append(out.BackendRefs, gwv1.HTTPBackendRef{BackendRef: b.BackendRef, Filters: grpcFilters(b.Filters)})
	}
	return out, ranks, nil
}

// grpcFilters maps GRPCRoute filters to the HTTPRoute filters of the same
// name and fields; httpFilters then refuses what RAUTA does not implement
// (ExtensionRef) as it does for HTTPRoutes.
func grpcFilters(in []gwv1.GRPCRouteFilter) []gwv1.HTTPRouteFilter {
	var out []gwv1.HTTPRouteFilter
	for _, f := range in {
		out = append(out, gwv1.HTTPRouteFilter{
			Type:                   gwv1.HTTPRouteFilterType(f.Type),
			RequestHeaderModifier:  f.RequestHeaderModifier,
			ResponseHeaderModifier: f.ResponseHeaderModifier,
			RequestMirror:          f.RequestMirror,
			ExtensionRef:           f.ExtensionRef,
		})
	}
	return out
}

// grpcName is what the CRD allows as an exact service or method name; a
// file-provided route is not validated by the API server, so it is checked
// here (a '/' would change which path segment is matched).
var (
	grpcService = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	grpcMethod  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// grpcMatch turns a method match into a path match on /service/method:
//   - Exact service and method: the exact path;
//   - Exact service alone: the path prefix /service (every method);
//   - Exact method alone, or RegularExpression: an anchored expression over
//     both segments, an unset one matching any segment.
func grpcMatch(m *gwv1.GRPCRouteMatch) (gwv1.HTTPRouteMatch, grpcRank, error) {
	var out gwv1.HTTPRouteMatch
	var rank grpcRank
	for _, h := range m.Headers {
		typ := gwv1.HeaderMatchType(gwv1.GRPCHeaderMatchExact)
		if h.Type != nil {
			typ = gwv1.HeaderMatchType(*h.Type)
		}
		out.Headers = append(out.Headers, gwv1.HTTPHeaderMatch{Type: &typ, Name: gwv1.HTTPHeaderName(h.Name), Value: h.Value})
	}
	mm := m.Method
	if mm == nil {
		return out, rank, nil // every method of every service: the default path prefix "/"
	}
	service, method := deref(mm.Service), deref(mm.Method)
	rank = grpcRank{service: len(service), method: len(method)}
	if service == "" && method == "" {
		return out, rank, unsupported("method: one of service and method must be set")
	}
	typ := gwv1.GRPCMethodMatchExact
	if mm.Type != nil {
		typ = *mm.Type
	}
	var pathType gwv1.PathMatchType
	var value string
	switch typ {
	case gwv1.GRPCMethodMatchExact:
		if service != "" && !grpcService.MatchString(service) {
			return out, rank, unsupported("method.service: %q is not a gRPC service name", service)
		}
		if method != "" && !grpcMethod.MatchString(method) {
			return out, rank, unsupported("method.method: %q is not a gRPC method name", method)
		}
		switch {
		case method == "":
			pathType, value = gwv1.PathMatchPathPrefix, "/"+service
		case service == "":
			pathType, value = gwv1.PathMatchRegularExpression, "/[^/]+/"+regexp.QuoteMeta(method)
		default:
			pathType, value = gwv1.PathMatchExact, "/"+service+"/"+method
		}
	case gwv1.GRPCMethodMatchRegularExpression:
		s, err := segmentExpr("service", service)
		if err != nil {
			return out, rank, err
		}
		me, err := segmentExpr("method", method)
		if err != nil {
			return out, rank, err
		}
		pathType, value = gwv1.PathMatchRegularExpression, "/"+s+"/"+me
	default:
		return out, rank, unsupported("method.type: %q is not one of Exact, RegularExpression", typ)
	}
	out.Path = &gwv1.HTTPPathMatch{Type: &pathType, Value: &value}
	return out, rank, nil
}

// segmentExpr is the expression for one path segment: expr, or any
// segment when expr is empty.
func segmentExpr(field, expr string) (string, error) {
	if expr == "" {
		return "[^/]+", nil
	}
	if _, err := regexp.Compile(expr); err != nil {
		return "", unsupported("method.%s: invalid regular expression: %v", field, err)
	}
	return "(?:" + expr + ")", nil
}

func deref[T ~string](p *T) string {
	if p == nil {
		return ""
	}
	return string(*p)
}

// A listener serves either an HTTPRoute or a GRPCRoute for a hostname, never
// both: when the two kinds' hostnames intersect on a listener, the spec
// accepts exactly one of each such pair, the older route (then the first by
// namespace/name). grpcClaims are where every GRPCRoute would attach,
// taken before any route attaches so that an older GRPCRoute wins over a
// newer HTTPRoute translated before it.

// grpcClaim is a GRPCRoute's hold on one listener.
type grpcClaim struct {
	key       string
	created   time.Time
	hostnames []string // nil: every hostname of the listener
}

// claimGRPC records, per listener, the GRPCRoutes that attach to it.
func (t *translator) claimGRPC(routes []*gwv1.GRPCRoute) {
	for _, r := range routes {
		for _, ref := range dedupParentRefs(r.Spec.ParentRefs) {
			res, ours := t.attach(r, kindGRPCRoute, r.Spec.Hostnames, ref)
			if !ours || !res.accepted.ok {
				continue
			}
			for _, a := range res.attachments {
				if t.grpcClaims == nil {
					t.grpcClaims = map[*listenerState][]grpcClaim{}
				}
				t.grpcClaims[a.listener] = append(t.grpcClaims[a.listener],
					grpcClaim{key: r.Namespace + "/" + r.Name, created: r.CreationTimestamp.Time, hostnames: a.hostnames})
			}
		}
	}
}

// kindConflict reports the route of the other kind that a route (kind, key,
// created) loses attachment a to, or "" when it keeps it. An HTTPRoute that
// wins over a GRPCRoute marks that GRPCRoute as lost on the listener.
func (t *translator) kindConflict(kind, key string, created time.Time, a attachment) string {
	l := a.listener
	if kind == kindGRPCRoute {
		return t.grpcLost[l][key]
	}
	lostTo := ""
	for _, c := range t.grpcClaims[l] {
		if !routeHostnamesOverlap(l.hostname, a.hostnames, c.hostnames) {
			continue
		}
		if c.created.Before(created) || (c.created.Equal(created) && c.key < key) {
			if lostTo == "" {
				lostTo = kindGRPCRoute + " " + c.key
			}
			continue
		}
		if t.grpcLost == nil {
			t.grpcLost = map[*listenerState]map[string]string{}
		}
		if t.grpcLost[l] == nil {
			t.grpcLost[l] = map[string]string{}
		}
		if _, lost := t.grpcLost[l][c.key]; !lost {
			t.grpcLost[l][c.key] = kindHTTPRoute + " " + key
		}
	}
	return lostTo
}

// routeHostnamesOverlap reports whether two routes' hostnames on a listener
// share a hostname; nil stands for the listener's own ("" for any).
func routeHostnamesOverlap(listener string, a, b []string) bool {
	if a == nil {
		a = []string{listener}
	}
	if b == nil {
		b = []string{listener}
	}
	for _, x := range a {
		for _, y := range b {
			if hostnamesOverlap(x, y) {
				return true
			}
		}
	}
	return false
}
