package route

import "strings"

// Match returns the longest of routes (path prefixes) that target's path
// falls under, on a segment boundary ("/api" matches "/api" and "/api/x",
// not "/apis"); ok is false when none does.
func Match(routes []string, target string) (string, bool) {
	if len(routes) == 0 {
		return "", false
	}
	path := target
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	best := -1
	for i, r := range routes {
		if !strings.HasPrefix(path, r) {
			continue
		}
		if len(path) != len(r) && !strings.HasSuffix(r, "/") && path[len(r)] != '/' {
			continue
		}
		if best < 0 || len(r) > len(routes[best]) {
			best = i
		}
	}
	if best < 0 {
		return "", false
	}
	return routes[best], true
}
