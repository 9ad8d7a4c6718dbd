// Package lb chooses the endpoint of a backend for each request.
//
// Three policies implement Balancer: RoundRobin (an atomic counter),
// LeastRequest (power of two random choices over in-flight counts) and
// Maglev (consistent hashing with Google's Maglev lookup table). Every
// balancer is built off the request path, is safe for concurrent use, and its
// Pick does not allocate.
//
// Endpoint state that must survive a configuration reload (the in-flight
// count) lives in an Endpoint owned by a Registry, not in the balancer: every
// route and every config generation that names the same address gets the same
// *Endpoint, so LeastRequest keeps seeing the requests an older generation
// started. Ejections (passive health, health.go) live there too: an
// endpoint that refused or reset is passed over by every balancer until its
// back-off ends, and Balancer.Retry names another endpoint for a retry
// within the backend's retry budget.
package lb
