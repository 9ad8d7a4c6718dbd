package translate

import (
	"cmp"
	"errors"
	"fmt"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/ir"
)

const kindHTTPRoute = "HTTPRoute"

// routeID names the route a rule belongs to: its kind decides which
// ReferenceGrants apply to its backends, and all three name its rules.
type routeID struct{ kind, namespace, name string }

// ruleError makes a rule invalid; its reason becomes the route's Accepted
// (all rules invalid) or PartiallyInvalid (some rules invalid) reason.
type ruleError struct {
	reason string
	msg    string
}

func (e *ruleError) Error() string { return e.msg }

func unsupported(format string, args ...any) error {
	return &ruleError{string(gwv1.RouteReasonUnsupportedValue), fmt.Sprintf(format, args...)}
}

// translatedRule is one valid rule of a route: one ir.Route per match, in
// match order, without hostnames (those depend on the listener).
type translatedRule struct {
	index  int // position in spec.rules: the last precedence tie-breaker
	routes []ir.Route
}

// translatedRoute is a route's rules plus what went wrong in them.
type translatedRoute struct {
	rules       []translatedRule
	ruleErrors  []error      // invalid rules, dropped
	refProblems []refProblem // unresolved references (their traffic gets 500)
	totalRules  int
	// grpc are a GRPCRoute's precedence keys (grpcRoute), kept here so the
	// translation cache holds them with the rules.
	grpc [][]grpcRank
	// serial identifies a cached translation (Cache.route); 0 when it is
	// not cached. The IR routes made from it carry it in their
	// Fingerprint.
	serial uint64
}

// httpRoutes translates every HTTPRoute, attaches it to its parents and
// records its status.
func (t *translator) httpRoutes(routes []*gwv1.HTTPRoute) {
	// In namespace/name order: the statuses come out sorted, and each
	// route's position there breaks precedence ties as its name would
	// (compareAge), with one integer comparison.
	routes = slices.Clone(routes)
	slices.SortFunc(routes, func(a, b *gwv1.HTTPRoute) int { return compareKeys(a.Namespace, a.Name, b.Namespace, b.Name) })
	for i, r := range routes {
		tr := t.opts.Cache.route(r.UID, r.Generation, func() translatedRoute { return t.httpRoute(r) })
		if parents := t.attachRoute(r, kindHTTPRoute, r.Spec.Hostnames, r.Spec.ParentRefs, tr, nil, i); len(parents) > 0 {
			st := gwv1.HTTPRouteStatus{}
			st.Parents = parents
			t.status.HTTPRoutes = append(t.status.HTTPRoutes, HTTPRouteStatus{Namespace: r.Namespace, Name: r.Name, Status: st})
		}
	}
}

// reasonKindConflict is the Accepted=False reason of a route that lost every
// listener of a parentRef to an older route of the other kind (HTTPRoute or
// GRPCRoute) with the same hostnames. The spec names no reason for it.
const reasonKindConflict = "HostnameConflict"

// keepUnconflicted drops the attachments a route loses to a route of the
// other kind, and names the first winner ("" if none).
func (t *translator) keepUnconflicted(res *parentResult, kind, key string, created time.Time) string {
	if len(t.grpcClaims) == 0 {
		return ""
	}
	lostTo := ""
	kept := res.attachments[:0]
	for _, a := range res.attachments {
		if w := t.kindConflict(kind, key, created, a); w != "" {
			lostTo = cmp.Or(lostTo, w)
			continue
		}
		kept = append(kept, a)
	}
	res.attachments = kept
	return lostTo
}

