package translate

// Fields of the Gateway API that RAUTA reads but does not implement yet. Each
// is refused through status instead of being silently ignored, so that a user
// never believes a retry policy, session affinity or client certificate check
// is in force when it is not. docs/translator.md lists every field.

import (
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// unimplementedRuleFields refuses the experimental rule fields RAUTA does not
// implement. The rule is dropped (the spec's "Drop Rule(s)" approach for
// PartiallyInvalid) with reason UnsupportedValue; the route's other rules keep
// being served. Even an empty stanza is refused: the spec reads "retry: {}"
// as "retry on connection errors" and an empty sessionPersistence as cookie
// persistence (the CRD's default type).
func unimplementedRuleFields(rule *gwv1.HTTPRouteRule) error {
	if rule.Retry != nil {
		return unsupported("retry: RAUTA does not implement retries yet; remove the field")
	}
	if rule.SessionPersistence != nil {
		return unsupported("sessionPersistence: RAUTA does not implement session persistence yet; remove the field")
	}
	return nil
}
