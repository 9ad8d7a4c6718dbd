package translate

import "strings"

// isWildcard reports whether h is a wildcard hostname such as "*.example.com".
func isWildcard(h string) bool { return strings.HasPrefix(h, "*.") }

// wildcardMatches reports whether the wildcard w ("*.example.com") covers the
// hostname h. The wildcard stands for one or more labels, so "*.example.com"
// covers "a.example.com" and "a.b.example.com" but not "example.com".
func wildcardMatches(w, h string) bool {
	suffix := w[1:] // ".example.com"
	return len(h) > len(suffix) && strings.HasSuffix(h, suffix)
}

// intersectHostnames returns the hostname that both a listener hostname and a
// route hostname admit, and whether there is one. An empty listener hostname
// admits everything.
func intersectHostnames(listener, route string) (string, bool) {
	switch {
	case listener == "":
		return route, true
	case listener == route:
		return route, true
	case isWildcard(listener) && isWildcard(route):
		// The narrower wildcard is the intersection.
		if strings.HasSuffix(route[1:], listener[1:]) {
			return route, true
		}
		if strings.HasSuffix(listener[1:], route[1:]) {
			return listener, true
		}
		return "", false
	case isWildcard(listener):
		if wildcardMatches(listener, route) {
			return route, true
		}
		return "", false
	case isWildcard(route):
		if wildcardMatches(route, listener) {
			return listener, true
		}
		return "", false
	default:
		return "", false
	}
}

// hostnameSpecificity orders hostnames for lookup: exact names first, then
// wildcards with more labels, then the empty catch-all. Higher is more specific.
func hostnameSpecificity(h string) int {
	switch {
	case h == "":
		return 0
	case isWildcard(h):
		return 1 + strings.Count(h, ".")
	default:
		return 1 << 20
	}
}