// attachRoute attaches a translated route to each of its parents, adding
// its matches to the listeners it is accepted on, and returns its parent
// statuses. grpc, when not nil, gives each rule's matches their GRPCRoute
// precedence keys (indexed by rule, then match). order is the route's
// position among the HTTPRoutes in namespace/name order, -1 for other kinds.
func (t *translator) attachRoute(r metav1.Object, kind string, hostnames []gwv1.Hostname, refs []gwv1.ParentReference, tr translatedRoute, grpc [][]grpcRank, order int) []gwv1.RouteParentStatus {
	var parents []gwv1.RouteParentStatus
	key := r.GetNamespace() + "/" + r.GetName()
	created := r.GetCreationTimestamp().Time
	for _, ref := range dedupParentRefs(refs) {
		res, ours := t.attach(r, kind, hostnames, ref)
		if !ours {
			continue
		}
		if lostTo := t.keepUnconflicted(&res, kind, key, created); lostTo != "" && len(res.attachments) == 0 {
			res.accepted = cond{false, reasonKindConflict,
				fmt.Sprintf("the %s is older and takes the same hostnames on every listener this parentRef names (a listener serves one of HTTPRoute and GRPCRoute per hostname)", lostTo)}
		}
		if res.accepted.ok && len(tr.rules) == 0 && tr.totalRules > 0 {
			res.accepted = cond{false, ruleErrorReason(tr.ruleErrors), "all rules are invalid: " + errors.Join(tr.ruleErrors...).Error()}
			res.attachments = nil
		}
		if len(res.attachments) > 0 {
			t.notePolicyAncestors(res.gateway, tr.refProblems)
		}
		for _, a := range res.attachments {
			a.listener.attached++
			for _, rule := range tr.rules {
				for mi := range rule.routes {
					fingerprint := ""
					if tr.serial != 0 {
						fingerprint = routeFingerprint(tr.serial, rule.index, mi, a.hostnames)
					}
					var rank *grpcRank
					if grpc != nil {
						rank = &grpc[rule.index][mi]
					}
					e := t.newRouteEntry(&rule.routes[mi], a.hostnames, fingerprint,
						created, key, rule.index, mi, len(a.listener.routes), rank)
					e.order = order
					a.listener.routes = append(a.listener.routes, e)
				}
			}
		}
		parents = append(parents, gwv1.RouteParentStatus{
			ParentRef:      ref,
			ControllerName: gwv1.GatewayController(t.opts.ControllerName),
			Conditions:     routeConditions(res.accepted, tr, r.GetGeneration()),
		})
	}
	return parents
}

func ruleErrorReason(errs []error) string {
	var re *ruleError
	if len(errs) > 0 && errors.As(errs[0], &re) {
		return re.reason
	}
	return string(gwv1.RouteReasonUnsupportedValue)
}

// routeConditions renders Accepted, ResolvedRefs and PartiallyInvalid.
func routeConditions(accepted cond, tr translatedRoute, gen int64) []metav1.Condition {
	conds := []metav1.Condition{
		condition(string(gwv1.RouteConditionAccepted), accepted.ok, accepted.reason, accepted.message, gen),
	}
	var problems []refProblem
	for _, p := range tr.refProblems {
		if !p.policyOnly {
			problems = append(problems, p)
		}
	}
	if len(problems) == 0 {
		conds = append(conds, condition(string(gwv1.RouteConditionResolvedRefs), true, string(gwv1.RouteReasonResolvedRefs), "All references resolved", gen))
	} else {
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.message
		}
		conds = append(conds, condition(string(gwv1.RouteConditionResolvedRefs), false, problems[0].reason, strings.Join(msgs, "; "), gen))
	}
	if accepted.ok && len(tr.ruleErrors) > 0 {
		conds = append(conds, condition(string(gwv1.RouteConditionPartiallyInvalid), true, ruleErrorReason(tr.ruleErrors),
			"Dropped Rule(s): "+errors.Join(tr.ruleErrors...).Error(), gen))
	}
	return conds
}

// dedupParentRefs drops repeated identical parentRefs so each gets one status.
func dedupParentRefs(refs []gwv1.ParentReference) []gwv1.ParentReference {
	if len(refs) < 2 { // most routes: nothing to compare
		return refs
	}
	var out []gwv1.ParentReference
	seen := make(map[string]bool)
	for _, r := range refs {
		k := ParentRefKey(r)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, r)
	}
	return out
}

// ParentRefKey identifies a parentRef exactly as written (unset fields stay
// unset), so that status entries can be matched to the refs they describe.
func ParentRefKey(r gwv1.ParentReference) string {
	port := "<nil>"
	if r.Port != nil {
		port = strconv.Itoa(int(*r.Port))
	}
	return orNil(r.Group) + "/" + orNil(r.Kind) + "/" + orNil(r.Namespace) + "/" + string(r.Name) + "/" + orNil(r.SectionName) + "/" + port
}

// orNil is *p, or "<nil>" (distinct from an empty value) when p is nil.
func orNil[T ~string](p *T) string {
	if p == nil {
		return "<nil>"
	}
	return string(*p)
}

// httpRoute translates the rules of one HTTPRoute.
func (t *translator) httpRoute(r *gwv1.HTTPRoute) translatedRoute {
	rules := r.Spec.Rules
	if len(rules) == 0 {
		// The CRD defaults an empty rule list to one rule matching "/" with
		// no backends; files get the same meaning.
		rules = []gwv1.HTTPRouteRule{{}}
	}
	tr := translatedRoute{totalRules: len(rules)}
	for i := range rules {
		rule, problems, err := t.httpRule(routeID{kindHTTPRoute, r.Namespace, r.Name}, i, &rules[i])
		tr.refProblems = append(tr.refProblems, problems...)
		if err != nil {
			tr.ruleErrors = append(tr.ruleErrors, fmt.Errorf("%s: %w", ruleField(i, &rules[i]), err))
			continue
		}
		tr.rules = append(tr.rules, rule)
	}
	return tr
}

