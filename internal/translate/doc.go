// Package translate turns a resources.Resources snapshot into RAUTA's routing
// model (ir.Snapshot) and the Gateway API status of every object it owns.
//
// Translate is pure and deterministic: the same input always yields the same
// output, nothing is read from the clock or the network, and the input is
// never modified. All Gateway API semantics live here: GatewayClass
// acceptance, listener validation and conflicts, route attachment
// (parentRefs, allowedRoutes, hostnames), ReferenceGrant checks, backend
// resolution and route precedence. A user's mistake becomes a status
// condition, never a Go error.
package translate
