package translate

// Fields of the Gateway API that RAUTA reads but does not implement yet. Each
// is refused through status instead of being silently ignored, so that a user
// never believes a retry policy, session affinity or client certificate check
// is in force when it is not. docs/translator.md lists every field.

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// unimplementedRuleFields refuses the experimental rule fields RAUTA does not
// implement. The rule is dropped (the spec's "Drop Rule(s)" approach for
// PartiallyInvalid) with reason UnsupportedValue; the route's other rules keep
// being served. Even an empty stanza is refused: the spec reads an empty
// sessionPersistence as cookie persistence (the CRD's default type).
func unimplementedRuleFields(rule *gwv1.HTTPRouteRule) error {
	if rule.SessionPersistence != nil {
		return unsupported("sessionPersistence: RAUTA does not implement session persistence yet; remove the field")
	}
	return nil
}

// reasonUnsupportedValue is the Gateway Accepted reason for a field RAUTA
// does not implement. The API lists no Gateway reason for that; this is the
// one it gives listeners and routes for the same situation.
const reasonUnsupportedValue = "UnsupportedValue"

// gatewayUnimplemented refuses Gateway fields that ask RAUTA to take on
// objects it does not serve: default Gateways (GEP-3793) would claim Routes
// that name no parent. Silently ignored, that would leave those Routes
// unserved while the Gateway looks fine, so the Gateway is not accepted until
// the field is removed or set to None. It returns "" when nothing is refused.
func gatewayUnimplemented(gw *gwv1.Gateway) string {
	if s := gw.Spec.DefaultScope; s != "" && s != gwv1.GatewayDefaultScopeNone {
		return fmt.Sprintf("spec.defaultScope: %q: RAUTA does not implement default Gateways yet; remove the field or set None", s)
	}
	return ""
}

// refuseListenerTLSOptions refuses tls.options: RAUTA defines no options, and
// an option such as a minimum TLS version silently ignored would weaken the
// listener behind the user's back.
func refuseListenerTLSOptions(l *listenerState) {
	if l.spec.TLS == nil || len(l.spec.TLS.Options) == 0 || !l.accepted.ok {
		return
	}
	keys := make([]string, 0, len(l.spec.TLS.Options))
	for k := range l.spec.TLS.Options {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	l.accepted = cond{false, string(gwv1.ListenerReasonUnsupportedValue),
		fmt.Sprintf("tls.options: RAUTA implements no TLS options (%s); remove them", strings.Join(keys, ", "))}
}

// failClosedError is a filter RAUTA cannot apply and must not skip: an
// ExtensionRef (the spec: an unresolvable custom filter "MUST NOT be skipped";
// the requests it would process get an HTTP error) or ExternalAuth (which
// "MUST fail closed"). Dropping the rule would let its requests fall through
// to a broader rule that lacks the filter, so the rule stays and answers 500
// (a backend-level filter: that backend's share answers 500), the route stays
// accepted, and ResolvedRefs=False says why.
type failClosedError struct {
	problem refProblem
}

func (e *failClosedError) Error() string { return e.problem.message }

// failClosed reports whether err is a failClosedError and returns its
// problem with the consequence spelled out.
func failClosed(err error, consequence string) (refProblem, bool) {
	var fc *failClosedError
	if !errors.As(err, &fc) {
		return refProblem{}, false
	}
	p := fc.problem
	p.message += "; " + consequence
	return p, true
}