// ruleField names a rule in messages: its index, and its name when it has one.
func ruleField(i int, rule *gwv1.HTTPRouteRule) string {
	if rule.Name != nil && *rule.Name != "" {
		return fmt.Sprintf("spec.rules[%d] (%s)", i, *rule.Name)
	}
	return fmt.Sprintf("spec.rules[%d]", i)
}

// ruleName is the IR route name of a rule: "httproute/ns/name/rule/i" (or
// the rule's own name in place of its index; "grpcroute/..." for a
// GRPCRoute), which access logs and metrics carry.
func ruleName(id routeID, i int, rule *gwv1.HTTPRouteRule) string {
	n := strconv.Itoa(i)
	if rule.Name != nil && *rule.Name != "" {
		n = string(*rule.Name)
	}
	return strings.ToLower(id.kind) + "/" + id.namespace + "/" + id.name + "/rule/" + n
}

func (t *translator) httpRule(id routeID, i int, rule *gwv1.HTTPRouteRule) (translatedRule, []refProblem, error) {
	var problems []refProblem
	field := fmt.Sprintf("spec.rules[%d]", i)

	if err := unimplementedRuleFields(rule); err != nil {
		return translatedRule{}, nil, err
	}
	timeouts, err := ruleTimeouts(rule.Timeouts)
	if err != nil {
		return translatedRule{}, nil, err
	}
	retry, err := ruleRetry(rule.Retry)
	if err != nil {
		return translatedRule{}, nil, err
	}
	filters, fp, err := t.httpFilters(id, field+".filters", rule.Filters)
	problems = append(problems, fp...)
	closed, isClosed := failClosed(err, "requests this rule matches get 500")
	if isClosed {
		problems = append(problems, closed)
		filters, err = nil, nil
	}
	if err != nil {
		return translatedRule{}, problems, err
	}

	var backends []ir.Backend
	for j, br := range rule.BackendRefs {
		bfield := fmt.Sprintf("%s.backendRefs[%d]", field, j)
		weight := uint32(1)
		if br.Weight != nil {
			if *br.Weight < 0 {
				return translatedRule{}, problems, unsupported("backendRefs[%d].weight: must not be negative", j)
			}
			weight = uint32(*br.Weight)
		}
		b, p := t.backend(id.kind, id.namespace, bfield, br.BackendObjectReference, weight)
		if p != nil {
			problems = append(problems, *p)
		}
		bf, fp, err := t.httpFilters(id, bfield+".filters", br.Filters)
		problems = append(problems, fp...)
		if fc, ok := failClosed(err, "this backend's share of requests gets 500"); ok {
			problems = append(problems, fc)
			b = ir.Backend{Name: b.Name, Weight: b.Weight, Invalid: true}
			bf, err = nil, nil
		}
		if err != nil {
			return translatedRule{}, problems, fmt.Errorf("backendRefs[%d]: %w", j, err)
		}
		if slices.ContainsFunc(bf, func(f ir.Filter) bool { return f.CORS != nil }) {
			return translatedRule{}, problems, unsupported("backendRefs[%d].filters: CORS applies to a whole rule, not to one backend", j)
		}
		if hasRedirect(bf) {
			return translatedRule{}, problems, unsupported("backendRefs[%d].filters: RequestRedirect is not allowed on a backend", j)
		}
		b.Filters = bf
		if weight > 0 {
			backends = append(backends, b)
		}
	}

	if isClosed {
		backends = nil // the proxy answers 500 for a rule without backends or filters
	}

	matches := rule.Matches
	if len(matches) == 0 {
		matches = []gwv1.HTTPRouteMatch{{}}
	}
	name := ruleName(id, i, rule)
	out := translatedRule{index: i}
	for mi := range matches {
		m, err := httpMatch(&matches[mi])
		if err != nil {
			return translatedRule{}, problems, fmt.Errorf("matches[%d]: %w", mi, err)
		}
		if err := prefixRewriteAllowed(m, filters, backends); err != nil {
			return translatedRule{}, problems, fmt.Errorf("matches[%d]: %w", mi, err)
		}
		out.routes = append(out.routes, ir.Route{
			Name:     name,
			Match:    m,
			Filters:  filters,
			Backends: backends,
			Timeouts: timeouts,
			Retry:    retry,
		})
	}
	return out, problems, nil
}

func hasRedirect(fs []ir.Filter) bool {
	for _, f := range fs {
		if f.Redirect != nil {
			return true
		}
	}
	return false
}

