package translate

import (
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/ir"
)

// Retry defaults where the spec leaves them to the implementation: one
// retry, as Envoy's num_retries, and Envoy's 25 ms base interval.
const (
	defaultRetryAttempts = 1
	defaultRetryBackoff  = 25 * time.Millisecond
	// maxRetryAttempts bounds what a route may ask for: each retry is
	// another request to a backend that is already failing.
	maxRetryAttempts = 10
)

// ruleRetry translates a rule's retry stanza; nil when there is none.
func ruleRetry(r *gwv1.HTTPRouteRetry) (*ir.Retry, error) {
	if r == nil {
		return nil, nil
	}
	out := &ir.Retry{Attempts: defaultRetryAttempts, Backoff: defaultRetryBackoff}
	for i, c := range r.Codes {
		if c < 400 || c > 599 {
			return nil, unsupported("retry.codes[%d]: %d is not an error status (400-599)", i, c)
		}
		out.Codes = append(out.Codes, int(c))
	}
	if r.Attempts != nil {
		if *r.Attempts < 1 || *r.Attempts > maxRetryAttempts {
			return nil, unsupported("retry.attempts: %d: want 1 to %d", *r.Attempts, maxRetryAttempts)
		}
		out.Attempts = *r.Attempts
	}
	if r.Backoff != nil {
		d, err := parseDuration(string(*r.Backoff))
		if err != nil {
			return nil, unsupported("retry.backoff: %v", err)
		}
		out.Backoff = d
	}
	return out, nil
}
