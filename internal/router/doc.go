// Package router compiles an ir.Listener into lookup structures and matches
// requests against them. It is pure: no I/O, no goroutines, no logging.
//
// Compile does every costly step off the request path (host maps, anchored
// regular expressions, per-hostname rule lists bucketed by first path
// segment, cumulative backend weights, one lb.Balancer per backend), so that
// Table.Match, Route.PickBackend and Backend.Pick do not allocate.
//
// The package also holds the pure request transformations the proxy applies
// for Gateway API filters: header modifiers, redirect Location computation and
// URL rewrites. The proxy, not this package, decides how requests move.
package router