// prefixRewriteAllowed enforces the spec: ReplacePrefixMatch only makes sense
// when the path match is a PathPrefix.
func prefixRewriteAllowed(m ir.Match, filters []ir.Filter, backends []ir.Backend) error {
	check := func(fs []ir.Filter) error {
		for _, f := range fs {
			var pm *ir.PathModifier
			switch {
			case f.Redirect != nil:
				pm = f.Redirect.Path
			case f.Rewrite != nil:
				pm = f.Rewrite.Path
			}
			if pm != nil && pm.Type == ir.ReplacePrefixMatch && m.Path.Type != ir.PathPrefix {
				return unsupported("ReplacePrefixMatch needs a PathPrefix match, the path match is %s", m.Path.Type)
			}
		}
		return nil
	}
	if err := check(filters); err != nil {
		return err
	}
	for _, b := range backends {
		if err := check(b.Filters); err != nil {
			return err
		}
	}
	return nil
}

func ruleTimeouts(t *gwv1.HTTPRouteTimeouts) (ir.Timeouts, error) {
	var out ir.Timeouts
	if t == nil {
		return out, nil
	}
	var err error
	if t.Request != nil {
		if out.Request, err = parseDuration(string(*t.Request)); err != nil {
			return out, unsupported("timeouts.request: %v", err)
		}
	}
	if t.BackendRequest != nil {
		if out.BackendRequest, err = parseDuration(string(*t.BackendRequest)); err != nil {
			return out, unsupported("timeouts.backendRequest: %v", err)
		}
	}
	if out.Request > 0 && out.BackendRequest > out.Request {
		return out, unsupported("timeouts.backendRequest (%s) must not exceed timeouts.request (%s)", out.BackendRequest, out.Request)
	}
	return out, nil
}

// gatewayDuration is the Gateway API Duration format (GEP-2257).
var gatewayDuration = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

func parseDuration(s string) (time.Duration, error) {
	if !gatewayDuration.MatchString(s) {
		return 0, fmt.Errorf("%q is not a duration such as 10s, 500ms or 1h30m", s)
	}
	return time.ParseDuration(s)
}

var methods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

func httpMatch(m *gwv1.HTTPRouteMatch) (ir.Match, error) {
	out := ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"}}
	if m.Path != nil {
		if m.Path.Type != nil {
			out.Path.Type = ir.PathMatchType(*m.Path.Type)
		}
		if m.Path.Value != nil {
			out.Path.Value = *m.Path.Value
		}
	}
	switch out.Path.Type {
	case ir.PathExact, ir.PathPrefix:
		if !strings.HasPrefix(out.Path.Value, "/") {
			return out, unsupported("path.value: %q must start with /", out.Path.Value)
		}
	case ir.PathRegex:
		if _, err := regexp.Compile(out.Path.Value); err != nil {
			return out, unsupported("path.value: invalid regular expression: %v", err)
		}
	default:
		return out, unsupported("path.type: %q is not one of Exact, PathPrefix, RegularExpression", out.Path.Type)
	}
	if m.Method != nil {
		if !methods[string(*m.Method)] {
			return out, unsupported("method: %q is not an HTTP method", *m.Method)
		}
		out.Method = string(*m.Method)
	}
	seen := make(map[string]bool)
	for i, h := range m.Headers {
		name := textproto.CanonicalMIMEHeaderKey(string(h.Name))
		if seen[name] {
			continue // the spec: later matches on the same header are ignored
		}
		seen[name] = true
		vm, err := valueMatch(fmt.Sprintf("headers[%d]", i), name, h.Value, (*string)(h.Type))
		if err != nil {
			return out, err
		}
		out.Headers = append(out.Headers, vm)
	}
	seen = make(map[string]bool)
	for i, q := range m.QueryParams {
		name := string(q.Name)
		if seen[name] {
			continue
		}
		seen[name] = true
		vm, err := valueMatch(fmt.Sprintf("queryParams[%d]", i), name, q.Value, (*string)(q.Type))
		if err != nil {
			return out, err
		}
		out.QueryParams = append(out.QueryParams, vm)
	}
	return out, nil
}

func valueMatch(field, name, value string, typ *string) (ir.ValueMatch, error) {
	vm := ir.ValueMatch{Type: ir.StringExact, Name: name, Value: value}
	if typ != nil {
		vm.Type = ir.StringMatchType(*typ)
	}
	switch vm.Type {
	case ir.StringExact:
	case ir.StringRegex:
		if _, err := regexp.Compile(value); err != nil {
			return vm, unsupported("%s.value: invalid regular expression: %v", field, err)
		}
	default:
		return vm, unsupported("%s.type: %q is not one of Exact, RegularExpression", field, vm.Type)
	}
	return vm, nil
}
